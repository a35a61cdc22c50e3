"""``initcheck model``: whole PyTorch models, their laws, the model-level checks,
rules files, the API and the pytest plugin."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import initcheck  # noqa: E402
from initcheck.cli import main  # noqa: E402
from initcheck.errors import InputError  # noqa: E402
from initcheck.model import instance_seed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "torch_models.py"
RULES = ROOT / "examples" / "xavier_rules.toml"
FAST = {"samples": 100_000, "max_instances": 60}


def example(name: str) -> str:
    return f"{EXAMPLES}:{name}"


def rows(result) -> dict:
    return {r.layer: r for r in result}


def failed(result) -> set[str]:
    return {r.layer for r in result if r.verdict == "FAIL"}


def test_the_docstring_example_runs():
    import doctest

    from initcheck import model

    failures, tried = doctest.testmod(model)
    assert tried > 0 and failures == 0


# ----------------------------------------------------------------------------- correct models pass


class EveryDefault(nn.Module):
    """One of each layer whose default initcheck knows."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(300, 32, padding_idx=3)
        self.attention = nn.MultiheadAttention(32, num_heads=4, bias=True)
        self.cross = nn.MultiheadAttention(32, num_heads=2, kdim=16, vdim=24, add_bias_kv=True)
        self.norm = nn.LayerNorm(32)
        self.group = nn.GroupNorm(4, 16)
        self.conv = nn.Conv2d(3, 16, 3)
        self.grouped = nn.Conv1d(16, 32, 5, groups=4)
        self.transposed = nn.ConvTranspose2d(16, 8, 3, groups=2)
        self.batch = nn.BatchNorm2d(16)
        self.lstm = nn.LSTM(32, 24)
        self.gru = nn.GRU(32, 16, bias=True)
        self.bilinear = nn.Bilinear(8, 12, 4)
        self.prelu = nn.PReLU(8)
        self.head = nn.Linear(32, 300, bias=False)
        self.head.weight = self.embed.weight  # tied on purpose


def test_every_documented_default_passes_and_ties_are_reported():
    result = initcheck.verify_model(EveryDefault, **FAST)
    assert result, str(result)
    found = rows(result)
    assert "head.weight" not in found and result.tied == (("head.weight", "embed.weight"),)
    assert found["embed.weight"].check("fixed rows").passed
    assert "padding_idx 3 row exactly 0" in found["embed.weight"].api
    assert found["attention.in_proj_weight"].law == initcheck.Uniform(-(6 / (32 + 96)) ** 0.5, (6 / (32 + 96)) ** 0.5)
    assert found["attention.out_proj.bias"].law == initcheck.Constant(0.0)
    assert found["transposed.weight"].law.high == pytest.approx(1 / (4 * 9) ** 0.5)  # fan_in = out/groups * k
    assert found["grouped.weight"].law.high == pytest.approx(1 / (4 * 5) ** 0.5)  # fan_in = in/groups * k
    assert found["lstm.weight_hh_l0"].law.high == pytest.approx(1 / 24 ** 0.5)
    assert found["prelu.weight"].law == initcheck.Constant(0.25)
    assert result.summary_line == f"{len(result) + 1} parameters: {len(result)} PASS, 1 tied"


def test_the_example_models_pass():
    for name in ("mlp", "small_cnn"):
        result = initcheck.verify_model(example(name), **FAST)
        assert result, str(result)
    result = initcheck.verify_model(example("xavier_mlp"), rules=RULES, **FAST)
    assert result and {r.initializer.split(" (")[0] for r in result} == {"rule 1", "rule 2"}


def test_nn_transformer_weights_get_its_xavier_reset():
    result = initcheck.verify_model(lambda: nn.Transformer(32, 2, 2, 2, 64, batch_first=True), **FAST)
    found = rows(result)
    weight = found["encoder.layers.0.linear1.weight"]
    assert weight.verdict == "PASS" and weight.initializer == "torch.nn.Transformer default"
    assert found["encoder.norm.weight"].verdict == "PASS"
    # the reset leaves the 1-d parameters alone: the deep-copied layers' linear biases stay copies
    assert failed(result) == {f"{part}.layers.{i}.linear{j}.bias" for part in ("encoder", "decoder")
                              for i in (0, 1) for j in (1, 2)}


# ----------------------------------------------------------------------------- planted bugs fail for the right reason


def test_an_init_that_skips_a_subclass():
    result = initcheck.verify_model(example("skips_subclass"), rules=RULES, **FAST)
    assert failed(result) == {"2.weight", "2.bias"}
    reason = rows(result)["2.weight"].reason
    assert reason.startswith("follows torch.nn.Linear default U(±0.0625) instead: the init did not reach")


