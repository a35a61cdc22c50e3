"""Each framework against the law it documents (DESIGN.md section 2).

The same command checks PyTorch, Keras 3 (TensorFlow) and JAX, each against its
own documented law: the rows must PASS where the framework has the initializer,
SKIP with a reason where it has not (never FAIL, never a look-alike), and the law
and API printed in each row must be the framework's own.

Everything runs in-process through ``initcheck.cli.main`` with ``--json`` and a
small N on the default seed, so the outcome is deterministic.  The heavy commands
run once per module (see :func:`matrix`) and several tests read their report.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re

import numpy as np
import pytest

from initcheck import frameworks
from initcheck.checks import evaluate
from initcheck.cli import main
from initcheck.laws import TRUNCATION_CORRECTION, Constant
from initcheck.layers import Layer
from initcheck.reducers import HostReducer
from initcheck.schemes import gain
from helpers import run_cli

SMALL = ["-n", "2e5", "--no-progress"]
#: The matrix (three schemes x three distributions x two layers x four frameworks) at half that N.
MATRIX_SMALL = ["-n", "1e5", "--no-progress"]
FRAMEWORKS = ("torch", "keras", "jax")
DISTS = "normal,uniform,truncated-normal"
#: The two layers of the matrix: a dense 300 -> 200 and a 16 -> 32 3x3 conv.
DENSE = ["--fan-in", "300", "--fan-out", "200"]
CONV = ["--shape", "32,16,3,3"]
LAYERS = {"dense 300→200": (300, 200), "conv 16→32 3×3": (16 * 9, 32 * 9)}

pytestmark = pytest.mark.skipif(
    not all(frameworks.installed(name) for name in FRAMEWORKS),
    reason="needs torch, tensorflow/keras and jax installed",
)


# --------------------------------------------------------------------------- helpers


def run_json(capsys, tmp_path, *args):
    """Run a checking command with --json and a small N; returns (exit code, report)."""
    path = tmp_path / "report.json"
    code, out, err = run_cli(capsys, *args, "--json", str(path), *SMALL)
    assert code in (0, 1), out + err
    return code, json.loads(path.read_text())


def invoke(path, *args):
    """Like :func:`run_json` without capsys, for module-scoped fixtures."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([*args, "--json", str(path), *MATRIX_SMALL])
        except SystemExit as exit_info:
            code = exit_info.code
        else:  # pragma: no cover - main always exits
            code = None
    assert code in (0, 1), out.getvalue() + err.getvalue()
    return code, json.loads(path.read_text())


def row(report, framework, dist=None, layer=None):
    """The one row of ``framework`` (with the distribution and layer, if given)."""
    found = [
        r for r in report["rows"]
        if r["framework"] == framework
        and (dist is None or r["initializer"].split(" (")[0].split()[-1] == dist)
        and (layer is None or r["layer"] == layer)
    ]
    assert len(found) == 1, (framework, dist, layer, [(r["framework"], r["initializer"], r["layer"]) for r in report["rows"]])
    return found[0]


def failed_checks(r) -> set[str]:
    return {c["name"] for c in r["checks"] if not c["passed"]}


def api_scale(api: str) -> float:
    """The scale a VarianceScaling / variance_scaling call in ``api`` was given."""
    match = re.search(r"VarianceScaling\(scale=([^,]+),", api) or re.search(r"variance_scaling\(([^,]+),", api)
    assert match, api
    return float(match.group(1))


# --------------------------------------------------------------------------- the matrix


class Matrix(dict):
    """scheme -> (exit code, report), each command run on first use.

    xavier runs on both layers (the conv layouts are checked there); kaiming
    and lecun run on the dense layer, and on both under ``--calibration``."""

    def __init__(self, folder, full: bool):
        super().__init__()
        self.folder, self.full = folder, full

    def layers(self, scheme: str) -> dict:
        return LAYERS if self.full or scheme == "xavier" else {"dense 300→200": LAYERS["dense 300→200"]}

    def __missing__(self, scheme):
        options = {"xavier": [], "kaiming": ["--nonlinearity", "relu"], "lecun": []}[scheme]
        conv = CONV if len(self.layers(scheme)) == 2 else []
        self[scheme] = invoke(self.folder / f"{scheme}.json", scheme, "--dist", DISTS, *DENSE, *conv, *options)
        return self[scheme]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory, request):
    """xavier, kaiming (relu) and lecun in every distribution, all frameworks."""
    return Matrix(tmp_path_factory.mktemp("matrix"), request.config.getoption("--calibration"))


