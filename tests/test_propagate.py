"""``initcheck propagate``: the theory's closed forms, the checks' level and
power, bad input, the JSON report against its schema, the plots.

Default tests use small stacks (widths 64-256, batch 64-256); the
calibration tests (``make calibrate``) run many seeds for the false-alarm
rate, the power at the command's widths, every framework, and the default
command's speed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from importlib import resources

import numpy as np
import pytest

import initcheck
from initcheck.errors import InputError
from initcheck.frameworks.base import Plan
from initcheck.laws import Uniform
from initcheck.layers import Layer
from initcheck.propagate import ACTIVATIONS, parse_widths, propagate, run_stack
from initcheck.propagate_checks import MIN_DEGREES, REGIMES, decide, theory
from initcheck.schemes import InitSpec


def scaled_plan(law, drawn_law, shape) -> Plan:
    """A plan documenting ``law`` whose draws come from ``drawn_law`` (a planted bug)."""
    def draw(seed):
        return drawn_law.sample(np.random.default_rng(seed), math.prod(shape)).reshape(shape)

    return Plan("planted", "planted sampler", law, tuple(shape), "cpu", "float64", draw)


def planted(widths, spec: InitSpec, activation="linear", gain=1.0, fan_swap=False, batch=256, seed=0, alpha=1e-6):
    """The stack of ``spec``'s documented law, drawn with ``gain`` times its
    std or (``fan_swap``) the law of the swapped fans: checked against the documented one."""
    plans = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        layer = Layer.dense(n_in, n_out)
        law = spec.law(layer.fan_in, layer.fan_out)
        drawn = spec.law(layer.fan_out, layer.fan_in) if fan_swap else law
        drawn = Uniform(gain * drawn.low, gain * drawn.high)
        plans.append(scaled_plan(law, drawn, layer.shape("keras")))
    regime = REGIMES[activation]
    run = run_stack(spec.scheme, "planted", "planted sampler", plans, tuple(widths), ACTIVATIONS[activation], batch,
                    seed, "keras", regime.exact_forward, regime.exact_backward)
    settings = {"layers": len(widths) - 1, "widths": list(widths), "activation": activation, "batch": batch,
                "seed": seed, "alpha": alpha, "dist": "uniform", "inits": [spec.scheme], "frameworks": ["planted"]}
    return decide([run], alpha, settings)


XAVIER = InitSpec("xavier", "uniform")
HE = InitSpec("kaiming", "uniform", mode="fan_in", nonlinearity="relu")


@pytest.fixture(scope="module")
def linear_torch():
    return propagate(4, 128, "linear", "standard,xavier,kaiming", "torch", batch=128, seed=0)


def test_linear_closed_forms(linear_torch):
    """standard: (1/3)^k per layer, xavier: 1, kaiming (2/n): 2^k forward; backward
    the same products from the top; every layer checked and passing."""
    expected = {"standard": 1.0 / 3.0, "xavier": 1.0, "kaiming": 2.0}
    for row in linear_torch:
        factor = expected[row.init]
        assert row.verdict == "PASS", row.reason
        for layer in row.layers:
            assert layer.theory_forward_variance == pytest.approx(factor ** layer.index, rel=1e-6)
            assert layer.theory_backward_variance == pytest.approx(factor ** (4 - layer.index), rel=1e-6)
            assert layer.forward_verdict == layer.backward_verdict == "PASS"
            low, high = layer.forward_check.tolerance
            assert low < layer.forward_variance / layer.theory_forward_variance - 1.0 < high
            assert abs(layer.forward_check.statistic) < 5.0
    standard = linear_torch.row("standard").layers
    ratios = [b.forward_variance / a.forward_variance for a, b in zip(standard, standard[1:])]
    assert ratios == pytest.approx([1.0 / 3.0] * 3, rel=0.1)  # vanishing as (1/3)^k
    assert linear_torch.checks == 24 and linear_torch.exit_code == 0 and bool(linear_torch)


def test_kaiming_relu_keeps_second_moment_one():
    result = propagate(4, 128, "relu", "kaiming,xavier", "torch", batch=128, seed=1)
    kaiming = result.row("kaiming")
    assert kaiming.verdict == "PASS", kaiming.reason
    for layer in kaiming.layers:
        assert layer.theory_forward_variance == pytest.approx(1.0)
        assert layer.forward_variance == pytest.approx(1.0, rel=0.25)
        assert layer.forward_verdict == "PASS" and layer.backward_verdict == "INFO"
        assert layer.saturated == pytest.approx(0.5, abs=0.1)  # ReLU zeros
    xavier = result.row("xavier").layers  # xavier halves E[h²] a layer under ReLU
    assert [l.theory_forward_variance for l in xavier] == pytest.approx([0.5 ** k for k in range(1, 5)])


def test_theory_non_square_widths():
    """Forward uses n_in, backward n_out: Glorot's two products."""
    widths = (784, 1000, 1000, 10)
    moments = [XAVIER.law(a, b).variance for a, b in zip(widths[:-1], widths[1:])]
    forward, backward, weight = theory(widths, moments, REGIMES["linear"])
    assert forward == pytest.approx([784 * moments[0], 784 * moments[0] * 1000 * moments[1],
                                     784 * moments[0] * 1000 * moments[1] * 1000 * moments[2]])
    assert backward == pytest.approx([1000 * moments[1] * 10 * moments[2], 10 * moments[2], 1.0])
    assert weight == pytest.approx([1.0 * backward[0], forward[0] * backward[1], forward[1] * backward[2]])