def test_blocks_reseeded_alike_are_duplicates_and_ignore_the_seed():
    result = initcheck.verify_model(example("reseeded_blocks"), **FAST)
    assert failed(result) == {f"{i}.0.{p}" for i in range(3) for p in ("weight", "bias")}
    second = rows(result)["1.0.weight"]
    assert not second.check("seed").passed and not second.check("duplicate").passed
    assert "a copy of 0.0.weight" in second.check("duplicate").detail


def test_a_factory_that_ignores_the_seed():
    result = initcheck.verify_model(example("ignores_seed"), **FAST)
    assert failed(result) == set(rows(result))
    assert all(r.reason.startswith("identical in instances 0 and 1") for r in result)


def test_a_fused_parameter_with_two_laws():
    result = initcheck.verify_model(example("fused_two_laws"), **FAST)
    assert failed(result) == {"in_proj_weight"}
    assert "rows 0-127" in rows(result)["in_proj_weight"].reason


def test_an_overwritten_padding_row():
    result = initcheck.verify_model(example("padding_overwritten"), **FAST)
    check = rows(result)["0.weight"].check("fixed rows")
    assert not check.passed and check.detail.startswith("row 0: 64 of 64 values differ from 0")


def test_copies_up_to_sign_or_scale_name_both_parameters():
    def factory():
        net = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, 64))
        with torch.no_grad():
            net[1].weight.copy_(-net[0].weight)
            net[3].weight.copy_(0.5 * net[2].weight)
        return net

    result = initcheck.verify_model(factory, **FAST)
    found = rows(result)
    assert "the negation of 0.weight" in found["1.weight"].check("duplicate").detail
    assert "1.weight is the negation of it" in found["0.weight"].check("duplicate").detail
    assert "a scaled copy (×0.5) of 2.weight" in found["3.weight"].check("duplicate").detail


def test_transformer_encoder_clones_are_reported_with_their_cause():
    result = initcheck.verify_model(example("tiny_transformer"), **FAST)
    detail = rows(result)["encoder.layers.1.linear1.weight"].check("duplicate").detail
    assert "encoder.layers.0.linear1.weight" in detail and "pytorch/pytorch#72253" in detail
    assert rows(result)["embed.weight"].verdict == "PASS" and result.tied == (("head.weight", "embed.weight"),)


def test_a_parameter_without_a_documented_default_is_skipped_with_the_way_out():
    result = initcheck.verify_model(example("custom_parameter"), **FAST)
    scale = rows(result)["scale"]
    assert scale.verdict == "SKIP" and scale.reason == "no documented default for Scaled.scale; add a rule"
    assert result  # the other parameters were checked
    rules = [{"match": "scale", "scheme": "ones"}]
    assert rows(initcheck.verify_model(example("custom_parameter"), rules=rules, **FAST))["scale"].verdict == "PASS"


def test_a_subclass_with_its_own_reset_has_no_documented_default():
    class Mine(nn.Linear):
        def reset_parameters(self):
            nn.init.zeros_(self.weight)

    result = initcheck.verify_model(lambda: nn.Sequential(Mine(8, 8)), **FAST)
    assert all(r.verdict == "SKIP" and "overrides reset_parameters" in r.reason for r in result)


def test_nan_in_a_parameter_is_a_failed_check_not_a_crash():
    def factory():
        net = nn.Sequential(nn.Linear(32, 32))
        with torch.no_grad():
            net[0].weight[0, 0] = float("nan")
        return net

    result = initcheck.verify_model(factory, **FAST)
    assert not rows(result)["0.weight"].check("finite").passed


# ----------------------------------------------------------------------------- instances, seeds, state


def test_instances_are_seeded_and_the_callers_state_is_untouched():
    seen = []

    def factory(seed):
        seen.append((seed, torch.initial_seed()))
        return nn.Linear(16, 16)

    torch.manual_seed(99)
    random.seed(5)
    np.random.seed(5)
    before = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    result = initcheck.verify_model(factory, instances=3, samples=1000)
    assert result.instances == 3 and [s for s, _ in seen] == [instance_seed(0, i) for i in range(3)]
    assert all(seed == initial for seed, initial in seen)
    assert torch.equal(torch.get_rng_state(), before[0]) and random.getstate() == before[1]
    assert np.array_equal(np.random.get_state()[1], before[2])
    again = initcheck.verify_model(factory, instances=3, samples=1000)
    assert [r.summary.mean for r in again] == [r.summary.mean for r in result]


