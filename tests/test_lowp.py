"""Low precision: exact bit-pattern counts, the rounded law, and the WARN rule."""

import math

import numpy as np
import pytest
import torch

from initcheck.laws import Normal, Uniform
from initcheck.lowp import RoundedLaw, pattern_values
from initcheck.reducers import PatternReducer

from helpers import check_rows, check_rows_lenient_and_strict, failed, sampler_plan


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_rounded_law_is_a_proper_discrete_law(dtype):
    law = Normal(0.0, 0.05)
    rounded = RoundedLaw(law, dtype)
    assert rounded.masses.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(rounded.masses >= 0)
    assert rounded.mean == pytest.approx(0.0, abs=1e-9)
    # rounding adds about ulp^2 / 12 of variance: tiny against sigma^2
    assert rounded.variance == pytest.approx(law.variance, rel=1e-4)


def test_pattern_values_cover_every_pattern():
    values = pattern_values("bfloat16")
    assert values.shape == (65536,) and values[0x3F80] == 1.0 and values[0xBF80] == -1.0


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_pattern_reducer_is_exact(dtype):
    x = torch.randn(1000, 100, generator=torch.Generator().manual_seed(0)).to(getattr(torch, dtype))
    reducer = PatternReducer(Normal(0.0, 1.0), dtype)
    reducer.fold(x)
    s = reducer.summary()
    exact = x.double().numpy().ravel()
    assert s.count == exact.size
    assert s.mean == pytest.approx(exact.mean(), rel=1e-12, abs=1e-15)
    assert s.variance == pytest.approx(exact.var(ddof=1), rel=1e-12)
    assert (s.minimum, s.maximum) == (exact.min(), exact.max())


# What PyTorch's CPU samplers do in 16 bits depends on the build: these tests pin
# torch 2.13.0 (the CPU build the Makefile installs).  torch 2.11.0+cu130 on an
# Intel Xeon draws float16/bfloat16 normal_ with a std 0.1%/0.5% low, which
# initcheck rightly fails (benchmarks/results/README.md).
pins_torch_213 = pytest.mark.skipif(
    not torch.__version__.startswith("2.13."), reason="pins torch 2.13's 16-bit CPU samplers"
)


def torch_sampler(function, dtype, **kwargs):
    def sample(rng, n):
        g = torch.Generator().manual_seed(int(rng.integers(2**62)))
        return function(torch.empty(n, dtype=getattr(torch, dtype)), generator=g, **kwargs)
    return sample


@pins_torch_213
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_correct_16_bit_normals_pass(dtype):
    law = Normal(0.0, 0.05)
    plans = [
        sampler_plan(law, torch_sampler(torch.nn.init.normal_, dtype, std=0.05), dtype=dtype, name="torch"),
        sampler_plan(law, lambda rng, n: rng.normal(0, 0.05, n), dtype="float32", name="float32"),
    ]
    # the numpy sampler's float32 draws become 16-bit only through the plan's dtype
    plans[1] = sampler_plan(law, lambda rng, n: rng.normal(0, 0.05, n).astype(np.float32), dtype=dtype, name="numpy")
    for row in check_rows(plans, samples=20_000_000):
        assert row.verdict == "PASS", (row.framework, row.reason)


@pins_torch_213
def test_torch_bfloat16_uniform_is_a_warning_not_a_failure():
    """PyTorch's bf16 uniform_(-1, 1) never returns +1 and puts that mass on -1."""
    law = Uniform(-1.0, 1.0)
    plan = sampler_plan(law, torch_sampler(torch.nn.init.uniform_, "bfloat16", a=-1.0, b=1.0), dtype="bfloat16")
    ((row,), (strict,)) = check_rows_lenient_and_strict([plan], samples=20_000_000)
    assert row.verdict == "WARN", row.reason
    assert "mass moved between the bound atoms" in row.reason and "-1 holds" in row.reason
    assert strict.verdict == "FAIL" and "--strict" in strict.reason


def test_a_sampler_stuck_at_a_bound_stays_a_failure():
    """Extra mass on a bound is not a move between the bound atoms."""
    law = Uniform(-1.0, 1.0)

    def stuck(rng, n):
        x = rng.uniform(-1.0, 1.0, n).astype(np.float32)
        x[rng.random(n) < 1e-3] = -1.0
        return x

    (row,) = check_rows([sampler_plan(law, stuck, dtype="bfloat16")], samples=10_000_000)
    assert row.verdict == "FAIL" and "spikes" in failed(row)