def test_planted_wrong_gain_fails():
    right = planted((128,) * 4, XAVIER)
    assert right.rows[0].verdict == "PASS", right.rows[0].reason
    wrong = planted((128,) * 4, XAVIER, gain=1.2)
    row = wrong.rows[0]
    assert row.verdict == "FAIL" and wrong.exit_code == 1 and not wrong
    assert all(layer.forward_verdict == "FAIL" for layer in row.layers)
    assert row.layers[0].forward_variance == pytest.approx(1.44, rel=0.05)
    relu = planted((128,) * 4, HE, activation="relu", gain=1.2, seed=3)
    assert relu.rows[0].layers[0].forward_verdict == "FAIL"


def test_planted_fan_swap_fails():
    """kaiming with fan_out where fan_in belongs, on non-square widths."""
    wrong = planted((64, 128, 256, 64), HE, fan_swap=True)
    layers = wrong.rows[0].layers
    assert layers[0].forward_verdict == "FAIL"
    assert layers[0].forward_variance / layers[0].theory_forward_variance == pytest.approx(0.5, rel=0.1)
    assert planted((64, 128, 256, 64), HE).rows[0].verdict == "PASS"


def test_tanh_rows_are_informational():
    result = propagate(3, 64, "tanh", "standard,xavier", "torch", batch=64)
    assert result.checks == 0 and result.exit_code == 0
    for row in result:
        assert row.verdict == "INFO"
        assert all(layer.forward_verdict == "INFO" and "linear-regime" in layer.forward_reason for layer in row.layers)
        assert all(0.0 <= layer.saturated <= 1.0 for layer in row.layers)


def test_narrow_layers_are_informational():
    """A factor of few effective degrees of freedom is not checked."""
    result = propagate(None, "4,4,4", "linear", "xavier", "reference", batch=4)
    layer = result.rows[0].layers[0]
    assert layer.forward_verdict == "INFO" and "degrees of freedom" in layer.forward_reason
    assert MIN_DEGREES >= 50


def test_skip_and_frozen():
    result = propagate(2, 32, "linear", "lecun,xavier", "torch", batch=32)
    lecun = result.row("lecun")
    assert lecun.verdict == "SKIP" and "LeCun" in lecun.reason and not lecun.layers
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.rows[1].verdict = "FAIL"
    with pytest.raises(ValueError):
        result.rows[1].layers[0].activations[0] = 1.0
    with pytest.raises(TypeError):
        result.settings["seed"] = 1
    assert propagate(2, 32, "linear", "lecun", "torch", batch=32).exit_code == 3


def test_api_export():
    import importlib

    assert "propagate" in initcheck.__all__
    importlib.import_module("initcheck.cli_propagate")  # imports the module initcheck.propagate

    assert initcheck.propagate(2, 16, "linear", "standard", batch=16).rows[0].init == "standard"


