"""The command line end to end: verdicts, exit codes, reports, and bad input.

Every bad input must end in one line on stderr and exit code 2, never a
traceback.  Sample sizes are small to keep the suite fast; the statistical
outcomes are still far from the decision boundary (see test_checks.py).
"""

import json
import math
import re
import subprocess
import sys
import textwrap

import pytest

from initcheck import frameworks
from helpers import run_cli

SMALL = ["-n", "2e5", "--no-progress"]

CUSTOM = textwrap.dedent(
    """
    import math
    import numpy as np
    import torch

    def xavier(shape, seed):
        fan_out, fan_in = shape
        std = math.sqrt(2.0 / (fan_in + fan_out))
        return np.random.default_rng(seed).normal(0.0, std, shape).astype(np.float32)

    def xavier_torch(shape, seed):
        g = torch.Generator().manual_seed(seed)
        return torch.nn.init.xavier_uniform_(torch.empty(shape), generator=g)

    def too_wide(shape, seed):  # the planted bug: 10% too much std
        return 1.1 * xavier(shape, seed)

    def ignores_nothing_but_has_a_nan(shape, seed):
        x = xavier(shape, seed)
        if seed % 2:
            x[0, 0] = float("nan")
        return x

    def raises(shape, seed):
        raise ValueError("boom")

    def wrong_shape(shape, seed):
        return np.zeros((3, 3))

    def text(shape, seed):
        return "not an array"

    def strings(shape, seed):
        return np.full(shape, "a")

    not_callable = 3
    """
)


@pytest.fixture
def custom_file(tmp_path):
    path = tmp_path / "my_init.py"
    path.write_text(CUSTOM)
    return str(path)


def test_xavier_passes_on_torch_and_reference(capsys, tmp_path):
    report = tmp_path / "report.json"
    code, out, err = run_cli(
        capsys, "xavier", "--dist", "normal,uniform", "--fan-in", "784", "--fan-out", "256", "-f", "torch,reference",
        "--json", str(report), *SMALL,
    )
    assert code == 0, out + err
    assert "PASS" in out and "FAIL" not in out
    data = json.loads(report.read_text())
    apis = " ".join(r["api"] for r in data["rows"])
    assert "xavier_normal_" in apis and "xavier_uniform_" in apis
    assert data["exit_code"] == 0
    assert data["environment"]["frameworks"]["torch"]
    rows = data["rows"]
    assert {(r["framework"], r["law"]["family"]) for r in rows} == {
        ("torch", "normal"), ("torch", "uniform"), ("reference", "normal"), ("reference", "uniform")
    }
    normal = next(r for r in rows if r["framework"] == "torch" and r["law"]["family"] == "normal")
    assert normal["law"]["sigma"] == pytest.approx(math.sqrt(2 / (784 + 256)))
    assert normal["shape"] == [256, 784]
    names = {c["name"] for c in normal["checks"]}
    # one draw at this N: no draws check (it needs two)
    assert names == {"finite", "mean", "variance", "ks", "spikes", "independence", "positions", "copies"}
    assert all(c["passed"] for c in normal["checks"])
    ks = next(c for c in normal["checks"] if c["name"] == "ks")
    assert ks["statistic"] < ks["threshold"] and ks["level"] > 0


def run_json(capsys, tmp_path, *args):
    """Run a command with --json; returns (exit code, report)."""
    path = tmp_path / "report.json"
    code, out, err = run_cli(capsys, *args, "--json", str(path), *SMALL)
    assert code in (0, 1), out + err
    return code, json.loads(path.read_text())


def rows_by_framework(report):
    return {(r["framework"], r["initializer"], r["layer"]): r for r in report["rows"]}


def test_kaiming_conv_and_trunc_normal_pass(capsys, tmp_path):
    code, report = run_json(
        capsys, tmp_path, "kaiming", "--shape", "128,64,3,3", "--nonlinearity", "relu", "--mode", "fan_out",
        "-f", "torch,reference",
    )
    assert code == 0
    torch_row = next(r for r in report["rows"] if r["framework"] == "torch")
    assert torch_row["layer"] == "conv 64→128 3×3" and torch_row["shape"] == [128, 64, 3, 3]
    assert torch_row["law"]["sigma"] == pytest.approx(math.sqrt(2 / (128 * 9)))
    code, report = run_json(
        capsys, tmp_path, "trunc-normal", "--std", "0.02", "--low", "-0.03", "--high", "0.04", "-f", "torch,reference"
    )
    assert code == 0
    assert "trunc_normal_" in report["rows"][0]["api"]