def test_the_instance_cap_states_the_power_it_reached():
    from initcheck.model_report import instances_line

    result = initcheck.verify_model(lambda: nn.Linear(8, 2), samples=10**6, max_instances=20)
    assert result.instances == 20 and result.stopped == "the instance cap (20)"
    line = instances_line(result)
    assert "bias with 40" in line and "detects a std error ≥" in line


# ----------------------------------------------------------------------------- command line, reports, errors


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as stop:
        main(args)
    out = capsys.readouterr()
    return stop.value.code, out.out, out.err


def test_cli_table_reports_and_exit_codes(tmp_path, capsys):
    report, junit = tmp_path / "model.json", tmp_path / "model.xml"
    code, out, _ = run_cli(["model", example("skips_subclass"), "--rules", str(RULES), "-n", "1e5",
                            "--max-instances", "60", "--no-progress", "--json", str(report),
                            "--junit", str(junit)], capsys)
    assert code == 1
    assert "6 parameters: 4 PASS, 2 FAIL." in out and "#3 2.weight FAIL: follows torch.nn.Linear default" in out
    data = json.loads(report.read_text())
    assert data["model"]["summary"] == "6 parameters: 4 PASS, 2 FAIL" and data["verdicts"]["fail"] == 2
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "initcheck" / "schemas" / "report-2.schema.json").read_text())
    jsonschema.validate(data, schema)
    assert junit.read_text().count("<testcase") == 6
    code, out, _ = run_cli(["model", example("mlp"), "-n", "1e5", "--max-instances", "20", "--no-progress", "-q"],
                           capsys)
    assert code == 0 and out == ""


RULE_ERRORS = [
    ("", "no [[rule]] in the file"),
    ("[[rule]]\nmatch = '*'\n[[check]]\n", "unknown top-level key 'check'"),
    ("[[rule]]\nscheme = 'zeros'\n", "key 'match' is missing"),
    ("[[rule]]\nmatch = 3\nscheme = 'zeros'\n", "key 'match' must be a glob"),
    ("[[rule]]\nmatch = '*'\n", "key 'scheme' is missing"),
    ("[[rule]]\nmatch = '*'\nscheme = 'glorot'\n", "unknown scheme 'glorot'"),
    ("[[rule]]\nmatch = '*'\nscheme = 'xavier'\ncolour = 'red'\n", "key 'colour': unknown key"),
    ("[[rule]]\nmatch = '*'\nscheme = 'xavier'\nstd = 0.1\n", "key 'std': does not apply to scheme xavier"),
    ("[[rule]]\nmatch = '*'\nscheme = 'normal'\nstd = 'wide'\n", "key 'std' must be a number"),
    ("[[rule]]\nmatch = '*'\nscheme = 'normal'\n", "scheme normal needs key 'std'"),
    ("[[rule]]\nmatch = '*'\nscheme = 'uniform'\nbound = 1\nlow = 0\n", "give either 'bound' or 'low' and 'high'"),
    ("[[rule]]\nmatch = '*'\nscheme = 'xavier'\ndist = 'cauchy'\n", "unknown distribution 'cauchy'"),
    ("[[rule]]\nmatch = '*'\nscheme = 'constant'\n", "rule 1: constant needs value"),
    ("[[rule]]\nmatch = '*'\nscheme = 'xavier'\n", "xavier needs fans"),
    ("[[rule]]\nmatch = '*'\nscheme = 'zeros'\n[[rule]]\nmatch = 'nothing.*'\nscheme = 'ones'\n",
     "rule 2 (nothing.*) matches no parameter"),
    ("not toml [", "not valid TOML"),
]