@pytest.mark.parametrize("args, message", [
    (["--width", "0"], "--width must be positive"),
    (["--activation", "gelu"], "unknown activation"),
    (["--layers", "1"], "at least 2"),
    (["--width", "10,20"], "at least 2"),
    (["--layers", "3", "--width", "8,8,8"], "disagrees"),
    (["--init", "he"], "unknown init"),
    (["--batch", "1"], "--batch"),
    (["-f", "nonesuch"], "unknown framework"),
    (["--alpha", "2"], "--alpha"),
])
def test_bad_input_is_one_line_exit_2(cli, args, message):
    code, out, err = cli("propagate", "--width", "8", *args) if args[0] != "--width" else cli("propagate", *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_parse_widths():
    assert parse_widths("7", 3) == (7, 7, 7, 7)
    assert parse_widths("784,1000,10", None) == (784, 1000, 10)
    with pytest.raises(InputError):
        parse_widths("a,b", None)


@pytest.fixture(scope="module")
def schema():
    return json.loads(resources.files("initcheck").joinpath("schemas/propagate-1.json").read_text(encoding="utf-8"))


def test_cli_table_json_and_plots(cli, tmp_path, schema):
    import jsonschema

    report = tmp_path / "propagate.json"
    code, out, err = cli("propagate", "--width", "32,64,48", "--activation", "linear", "--batch", "64",
                         "--init", "standard,xavier,kaiming,lecun", "--json", report, "--plot", tmp_path / "plots")
    assert code == 0, out + err
    assert "torch.nn.init.xavier_uniform_(w, gain=1.0)" in out and "numpy U(-1/sqrt(n_in)" in out
    assert "PASS" in out and "SKIP: torch.nn.init has no LeCun initializer" in out and "verdict" in out
    assert "Holm over 12 checked variances" in out
    data = json.loads(report.read_text())
    jsonschema.validate(data, schema)
    assert data["schema"] == "initcheck-propagate/1" and data["exit_code"] == 0
    row = data["rows"][1]
    assert (row["init"], row["framework"], row["activation"]) == ("xavier", "torch", "linear")
    assert set(row["layers"][0]) >= {"forward_variance", "theory_forward_variance", "backward_variance",
                                     "theory_backward_variance", "weight_gradient_variance", "saturated"}
    assert data["environment"]["frameworks"]["torch"]
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == ["propagate-01-standard-numpy.png", "propagate-02-xavier-torch.png",
                     "propagate-03-kaiming-torch.png", "variance-vs-depth.png"]
    broken = json.loads(report.read_text())
    broken["rows"][0]["layers"][0]["forward_verdict"] = "MAYBE"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_cli_planted_failure_exit_1(cli, monkeypatch):
    """A framework whose initializer draws with gain 1.2: FAIL, exit 1."""
    from initcheck.frameworks import reference

    original = reference.Reference.plan

    def wrong_gain(self, spec, layer, device, dtype):
        plan = original(self, spec, layer, device, dtype)
        draw = plan.draw
        plan.draw = lambda seed: 1.2 * draw(seed)
        return plan

    monkeypatch.setattr(reference.Reference, "plan", wrong_gain)
    code, out, err = cli("propagate", "--width", "64", "--layers", "3", "--activation", "linear", "--batch", "64",
                         "--init", "xavier", "-f", "reference")
    assert code == 1 and "FAIL" in out and "leaves its tolerance" in out


# --- calibration: make calibrate -------------------------------------------------------------


@pytest.mark.calibration
@pytest.mark.parametrize("activation, widths, batch", [
    ("linear", (64,) * 5, 64),
    ("linear", (16, 64, 32, 128, 8), 32),
    ("relu", (128,) * 5, 64),
])
def test_calibration_false_alarms(activation, widths, batch):
    """Over 300 seeds per setting the z statistics are N(0, 1): sd within 10%,
    the share beyond 2 and 3 at most the normal's plus binomial noise, and the
    family-wise rate at alpha 0.01 at most alpha plus its noise."""
    zs, failed_runs, runs = [], 0, 300
    for seed in range(runs):
        result = propagate(None, ",".join(map(str, widths)), activation, "standard,xavier,kaiming", "reference",
                           batch=batch, seed=seed, alpha=0.01)
        failed_runs += not result.passed
        zs += [c.statistic for row in result for layer in row.layers
               for c in (layer.forward_check, layer.backward_check) if c is not None]
    zs = np.array(zs)
    assert len(zs) > 1000
    assert abs(zs.std() - 1.0) < 0.1 and abs(zs.mean()) < 0.15
    for cut, tail in ((2.0, 0.0455), (3.0, 0.0027)):
        share = np.mean(np.abs(zs) > cut)
        assert share < tail + 4.0 * math.sqrt(tail / len(zs)) * 3.0  # z's are dependent within a run
    assert failed_runs / runs <= 0.01 + 3.0 * math.sqrt(0.01 / runs)


@pytest.mark.calibration
def test_calibration_power_at_the_commands_widths():
    """gain 1.2 and fan_out for fan_in on 784 -> 1000 -> 1000 -> 10, batch 1000: every seed fails."""
    for seed in range(5):
        assert planted((784, 1000, 1000, 10), XAVIER, gain=1.2, batch=1000, seed=seed).rows[0].verdict == "FAIL"
        swapped = planted((784, 1000, 1000, 10), HE, fan_swap=True, batch=1000, seed=seed).rows[0]
        assert swapped.layers[0].forward_verdict == "FAIL"
        swapped_relu = planted((784, 1000, 1000, 10), HE, activation="relu", fan_swap=True, batch=1000, seed=seed)
        assert swapped_relu.rows[0].layers[0].forward_verdict == "FAIL"
        assert planted((784, 1000, 1000, 10), HE, activation="relu", batch=1000, seed=seed).rows[0].verdict == "PASS"


@pytest.mark.calibration
@pytest.mark.parametrize("framework", ["torch", "jax", "keras", "paddle"])
def test_calibration_every_framework(framework):
    from initcheck import frameworks as registry

    if not registry.installed(framework):
        pytest.skip(f"{framework} is not installed")
    result = propagate(3, "96,128,64,32", "linear", "xavier,kaiming", framework, batch=128)
    assert [row.verdict for row in result] == ["PASS", "PASS"], [row.reason for row in result]


@pytest.mark.calibration
def test_calibration_default_command_speed(cli):
    started = time.perf_counter()
    code, out, err = cli("propagate")
    assert code == 0 and "3 INFO" in out
    assert time.perf_counter() - started < 30.0
