"""Schemes: gains against torch, variance scaling, and the laws InitSpec resolves to."""

from __future__ import annotations

import math

import pytest

from initcheck.errors import InputError
from initcheck.laws import TRUNCATION_CORRECTION, Normal, TruncatedNormal, Uniform
from initcheck.schemes import (
    DISTRIBUTIONS,
    MODES,
    NONLINEARITIES,
    InitSpec,
    fan,
    gain,
    variance_scaling,
)

FAN_IN, FAN_OUT = 576, 1152  # a (128, 64, 3, 3) convolution
FANS = [(1, 1), (10, 30), (576, 1152), (300, 100), (4096, 1000)]


def n_of(mode: str, fan_in: int, fan_out: int) -> float:
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


# ---------------------------------------------------------------- gains


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_gain_matches_torch(nonlinearity):
    torch = pytest.importorskip("torch")
    assert gain(nonlinearity) == pytest.approx(torch.nn.init.calculate_gain(nonlinearity), rel=1e-15)


@pytest.mark.parametrize("param", [None, 0.0, 0.01, 0.2, 1.0, 3.0, -0.1])
def test_leaky_relu_gain_matches_torch(param):
    torch = pytest.importorskip("torch")
    assert gain("leaky_relu", param) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", param), rel=1e-15
    )


def test_gain_values():
    for linear in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                   "conv_transpose3d", "sigmoid"):
        assert gain(linear) == 1.0
    assert gain("tanh") == pytest.approx(5 / 3, rel=1e-15)
    assert gain("relu") == pytest.approx(math.sqrt(2), rel=1e-15)
    assert gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)), rel=1e-15)
    assert gain("leaky_relu", None) == gain("leaky_relu")
    assert gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04), rel=1e-15)
    assert gain("leaky_relu", 0.0) == pytest.approx(math.sqrt(2), rel=1e-15)
    assert gain("selu") == 0.75


@pytest.mark.parametrize("name", ["gelu", "ReLU", "", "softmax", "leaky-relu"])
def test_unknown_nonlinearity_raises_input_error(name):
    with pytest.raises(InputError):
        gain(name)


# ---------------------------------------------------------------- fans and modes


@pytest.mark.parametrize("fan_in, fan_out", FANS)
def test_fan_modes(fan_in, fan_out):
    assert fan("fan_in", fan_in, fan_out) == fan_in
    assert fan("fan_out", fan_in, fan_out) == fan_out
    assert fan("fan_avg", fan_in, fan_out) == (fan_in + fan_out) / 2


def test_unknown_mode_raises_input_error():
    with pytest.raises(InputError):
        fan("fan_sum", 10, 20)
    with pytest.raises(InputError):
        variance_scaling(1.0, "fan_sum", "normal", 10, 20)


# ---------------------------------------------------------------- variance scaling


@pytest.mark.parametrize("scale", [1.0, 2.0, 1 / 3, 0.1])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fan_in, fan_out", FANS)
def test_variance_scaling_normal(scale, mode, fan_in, fan_out):
    law = variance_scaling(scale, mode, "normal", fan_in, fan_out)
    n = n_of(mode, fan_in, fan_out)
    assert isinstance(law, Normal)
    assert law.mu == 0.0
    assert law.sigma == pytest.approx(math.sqrt(scale / n), rel=1e-14)
    assert law.variance == pytest.approx(scale / n, rel=1e-14)


@pytest.mark.parametrize("scale", [1.0, 2.0, 1 / 3, 0.1])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fan_in, fan_out", FANS)
def test_variance_scaling_uniform(scale, mode, fan_in, fan_out):
    law = variance_scaling(scale, mode, "uniform", fan_in, fan_out)
    n = n_of(mode, fan_in, fan_out)
    bound = math.sqrt(3 * scale / n)
    assert isinstance(law, Uniform)
    assert law.high == pytest.approx(bound, rel=1e-14)
    assert law.low == -law.high
    assert law.mean == 0.0
    assert law.variance == pytest.approx(scale / n, rel=1e-13)


@pytest.mark.parametrize("scale", [1.0, 2.0, 1 / 3, 0.1])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fan_in, fan_out", FANS)
def test_variance_scaling_truncated_normal(scale, mode, fan_in, fan_out):
    law = variance_scaling(scale, mode, "truncated-normal", fan_in, fan_out)
    n = n_of(mode, fan_in, fan_out)
    assert isinstance(law, TruncatedNormal)
    assert law.mu == 0.0
    assert law.sigma == pytest.approx(math.sqrt(scale / n) / TRUNCATION_CORRECTION, rel=1e-14)
    # cut at +-2 sigma of the underlying normal
    assert law.low == pytest.approx(-2 * law.sigma, rel=1e-15)
    assert law.high == pytest.approx(2 * law.sigma, rel=1e-15)
    # the truncated law itself has the variance the scheme asks for
    assert law.variance == pytest.approx(scale / n, rel=1e-12)
    assert law.mean == pytest.approx(0.0, abs=1e-15 * law.sigma)