#: (scheme, dist) -> why torch skips it, or None when torch has it.
TORCH_SKIPS = {
    ("lecun", "normal"): "LeCun",
    ("lecun", "uniform"): "LeCun",
    ("lecun", "truncated-normal"): "LeCun",
    ("xavier", "truncated-normal"): "truncated-normal",
    ("kaiming", "truncated-normal"): "truncated-normal",
}


@pytest.mark.parametrize("scheme", [
    "xavier", "kaiming", "lecun",
    # kaiming and lecun on the conv layer as well: the layouts are xavier's
    pytest.param("kaiming", marks=pytest.mark.calibration, id="kaiming-conv"),
    pytest.param("lecun", marks=pytest.mark.calibration, id="lecun-conv"),
])
def test_every_framework_passes_or_skips_with_a_reason(matrix, scheme):
    code, report = matrix[scheme]
    assert code == 0
    assert report["verdicts"]["fail"] == 0
    layers = matrix.layers(scheme)
    assert len(report["rows"]) == 3 * len(layers) * 4  # dists x layers x (3 frameworks + reference)
    for dist in DISTS.split(","):
        for layer in layers:
            for framework in (*FRAMEWORKS, "reference"):
                r = row(report, framework, dist, layer)
                skip = TORCH_SKIPS.get((scheme, dist)) if framework == "torch" else None
                if skip:
                    assert r["verdict"] == "SKIP", r
                    assert skip in r["reason"] and r["law"] is None and not r["checks"]
                else:
                    assert r["verdict"] == "PASS", (framework, dist, layer, r["reason"])
                    assert {"finite", "mean", "variance", "ks"} <= {c["name"] for c in r["checks"]}
                    assert all(c["passed"] for c in r["checks"])


def test_rows_use_each_frameworks_own_layout(matrix):
    _, report = matrix["xavier"]
    assert row(report, "torch", "normal", "dense 300→200")["shape"] == [200, 300]
    assert row(report, "torch", "normal", "conv 16→32 3×3")["shape"] == [32, 16, 3, 3]
    for framework in ("keras", "jax"):
        assert row(report, framework, "normal", "dense 300→200")["shape"] == [300, 200]
        assert row(report, framework, "normal", "conv 16→32 3×3")["shape"] == [3, 3, 16, 32]


# --------------------------------------------------------------------------- the law table


@pytest.mark.parametrize("layer", list(LAYERS))
def test_xavier_normal_law_per_framework(matrix, layer):
    _, report = matrix["xavier"]
    fan_in, fan_out = LAYERS[layer]
    std = math.sqrt(2.0 / (fan_in + fan_out))

    torch_row = row(report, "torch", "normal", layer)
    assert torch_row["law"]["family"] == "normal"
    assert torch_row["law"]["sigma"] == pytest.approx(std, rel=1e-12)
    assert torch_row["law"]["mu"] == 0.0
    assert "xavier_normal_" in torch_row["api"]

    sigma = std / 0.87962566103423978
    for framework, name in (("keras", "GlorotNormal"), ("jax", "glorot_normal")):
        r = row(report, framework, "normal", layer)
        law = r["law"]
        assert law["family"] == "truncated_normal", r
        assert law["sigma"] == pytest.approx(sigma, rel=1e-12)
        assert law["low"] == pytest.approx(-2.0 * sigma, rel=1e-12)
        assert law["high"] == pytest.approx(2.0 * sigma, rel=1e-12)
        assert law["mu"] == 0.0
        assert name in r["api"]
        assert "Uniform" not in r["api"] and "uniform" not in r["api"]
    assert TRUNCATION_CORRECTION == 0.87962566103423978

    assert row(report, "reference", "normal", layer)["law"]["family"] == "normal"