def test_zeroed_remainder_in_float16_fails():
    law = Normal(0.0, 0.05)

    def zeros(rng, n):
        x = rng.normal(0, 0.05, n)
        x[: n // 1000] = 0.0
        return x

    (row,) = check_rows([sampler_plan(law, zeros, dtype="float16")], samples=10_000_000)
    assert "spikes" in failed(row) and "atom at 0" in row.check("spikes").detail


def test_a_too_narrow_float16_law_is_a_density_excess_not_an_atom():
    """Half the std in float16: the fullest value only shares its neighbours' excess."""
    (row,) = check_rows([sampler_plan(Normal(0.0, 0.05), lambda rng, n: rng.normal(0, 0.025, n), dtype="float16")],
                        samples=2_000_000)
    assert "spikes" in failed(row) and "variance" in failed(row)
    assert row.check("spikes").detail.startswith("density ") and "atom at" not in row.check("spikes").detail


def cuda_like_bfloat16_uniform(bound, swap_top=True):
    """PyTorch's CUDA uniform_ for bfloat16, on the CPU: the bounds are cast to
    bfloat16 first, the value from + u (to - from) is rounded to bfloat16, and a
    value equal to ``to`` is replaced by ``from`` (swap_top)."""
    low, high = (torch.tensor(b, dtype=torch.bfloat16).float() for b in (-bound, bound))

    def sample(rng, n):
        u = torch.from_numpy(rng.random(n, dtype=np.float32))
        x = (low + u * (high - low)).to(torch.bfloat16)
        if swap_top:
            x[x == high.to(torch.bfloat16)] = low.to(torch.bfloat16)
        return x

    return sample


@pytest.mark.parametrize("swap_top", [True, False])
def test_bounds_rounded_to_bfloat16_are_a_warning(swap_top):
    bound = math.sqrt(6.0 / 784)  # kaiming_uniform_ of a 784-input layer: 0.08748, not a bfloat16 value
    plan = sampler_plan(Uniform(-bound, bound), cuda_like_bfloat16_uniform(bound, swap_top), dtype="bfloat16")
    ((row,), (strict,)) = check_rows_lenient_and_strict([plan], samples=50_000_000)
    assert row.verdict == "WARN", row.reason
    assert "rounds the bounds to bfloat16" in row.reason
    assert ("mass moved between the bound atoms" in row.reason) == swap_top
    assert strict.verdict == "FAIL"


def test_a_bfloat16_uniform_with_the_wrong_scale_stays_a_failure():
    bound = math.sqrt(6.0 / 784)
    plan = sampler_plan(Uniform(-bound, bound), cuda_like_bfloat16_uniform(0.99 * bound), dtype="bfloat16")
    (row,) = check_rows([plan], samples=50_000_000)
    assert row.verdict == "FAIL" and "variance" in failed(row), row.reason


def computed_in_bfloat16(sigma, truncate_at=None):
    """A sampler that works in bfloat16, as Keras' TensorFlow backend does:
    a standard (optionally truncated) normal draw rounded to bfloat16, times
    sigma rounded to bfloat16; torch rounds the exact product once more."""
    scale = torch.tensor(sigma, dtype=torch.bfloat16)

    def sample(rng, n):
        z = rng.standard_normal(n)
        if truncate_at is not None:
            while (outside := np.abs(z) > truncate_at).any():
                z[outside] = rng.standard_normal(int(outside.sum()))
        return torch.from_numpy(z).to(torch.bfloat16) * scale

    return sample


@pytest.mark.parametrize("truncated", [False, True])
def test_a_sampler_computing_in_bfloat16_is_a_warning(truncated):
    from initcheck.laws import TruncatedNormal

    sigma = 0.0498540  # glorot_normal's for 784 -> 256; bfloat16 holds 0.0498047
    law = TruncatedNormal(0.0, sigma, -2 * sigma, 2 * sigma) if truncated else Normal(0.0, sigma)
    plan = sampler_plan(law, computed_in_bfloat16(sigma, 2.0 if truncated else None), dtype="bfloat16")
    ((row,), (strict,)) = check_rows_lenient_and_strict([plan], samples=20_000_000)
    assert row.verdict == "WARN", row.reason
    assert "computes in bfloat16" in row.reason and "0.0498047" in row.reason
    assert strict.verdict == "FAIL"


def test_computing_in_bfloat16_does_not_excuse_a_wrong_std():
    sigma = 0.0498540
    plan = sampler_plan(Normal(0.0, sigma), computed_in_bfloat16(1.01 * sigma), dtype="bfloat16")
    (row,) = check_rows([plan], samples=20_000_000)
    assert row.verdict == "FAIL" and "variance" in failed(row), row.reason


def test_the_bfloat16_scaling_law_keeps_its_mass_and_rounds_sigma():
    from initcheck.lowp import ScaledIn16Bits

    law = ScaledIn16Bits(Normal(0.0, 0.049854), "bfloat16")
    assert law.sigma == 0.0498046875
    assert law.masses.sum() == pytest.approx(1.0, abs=1e-12)
    assert law.std == pytest.approx(0.0498046875, rel=2e-3)