def test_variance_scaling_modes_differ():
    a = variance_scaling(1.0, "fan_in", "normal", 300, 100)
    b = variance_scaling(1.0, "fan_out", "normal", 300, 100)
    c = variance_scaling(1.0, "fan_avg", "normal", 300, 100)
    assert a.variance == pytest.approx(1 / 300)
    assert b.variance == pytest.approx(1 / 100)
    assert c.variance == pytest.approx(1 / 200)


@pytest.mark.parametrize("dist", ["gaussian", "truncated_normal", "untruncated_normal", "", None])
def test_variance_scaling_unknown_distribution_raises_input_error(dist):
    with pytest.raises(InputError):
        variance_scaling(1.0, "fan_in", dist, 10, 20)


# ---------------------------------------------------------------- InitSpec: named schemes


@pytest.mark.parametrize("g", [None, 1.0, 1.5, 5 / 3])
@pytest.mark.parametrize("fan_in, fan_out", FANS)
def test_xavier_normal(g, fan_in, fan_out):
    law = InitSpec("xavier", dist="normal", gain=g).law(fan_in, fan_out)
    expected = (1.0 if g is None else g) * math.sqrt(2.0 / (fan_in + fan_out))
    assert isinstance(law, Normal)
    assert law.mu == 0.0
    assert law.sigma == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("g", [None, 1.5])
@pytest.mark.parametrize("fan_in, fan_out", FANS)
def test_xavier_uniform(g, fan_in, fan_out):
    law = InitSpec("xavier", dist="uniform", gain=g).law(fan_in, fan_out)
    expected = (1.0 if g is None else g) * math.sqrt(6.0 / (fan_in + fan_out))
    assert isinstance(law, Uniform)
    assert law.high == pytest.approx(expected, rel=1e-14)
    assert law.low == -law.high


def test_xavier_ignores_mode():
    law = InitSpec("xavier", dist="normal", mode="fan_in").law(300, 100)
    assert law.sigma == pytest.approx(math.sqrt(2 / 400), rel=1e-14)


@pytest.mark.parametrize("fan_in, fan_out", FANS)
def test_kaiming_default_is_leaky_relu_with_slope_zero(fan_in, fan_out):
    spec = InitSpec("kaiming", dist="normal")
    assert spec.effective_gain == pytest.approx(math.sqrt(2), rel=1e-15)
    assert spec.effective_mode == "fan_in"
    law = spec.law(fan_in, fan_out)
    assert isinstance(law, Normal)
    assert law.sigma == pytest.approx(math.sqrt(2.0 / fan_in), rel=1e-14)


def test_kaiming_default_matches_torch_documentation():
    """kaiming_normal_(a=0, mode='fan_in', nonlinearity='leaky_relu'): std = gain / sqrt(fan_in)."""
    torch = pytest.importorskip("torch")
    g = torch.nn.init.calculate_gain("leaky_relu", 0)
    law = InitSpec("kaiming", dist="normal").law(FAN_IN, FAN_OUT)
    assert law.sigma == pytest.approx(g / math.sqrt(FAN_IN), rel=1e-14)


@pytest.mark.parametrize("fan_in, fan_out", FANS)
def test_kaiming_fan_out(fan_in, fan_out):
    law = InitSpec("kaiming", dist="normal", mode="fan_out").law(fan_in, fan_out)
    assert law.sigma == pytest.approx(math.sqrt(2.0 / fan_out), rel=1e-14)


@pytest.mark.parametrize("fan_in, fan_out", FANS)
def test_kaiming_relu_uniform(fan_in, fan_out):
    law = InitSpec("kaiming", dist="uniform", nonlinearity="relu").law(fan_in, fan_out)
    assert isinstance(law, Uniform)
    assert law.high == pytest.approx(math.sqrt(6.0 / fan_in), rel=1e-14)
    assert law.low == -law.high


@pytest.mark.parametrize("slope", [None, 0.0, 0.2, 1.0])
def test_kaiming_leaky_relu_slope(slope):
    spec = InitSpec("kaiming", dist="normal", nonlinearity="leaky_relu", slope=slope)
    a = 0.0 if slope is None else slope  # kaiming's own default slope is 0
    law = spec.law(FAN_IN, FAN_OUT)
    assert law.sigma == pytest.approx(math.sqrt(2.0 / (1 + a * a)) / math.sqrt(FAN_IN), rel=1e-14)