@pytest.mark.parametrize("layer", list(LAYERS))
def test_xavier_uniform_law_is_the_same_everywhere(matrix, layer):
    _, report = matrix["xavier"]
    fan_in, fan_out = LAYERS[layer]
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    names = {"torch": "xavier_uniform_", "keras": "GlorotUniform", "jax": "glorot_uniform", "reference": "uniform"}
    for framework, name in names.items():
        r = row(report, framework, "uniform", layer)
        assert r["law"]["family"] == "uniform"
        assert r["law"]["low"] == pytest.approx(-bound, rel=1e-12)
        assert r["law"]["high"] == pytest.approx(bound, rel=1e-12)
        assert name in r["api"]


def test_xavier_truncated_normal_is_the_named_glorot_normal(matrix):
    _, report = matrix["xavier"]
    for framework, name in (("keras", "GlorotNormal()"), ("jax", "glorot_normal()")):
        r = row(report, framework, "truncated-normal", "dense 300→200")
        assert name in r["api"] and r["law"]["family"] == "truncated_normal"


def test_kaiming_relu_fan_in_is_he(matrix):
    _, report = matrix["kaiming"]
    for dist, keras_name, jax_name, torch_name in (
        ("normal", "HeNormal()", "he_normal()", "kaiming_normal_"),
        ("uniform", "HeUniform()", "he_uniform()", "kaiming_uniform_"),
        ("truncated-normal", "HeNormal()", "he_normal()", None),
    ):
        for layer, (fan_in, _) in matrix.layers("kaiming").items():
            assert keras_name in row(report, "keras", dist, layer)["api"]
            assert jax_name in row(report, "jax", dist, layer)["api"]
            if torch_name:
                torch_row = row(report, "torch", dist, layer)
                assert torch_name in torch_row["api"] and "nonlinearity='relu'" in torch_row["api"]
            std = math.sqrt(2.0 / fan_in)
            law = row(report, "keras", dist, layer)["law"]
            if dist == "uniform":
                assert law["high"] == pytest.approx(math.sqrt(3.0) * std, rel=1e-12)
            else:
                assert law["family"] == "truncated_normal"
                assert law["sigma"] == pytest.approx(std / TRUNCATION_CORRECTION, rel=1e-12)
    torch_normal = row(report, "torch", "normal", "dense 300→200")["law"]
    assert torch_normal["family"] == "normal" and torch_normal["sigma"] == pytest.approx(math.sqrt(2.0 / 300))


@pytest.mark.parametrize(
    "options, nonlinearity, mode",
    [
        (["--nonlinearity", "tanh"], "tanh", "fan_in"),
        (["--nonlinearity", "relu", "--mode", "fan_out"], "relu", "fan_out"),
    ],
    ids=["tanh-fan_in", "relu-fan_out"],
)
def test_kaiming_other_gains_or_fan_out_use_variance_scaling(capsys, tmp_path, options, nonlinearity, mode):
    code, report = run_json(capsys, tmp_path, "kaiming", "--dist", "normal,uniform", *DENSE, *options)
    assert code == 0
    scale = gain(nonlinearity) ** 2
    fan = 300 if mode == "fan_in" else 200
    for dist, keras_dist, jax_dist in (("normal", "truncated_normal", "truncated_normal"), ("uniform", "uniform", "uniform")):
        keras_row = row(report, "keras", dist)
        jax_row = row(report, "jax", dist)
        assert "keras.initializers.VarianceScaling(" in keras_row["api"], keras_row["api"]
        assert "jax.nn.initializers.variance_scaling(" in jax_row["api"], jax_row["api"]
        for r in (keras_row, jax_row):
            assert api_scale(r["api"]) == pytest.approx(scale, rel=1e-12), r["api"]
            assert r["verdict"] == "PASS", r["reason"]
        assert f"mode='{mode}'" in keras_row["api"] and f"distribution='{keras_dist}'" in keras_row["api"]
        assert f"'{mode}'" in jax_row["api"] and f"'{jax_dist}'" in jax_row["api"]
        torch_row = row(report, "torch", dist)
        assert torch_row["verdict"] == "PASS" and f"mode='{mode}'" in torch_row["api"]
        assert f"nonlinearity='{nonlinearity}'" in torch_row["api"]
    std = math.sqrt(scale / fan)
    assert row(report, "torch", "normal")["law"]["sigma"] == pytest.approx(std, rel=1e-12)
    assert row(report, "keras", "normal")["law"]["sigma"] == pytest.approx(std / TRUNCATION_CORRECTION, rel=1e-12)
    assert row(report, "jax", "uniform")["law"]["high"] == pytest.approx(math.sqrt(3.0) * std, rel=1e-12)