def test_lecun_and_truncated_xavier_are_skipped_on_torch_not_faked(capsys, tmp_path):
    code, report = run_json(
        capsys, tmp_path, "lecun", "--dist", "normal", "--fan-in", "100", "--fan-out", "50", "-f", "torch,reference"
    )
    torch_row = next(r for r in report["rows"] if r["framework"] == "torch")
    assert code == 0 and torch_row["verdict"] == "SKIP" and "no LeCun" in torch_row["reason"]
    code, report = run_json(
        capsys, tmp_path, "xavier", "--dist", "truncated-normal", "--fan-in", "100", "--fan-out", "50",
        "-f", "torch,reference",
    )
    torch_row = next(r for r in report["rows"] if r["framework"] == "torch")
    assert code == 0 and torch_row["verdict"] == "SKIP" and "truncated-normal" in torch_row["reason"]


def test_quiet_prints_nothing_when_all_pass(capsys):
    # the table is the frameworks' common code: two frameworks show it (the matrix tests run every one)
    code, out, _ = run_cli(capsys, "xavier", "--fan-in", "10", "--fan-out", "20", "-q", "-f", "reference,torch", *SMALL)
    assert code == 0 and out == ""


def test_custom_function_passes(capsys, custom_file):
    code, out, err = run_cli(capsys, "custom", f"{custom_file}:xavier", "--expect", "xavier", "--shape", "256,784", *SMALL)
    assert code == 0, out + err
    assert "custom" in out and "reference" in out


def test_custom_torch_function_with_fans(capsys, custom_file):
    code, out, err = run_cli(
        capsys, "custom", f"{custom_file}:xavier_torch", "--expect", "xavier", "--dist", "uniform",
        "--fan-in", "784", "--fan-out", "256", *SMALL,
    )
    assert code == 0, out + err


def test_custom_planted_bug_fails_with_reason(capsys, custom_file, tmp_path):
    report = tmp_path / "r.json"
    code, out, _ = run_cli(
        capsys, "custom", f"{custom_file}:too_wide", "--expect", "xavier", "--shape", "256,784",
        "--json", str(report), *SMALL,
    )
    assert code == 1
    assert "FAIL" in out and "too_wide" in out
    rows = json.loads(report.read_text())["rows"]
    custom = next(r for r in rows if r["framework"] == "custom")
    reference = next(r for r in rows if r["framework"] == "reference")
    assert custom["verdict"] == "FAIL" and reference["verdict"] == "PASS"
    assert re.search(r"std (9\.\d+|10(\.\d+)?)% above the law's", custom["reason"]), custom["reason"]
    assert {c["name"] for c in custom["checks"] if not c["passed"]} >= {"variance"}


def test_nan_in_a_draw_is_a_failed_check(capsys, custom_file):
    code, out, _ = run_cli(
        capsys, "custom", f"{custom_file}:ignores_nothing_but_has_a_nan", "--expect", "xavier",
        "--shape", "100,100", *SMALL,
    )
    assert code == 1
    assert "NaN" in out


def test_custom_explicit_laws(capsys, custom_file):
    std = math.sqrt(2 / (784 + 256))
    code, out, _ = run_cli(
        capsys, "custom", f"{custom_file}:xavier", "--expect", "normal", "--std", str(std), "--shape", "256,784", *SMALL
    )
    assert code == 0, out
    code, out, _ = run_cli(
        capsys, "custom", f"{custom_file}:xavier", "--expect", "uniform", "--bound", str(std * math.sqrt(3)),
        "--shape", "256,784", *SMALL,
    )
    assert code == 1 and "KS" in out  # a normal is not a uniform of the same variance