@pytest.mark.parametrize("nonlinearity", ["tanh", "selu", "linear", "sigmoid"])
def test_kaiming_gain_of_the_nonlinearity(nonlinearity):
    law = InitSpec("kaiming", dist="normal", nonlinearity=nonlinearity).law(FAN_IN, FAN_OUT)
    assert law.sigma == pytest.approx(gain(nonlinearity) / math.sqrt(FAN_IN), rel=1e-14)


def test_kaiming_truncated_normal():
    law = InitSpec("kaiming", dist="truncated-normal").law(FAN_IN, FAN_OUT)
    assert isinstance(law, TruncatedNormal)
    assert law.variance == pytest.approx(2.0 / FAN_IN, rel=1e-12)
    assert law.low == pytest.approx(-2 * law.sigma, rel=1e-15)
    assert law.high == pytest.approx(2 * law.sigma, rel=1e-15)


@pytest.mark.parametrize("fan_in, fan_out", FANS)
def test_lecun(fan_in, fan_out):
    normal = InitSpec("lecun", dist="normal").law(fan_in, fan_out)
    assert isinstance(normal, Normal)
    assert normal.sigma == pytest.approx(math.sqrt(1.0 / fan_in), rel=1e-14)
    uniform = InitSpec("lecun", dist="uniform").law(fan_in, fan_out)
    assert uniform.high == pytest.approx(math.sqrt(3.0 / fan_in), rel=1e-14)
    trunc = InitSpec("lecun", dist="truncated-normal").law(fan_in, fan_out)
    assert isinstance(trunc, TruncatedNormal)
    assert trunc.variance == pytest.approx(1.0 / fan_in, rel=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dist", DISTRIBUTIONS)
def test_variance_scaling_spec(mode, dist):
    spec = InitSpec("variance-scaling", dist=dist, mode=mode, scale=2.5)
    law = spec.law(300, 100)
    want = variance_scaling(2.5, mode, dist, 300, 100)
    assert type(law) is type(want)
    for name, value in want.to_dict().items():
        if name not in ("family", "text"):
            assert getattr(law, name) == pytest.approx(value, rel=1e-14, abs=1e-300)
    assert law.variance == pytest.approx(2.5 / n_of(mode, 300, 100), rel=1e-12)


def test_variance_scaling_spec_defaults():
    law = InitSpec("variance-scaling", dist="normal").law(300, 100)
    assert law.variance == pytest.approx(1 / 300, rel=1e-14)


# ---------------------------------------------------------------- InitSpec: explicit laws


def test_trunc_normal_law_parameters():
    spec = InitSpec("trunc-normal", mean=0.1, std=0.02, low=-2.0, high=2.0)
    law = spec.law(FAN_IN, FAN_OUT)
    assert law == TruncatedNormal(0.1, 0.02, -2.0, 2.0)
    # an explicit law does not depend on the fans
    assert spec.law(1, 1) == law
    assert not spec.uses_fans


def test_trunc_normal_asymmetric_bounds_are_absolute():
    law = InitSpec("trunc-normal", mean=0.0, std=1.0, low=-0.5, high=3.0).law(1, 1)
    assert isinstance(law, TruncatedNormal)
    assert (law.mu, law.sigma, law.low, law.high) == (0.0, 1.0, -0.5, 3.0)


def test_explicit_normal_and_uniform():
    assert InitSpec("normal", mean=0.5, std=0.02).law(3, 4) == Normal(0.5, 0.02)
    assert InitSpec("uniform", low=-0.1, high=0.3).law(3, 4) == Uniform(-0.1, 0.3)


def test_with_dist():
    spec = InitSpec("xavier", dist="normal")
    assert spec.with_dist("uniform") == InitSpec("xavier", dist="uniform")
    assert spec.dist == "normal"


@pytest.mark.parametrize(
    "spec",
    [
        InitSpec("xavier", dist="normal"),
        InitSpec("xavier", dist="uniform", gain=2.0),
        InitSpec("kaiming", dist="normal"),
        InitSpec("kaiming", dist="uniform", nonlinearity="relu", mode="fan_out"),
        InitSpec("lecun", dist="truncated-normal"),
        InitSpec("variance-scaling", dist="uniform", scale=2.0, mode="fan_avg"),
        InitSpec("trunc-normal", std=1.0, low=-2.0, high=2.0),
        InitSpec("normal", std=1.0),
        InitSpec("uniform", low=-1.0, high=1.0),
    ],
    ids=lambda s: s.scheme,
)
def test_describe_is_non_empty(spec):
    assert isinstance(spec.describe(), str) and spec.describe().strip()


# ---------------------------------------------------------------- InitSpec: invalid input


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"scheme": "glorot_normal", "dist": "normal"}, id="unknown-scheme"),
        pytest.param({"scheme": "", "dist": "normal"}, id="empty-scheme"),
        pytest.param({"scheme": "xavier", "dist": "gaussian"}, id="unknown-dist"),
        pytest.param({"scheme": "xavier"}, id="missing-dist"),
        pytest.param({"scheme": "kaiming", "dist": "normal", "mode": "fan_sum"}, id="unknown-mode"),
        pytest.param({"scheme": "kaiming", "dist": "normal", "nonlinearity": "gelu"}, id="unknown-nonlinearity"),
        pytest.param({"scheme": "xavier", "dist": "normal", "gain": 0.0}, id="gain-zero"),
        pytest.param({"scheme": "xavier", "dist": "normal", "gain": -1.0}, id="gain-negative"),
        pytest.param({"scheme": "xavier", "dist": "normal", "gain": math.nan}, id="gain-nan"),
        pytest.param({"scheme": "xavier", "dist": "normal", "gain": math.inf}, id="gain-inf"),
        pytest.param({"scheme": "variance-scaling", "dist": "normal", "scale": 0.0}, id="scale-zero"),
        pytest.param({"scheme": "variance-scaling", "dist": "normal", "scale": -2.0}, id="scale-negative"),
        pytest.param({"scheme": "normal", "std": -1.0}, id="normal-negative-std"),
        pytest.param({"scheme": "normal", "std": 0.0}, id="normal-zero-std"),
        pytest.param({"scheme": "normal"}, id="normal-missing-std"),
        pytest.param({"scheme": "normal", "std": 1.0, "mean": math.nan}, id="normal-nan-mean"),
        pytest.param({"scheme": "trunc-normal", "std": -1.0, "low": -2.0, "high": 2.0}, id="tn-negative-std"),
        pytest.param({"scheme": "trunc-normal", "low": -2.0, "high": 2.0}, id="tn-missing-std"),
        pytest.param({"scheme": "trunc-normal", "std": 1.0, "low": -2.0}, id="tn-missing-high"),
        pytest.param({"scheme": "trunc-normal", "std": 1.0, "low": 2.0, "high": 2.0}, id="tn-low-eq-high"),
        pytest.param({"scheme": "trunc-normal", "std": 1.0, "low": 2.0, "high": -2.0}, id="tn-low-gt-high"),
        pytest.param({"scheme": "trunc-normal", "std": 1.0, "low": -math.inf, "high": 2.0}, id="tn-inf-low"),
        pytest.param({"scheme": "uniform", "low": 1.0, "high": 1.0}, id="uniform-low-eq-high"),
        pytest.param({"scheme": "uniform", "low": 1.0, "high": -1.0}, id="uniform-low-gt-high"),
        pytest.param({"scheme": "uniform", "low": -1.0}, id="uniform-missing-high"),
        pytest.param({"scheme": "uniform", "high": 1.0}, id="uniform-missing-low"),
    ],
)
def test_invalid_spec_raises_input_error(kwargs):
    with pytest.raises(InputError):
        InitSpec(**kwargs)


@pytest.mark.parametrize(
    "low, high",
    [(50.0, 60.0), (-60.0, -50.0), (1e3, 1e4)],
    ids=["right-50-60", "left-60-50", "right-1e3-1e4"],
)
def test_trunc_normal_interval_without_mass_raises_input_error(low, high):
    """An interval where N(0, 1) has no representable mass is bad input, reported as such
    (InputError, exit code 2), not a ZeroDivisionError from inside the law."""
    with pytest.raises(InputError):
        InitSpec("trunc-normal", mean=0.0, std=1.0, low=low, high=high)


@pytest.mark.parametrize("low, high", [(3.0, 5.0), (30.0, 40.0), (-40.0, -30.0)])
def test_trunc_normal_far_but_nonempty_interval_is_accepted(low, high):
    from scipy import stats

    law = InitSpec("trunc-normal", mean=0.0, std=1.0, low=low, high=high).law(1, 1)
    ref = stats.truncnorm(low, high)
    assert law.mean == pytest.approx(float(ref.mean()), rel=1e-12)
    assert law.variance == pytest.approx(float(ref.var()), rel=1e-6)