def test_lecun_names(matrix):
    _, report = matrix["lecun"]
    for dist, keras_name, jax_name in (
        ("normal", "LecunNormal()", "lecun_normal()"),
        ("uniform", "LecunUniform()", "lecun_uniform()"),
        ("truncated-normal", "LecunNormal()", "lecun_normal()"),
    ):
        assert keras_name in row(report, "keras", dist, "dense 300→200")["api"]
        assert jax_name in row(report, "jax", dist, "dense 300→200")["api"]
    law = row(report, "jax", "normal", "dense 300→200")["law"]
    assert law["sigma"] == pytest.approx(math.sqrt(1.0 / 300) / TRUNCATION_CORRECTION, rel=1e-12)


def test_variance_scaling_normal_means_truncated_in_keras_and_plain_in_jax(capsys, tmp_path):
    code, report = run_json(
        capsys, tmp_path, "variance-scaling", "--scale", "2", "--mode", "fan_out", "--dist", "normal",
        "--fan-in", "300", "--fan-out", "100",
    )
    assert code == 0
    std = math.sqrt(2.0 / 100)
    keras_row, jax_row, torch_row = row(report, "keras"), row(report, "jax"), row(report, "torch")
    assert keras_row["verdict"] == jax_row["verdict"] == "PASS"
    assert keras_row["api"] == "keras.initializers.VarianceScaling(scale=2.0, mode='fan_out', distribution='normal')"
    assert jax_row["api"] == "jax.nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')"
    assert keras_row["law"]["family"] == "truncated_normal"
    assert keras_row["law"]["sigma"] == pytest.approx(std / TRUNCATION_CORRECTION, rel=1e-12)
    assert keras_row["law"]["high"] == pytest.approx(2.0 * std / TRUNCATION_CORRECTION, rel=1e-12)
    assert jax_row["law"]["family"] == "normal"
    assert jax_row["law"]["sigma"] == pytest.approx(std, rel=1e-12)
    assert torch_row["verdict"] == "SKIP" and "variance_scaling" in torch_row["reason"]
    assert row(report, "reference")["law"]["family"] == "normal"


# --------------------------------------------------------------------------- trunc-normal


def test_trunc_normal_at_two_std_runs_everywhere(capsys, tmp_path):
    code, report = run_json(capsys, tmp_path, "trunc-normal", "--std", "0.1", "--low", "-0.2", "--high", "0.2")
    assert code == 0
    for framework in (*FRAMEWORKS, "reference"):
        r = row(report, framework)
        assert r["verdict"] == "PASS", (framework, r["reason"])
        law = r["law"]
        assert law["family"] == "truncated_normal"
        assert (law["mu"], law["sigma"]) == (0.0, pytest.approx(0.1))
        assert (law["low"], law["high"]) == (pytest.approx(-0.2), pytest.approx(0.2))
    assert "trunc_normal_(w, mean=0.0, std=0.1, a=-0.2, b=0.2)" in row(report, "torch")["api"]
    assert "TruncatedNormal(mean=0.0, stddev=0.1)" in row(report, "keras")["api"]
    assert "truncated_normal(stddev=0.1, lower=-2.0, upper=2.0)" in row(report, "jax")["api"]