@pytest.mark.parametrize("text, message", RULE_ERRORS)
def test_every_rules_file_error_is_one_line_and_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "rules.toml"
    path.write_text(text)
    code, out, err = run_cli(["model", example("mlp"), "--rules", str(path), "-n", "1e4", "--no-progress"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("initcheck: error: ") and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("args, message", [
    (["nowhere.py:build"], "model file nowhere.py does not exist"),
    ([f"{EXAMPLES}:missing"], "has no factory 'missing'"),
    ([f"{EXAMPLES}"], "must look like FILE.py:FACTORY"),
    ([example("mlp"), "--instances", "1"], "--instances must be a whole number of at least 2"),
    ([example("mlp"), "--time-limit", "0"], "--time-limit must be a positive number of seconds"),
    ([example("mlp"), "--rules", "absent.toml"], "rules file absent.toml does not exist"),
    ([example("mlp"), "-n", "ten"], "is not a number"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    code, out, err = run_cli(["model", *args, "--no-progress"], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_factories_that_misbehave_are_input_errors():
    def raises():
        raise RuntimeError("no GPU here")

    with pytest.raises(InputError, match="raised RuntimeError: no GPU here"):
        initcheck.verify_model(raises, **FAST)
    with pytest.raises(InputError, match="not a model initcheck knows"):
        initcheck.verify_model(lambda: 42, **FAST)
    sizes = iter(range(2, 100))
    with pytest.raises(InputError, match="other parameters than instance 0"):
        initcheck.verify_model(lambda: nn.Linear(4, next(sizes)), **FAST)
    with pytest.raises(InputError, match="lazy parameters that are not initialized"):
        initcheck.verify_model(lambda: nn.Sequential(nn.LazyLinear(8)), **FAST)
    with pytest.raises(InputError, match="has no parameters"):
        initcheck.verify_model(lambda: nn.ReLU(), **FAST)
    with pytest.raises(InputError, match="unknown preset"):
        initcheck.verify_model(example("mlp"), preset="timm")


# ----------------------------------------------------------------------------- pytest plugin

PLUGIN_TESTS = f'''
import sys
sys.path.insert(0, {str(EXAMPLES.parent)!r})
from torch import nn


def test_mlp(initcheck_model):
    initcheck_model({example("mlp")!r}, max_instances=20)


def test_reseeded(initcheck_model):
    initcheck_model({example("reseeded_blocks")!r}, max_instances=20)
'''


def test_pytest_plugin_model_fixture_in_a_subprocess(tmp_path):
    (tmp_path / "test_models.py").write_text(textwrap.dedent(PLUGIN_TESTS))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--initcheck-samples", "2e4",
         str(tmp_path / "test_models.py")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "1 failed, 1 passed" in out
    assert "6 parameters: 6 FAIL" in out and "identical in instances 0 and 1" in out
    assert "Traceback" not in out


# ----------------------------------------------------------------------------- structured laws in rules

STRUCTURED_RULES = [
    {"match": "0.weight", "scheme": "orthogonal"},
    {"match": "1.weight", "scheme": "orthogonal", "gain": 2.0},
    {"match": "2.weight", "scheme": "dirac"},
    {"match": ["*.bias"], "scheme": "zeros"},
]


def structured(qr_without_signs: bool):
    def factory():
        net = nn.Sequential(nn.Linear(32, 64), nn.Linear(64, 64), nn.Conv2d(8, 8, 3))
        with torch.no_grad():
            if qr_without_signs:  # the classic bug: Q of a QR, its signs left as LAPACK made them
                net[0].weight.copy_(torch.linalg.qr(torch.randn(64, 32))[0])
            else:
                nn.init.orthogonal_(net[0].weight)
            nn.init.orthogonal_(net[1].weight, gain=2.0)
            nn.init.dirac_(net[2].weight)
            for layer in net:
                nn.init.zeros_(layer.bias)
        return net

    return factory


def test_rules_take_the_structured_schemes():
    result = initcheck.verify_model(structured(False), rules=STRUCTURED_RULES, samples=100_000, max_instances=30)
    assert result, str(result)
    found = rows(result)
    assert found["0.weight"].check("orthogonal").passed and found["1.weight"].law.describe().startswith("2·")
    assert found["2.weight"].check("seed") is None  # an exact tensor is the same in every instance, by design
    broken = initcheck.verify_model(structured(True), rules=STRUCTURED_RULES, samples=100_000, max_instances=30)
    assert failed(broken) == {"0.weight"}
    assert not rows(broken)["0.weight"].check("diagonal signs").passed


@pytest.mark.calibration
@pytest.mark.parametrize("seed", range(1, 11))
def test_correct_models_pass_over_seeds(seed):
    """No false alarm on correct models, seed after seed (make calibrate)."""
    for factory, rules in ((EveryDefault, None), (example("mlp"), None), (example("small_cnn"), None),
                           (example("xavier_mlp"), RULES), (structured(False), STRUCTURED_RULES)):
        result = initcheck.verify_model(factory, rules=rules, samples=200_000, max_instances=100, seed=seed)
        assert result, str(result)


def test_framework_start_up_logs_are_dropped_and_the_factorys_own_stderr_kept(capfd):
    calls = []

    def factory():  # as a factory that imports TensorFlow: its C++ logs come once, on the first call
        if not calls:
            os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                        b"I0000 00:00:1796184112.380415   31431 port.cc:153] oneDNN custom operations are on.\n")
        calls.append(1)
        os.write(2, b"my factory says hello\n")
        return nn.Linear(16, 16)

    initcheck.verify_model(factory, instances=2, samples=1000)
    err = capfd.readouterr().err
    assert err.count("my factory says hello") == 2 and "port.cc" not in err and "absl" not in err