BAD_INPUTS = [
    ["xavier", "--fan-in", "0", "--fan-out", "10"],
    ["xavier", "--fan-in", "-5", "--fan-out", "10"],
    ["xavier", "--fan-in", "10"],
    ["xavier"],
    ["xavier", "--shape", "100"],
    ["xavier", "--shape", "10,0"],
    ["xavier", "--shape", "a,b"],
    ["xavier", "--dist", "cauchy", "--fan-in", "10", "--fan-out", "10"],
    ["kaiming", "--nonlinearity", "swish", "--fan-in", "10", "--fan-out", "10"],
    ["kaiming", "--mode", "fan_middle", "--fan-in", "10", "--fan-out", "10"],
    ["xavier", "--fan-in", "10", "--fan-out", "10", "--samples", "999"],
    ["xavier", "--fan-in", "10", "--fan-out", "10", "--samples", "lots"],
    ["xavier", "--fan-in", "10", "--fan-out", "10", "--alpha", "2"],
    ["xavier", "--fan-in", "10", "--fan-out", "10", "--framework", "caffe"],
    ["xavier", "--fan-in", "10", "--fan-out", "10", "--device", "tpu"],
    ["xavier", "--fan-in", "10", "--fan-out", "10", "--device", "cuda", "-f", "torch"],
    ["xavier", "--fan-in", "10", "--fan-out", "10", "--gain", "-1"],
    ["xavier", "--fan-in", "10", "--fan-out", "10", "--bogus-option"],
    ["trunc-normal", "--std", "1", "--low", "2", "--high", "1"],
    ["trunc-normal", "--std", "0"],
    ["custom", "missing_file.py:f", "--expect", "xavier", "--shape", "10,10"],
    ["custom", "no_colon_here", "--expect", "xavier", "--shape", "10,10"],
    ["custom", "no_such_module_xyz:f", "--expect", "xavier", "--shape", "10,10"],
    ["custom", "{file}:nope", "--expect", "xavier", "--shape", "10,10"],
    ["custom", "{file}:not_callable", "--expect", "xavier", "--shape", "10,10"],
    ["custom", "{file}:raises", "--expect", "xavier", "--shape", "10,10"],
    ["custom", "{file}:wrong_shape", "--expect", "xavier", "--shape", "10,10"],
    ["custom", "{file}:text", "--expect", "xavier", "--shape", "10,10"],
    ["custom", "{file}:strings", "--expect", "xavier", "--shape", "10,10"],
    ["custom", "{file}:xavier", "--expect", "xavier"],
    ["custom", "{file}:xavier", "--expect", "normal", "--shape", "10,10"],
    ["custom", "{file}:xavier", "--expect", "uniform", "--bound", "1", "--low", "-1", "--shape", "10,10"],
]


@pytest.mark.parametrize("args", BAD_INPUTS, ids=[" ".join(a) for a in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(capsys, custom_file, args):
    args = [a.replace("{file}", custom_file) for a in args]
    extra = ["--no-progress"] if "--samples" in args else SMALL
    code, out, err = run_cli(capsys, *args, *extra)
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("initcheck: error:"), err
    assert "Traceback" not in err + out


def test_framework_named_but_not_installed_is_exit_2(capsys, monkeypatch):
    monkeypatch.setattr(frameworks, "installed", lambda name: name != "torch")
    code, _, err = run_cli(capsys, "xavier", "--fan-in", "10", "--fan-out", "10", "-f", "torch", *SMALL)
    assert code == 2 and "not installed" in err


def test_framework_not_installed_and_not_named_is_left_out(capsys, monkeypatch):
    monkeypatch.delenv("INITCHECK_FRAMEWORKS")  # no list: every installed framework
    monkeypatch.setattr(frameworks, "installed", lambda name: name == "reference")
    code, out, _ = run_cli(capsys, "xavier", "--fan-in", "10", "--fan-out", "10", *SMALL)
    assert code == 0 and "reference" in out and "torch.nn.init" not in out


def test_python_dash_m_and_no_traceback_in_a_real_process(custom_file):
    ok = subprocess.run(
        [sys.executable, "-m", "initcheck", "xavier", "--fan-in", "30", "--fan-out", "20", "-n", "1e4",
         "-f", "torch,reference"],
        capture_output=True, text=True,
    )
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "initcheck", "custom", f"{custom_file}:raises", "--expect", "xavier", "--shape", "4,4"],
        capture_output=True, text=True,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "initcheck: error: raises(shape=(4, 4), seed=" + bad.stderr.split("seed=")[1].split(")")[0] + ") raised ValueError: boom"


def test_ctrl_c_prints_the_partial_table_and_exits_130(capsys, tmp_path):
    path = tmp_path / "interrupt.py"
    path.write_text(textwrap.dedent(
        """
        import numpy as np
        calls = []
        def f(shape, seed):
            calls.append(seed)
            if len(calls) == 5:
                raise KeyboardInterrupt
            return np.random.default_rng(seed).normal(0, 0.1, shape)
        """
    ))
    code, out, err = run_cli(capsys, "custom", f"{path}:f", "--expect", "normal", "--std", "0.1", "--shape", "100,100", *SMALL)
    assert code == 130
    assert "PARTIAL" in out and "interrupted" in out


@pytest.mark.parametrize("counts", [["--samples", "999"], ["--samples", "1e6", "--detect", "1%"]], ids=["few", "both"])
def test_a_bad_count_is_refused_before_any_framework_is_loaded(capsys, monkeypatch, counts):
    def no_imports(*args, **kwargs):
        raise AssertionError("a framework was loaded before the command line was checked")

    monkeypatch.setattr(frameworks, "resolve", no_imports)
    code, _, err = run_cli(capsys, "xavier", "--fan-in", "10", "--fan-out", "10", *counts, "--no-progress")
    assert code == 2 and err.startswith("initcheck: error: ") and "--samples" in err, err