def test_trunc_normal_other_bounds_skip_on_keras_only(capsys, tmp_path):
    code, report = run_json(capsys, tmp_path, "trunc-normal", "--std", "0.02", "--low", "-0.03", "--high", "0.04")
    assert code == 0
    torch_row, keras_row, jax_row = row(report, "torch"), row(report, "keras"), row(report, "jax")
    assert torch_row["verdict"] == "PASS"
    assert (torch_row["law"]["low"], torch_row["law"]["high"]) == (-0.03, 0.04)  # absolute bounds
    assert "a=-0.03, b=0.04" in torch_row["api"]
    assert keras_row["verdict"] == "SKIP"
    assert "TruncatedNormal" in keras_row["reason"] and "2 stddev" in keras_row["reason"]
    assert jax_row["verdict"] == "PASS"
    assert "lower=-1.5, upper=2.0" in jax_row["api"]  # bounds in units of stddev
    assert (jax_row["law"]["low"], jax_row["law"]["high"]) == (pytest.approx(-0.03), pytest.approx(0.04))


def test_trunc_normal_with_a_mean_skips_on_jax(capsys, tmp_path):
    code, report = run_json(
        capsys, tmp_path, "trunc-normal", "--std", "0.1", "--mean", "0.5", "--low", "0.3", "--high", "0.7"
    )
    assert code == 0
    assert row(report, "torch")["verdict"] == "PASS"
    keras_row = row(report, "keras")
    assert keras_row["verdict"] == "PASS" and "TruncatedNormal(mean=0.5, stddev=0.1)" in keras_row["api"]
    assert keras_row["law"]["mu"] == 0.5
    jax_row = row(report, "jax")
    assert jax_row["verdict"] == "SKIP" and "mean 0" in jax_row["reason"] and "0.5" in jax_row["reason"]


# --------------------------------------------------------------------------- --reference paper


def test_reference_paper_fails_keras_and_jax_on_shape_not_variance(capsys, tmp_path):
    path = tmp_path / "paper.json"
    code, out, err = run_cli(
        capsys, "xavier", "--dist", "normal", "--reference", "paper", *DENSE, "-n", "1e6", "--no-progress",
        "--json", str(path),
    )
    assert code == 1, out + err
    report = json.loads(path.read_text())
    assert report["exit_code"] == 1
    std = math.sqrt(2.0 / 500)
    for framework in ("keras", "jax"):
        r = row(report, framework)
        assert r["verdict"] == "FAIL"
        assert r["law"]["family"] == "normal" and r["law"]["sigma"] == pytest.approx(std)
        assert failed_checks(r) == {"ks"}, r["reason"]  # the corrected truncation keeps the variance
        assert "KS" in r["reason"]
    for framework in ("torch", "reference"):
        r = row(report, framework)
        assert r["verdict"] == "PASS", r["reason"]
        assert r["law"]["family"] == "normal"
    assert "against the paper's law" in row(report, "keras")["initializer"]


# --------------------------------------------------------------------------- layouts and fans


def test_keras_layout_gives_the_same_layer(matrix, capsys, tmp_path):
    code, report = run_json(capsys, tmp_path, "xavier", "--dist", "normal", "--shape", "3,3,16,32", "--layout", "keras")
    assert code == 0
    _, torch_layout = matrix["xavier"]
    for framework in (*FRAMEWORKS, "reference"):
        r = row(report, framework)
        same = row(torch_layout, framework, "normal", "conv 16→32 3×3")
        assert r["layer"] == "conv 16→32 3×3"
        assert r["shape"] == same["shape"]
        assert r["law"] == same["law"]
    assert row(report, "keras")["shape"] == [3, 3, 16, 32]
    assert row(report, "torch")["shape"] == [32, 16, 3, 3]


FAN_LAYERS = [
    Layer(300, 200),
    Layer(1, 1),
    Layer(16, 32, (5,)),
    Layer(16, 32, (3, 3)),
    Layer(3, 64, (7, 5)),
    Layer(8, 4, (3, 3, 3)),
]


@pytest.mark.parametrize("name", [*FRAMEWORKS, "reference"])
@pytest.mark.parametrize("layer", FAN_LAYERS, ids=lambda layer: layer.describe())
def test_framework_fans_match_the_layer(name, layer):
    fan_in, fan_out = frameworks.load(name).fans(layer)
    assert (int(fan_in), int(fan_out)) == (layer.fan_in, layer.fan_out)
    assert fan_in == layer.fan_in and fan_out == layer.fan_out


# --------------------------------------------------------------------------- error paths


@pytest.mark.parametrize("name, title", [("keras", "Keras"), ("jax", "JAX")])
def test_cuda_without_a_gpu_is_one_line_and_exit_2(capsys, name, title):
    if any("gpu" in d.lower() or "cuda" in d.lower() for d in frameworks.load(name).devices()):
        pytest.skip(f"{name} sees a GPU here")
    code, out, err = run_cli(capsys, "xavier", *DENSE, "--device", "cuda", "-f", name, *SMALL)
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("initcheck: error:"), err
    assert title in lines[0] and "cuda:0" in lines[0]
    assert "Traceback" not in out + err


@pytest.mark.parametrize("name", ["keras", "jax"])
def test_framework_named_but_not_installed_is_exit_2(capsys, monkeypatch, name):
    monkeypatch.setattr(frameworks, "installed", lambda other: other != name)
    code, out, err = run_cli(capsys, "xavier", *DENSE, "-f", f"torch,{name}", *SMALL)
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "not installed" in lines[0] and repr(name) in lines[0]


# --------------------------------------------------------------------------- layer defaults


def test_layer_defaults_torch_and_keras(capsys, tmp_path):
    code, report = run_json(capsys, tmp_path, "defaults", *DENSE, "-f", "torch,keras")
    assert code == 0
    assert {r["framework"] for r in report["rows"]} == {"torch", "keras"}
    assert all(r["verdict"] == "PASS" for r in report["rows"]), [r["reason"] for r in report["rows"]]
    torch_bound = 1.0 / math.sqrt(300)
    torch_rows = {r["initializer"]: r for r in report["rows"] if r["framework"] == "torch"}
    assert set(torch_rows) == {"default weight", "default bias"}
    for r in torch_rows.values():
        assert r["law"]["family"] == "uniform"
        assert r["law"]["low"] == pytest.approx(-torch_bound, rel=1e-12)
        assert r["law"]["high"] == pytest.approx(torch_bound, rel=1e-12)
        assert "torch.nn.Linear(300, 200)" in r["api"]
    assert torch_rows["default weight"]["shape"] == [200, 300]
    assert torch_rows["default bias"]["shape"] == [200]
    keras_rows = {r["initializer"]: r for r in report["rows"] if r["framework"] == "keras"}
    kernel, bias = keras_rows["default kernel"], keras_rows["default bias"]
    assert kernel["law"]["family"] == "uniform"
    assert kernel["law"]["high"] == pytest.approx(math.sqrt(6.0 / 500), rel=1e-12)
    assert kernel["law"]["low"] == pytest.approx(-math.sqrt(6.0 / 500), rel=1e-12)
    assert kernel["shape"] == [300, 200] and "keras.layers.Dense(200)" in kernel["api"]
    assert bias["law"]["family"] == "constant" and bias["law"]["value"] == 0.0
    assert {c["name"] for c in bias["checks"]} == {"finite", "constant"}


def constant_checks(values, law):
    reducer = HostReducer(law)
    reducer.fold(np.asarray(values, dtype=np.float32))
    return {c.name: c for c in evaluate(law, reducer.summary(), np.float32)}


def test_constant_law_passes_on_exact_zeros():
    checks = constant_checks(np.zeros(1000), Constant(0.0))
    assert checks["constant"].passed and checks["finite"].passed


@pytest.mark.parametrize("planted", [0.1, -1e-8, 1e-30])
def test_constant_law_fails_on_a_nonzero_value(planted):
    values = np.zeros(1000)
    values[123] = planted
    checks = constant_checks(values, Constant(0.0))
    assert checks["constant"].passed is False
    assert checks["constant"].statistic == pytest.approx(abs(np.float32(planted)))
    assert "expected all 0" in checks["constant"].detail


def test_constant_law_fails_on_a_nonzero_constant():
    checks = constant_checks(np.full(500, 0.5), Constant(0.0))
    assert checks["constant"].passed is False
    checks = constant_checks(np.full(500, 0.5), Constant(0.5))
    assert checks["constant"].passed is True
