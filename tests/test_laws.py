"""The closed-form laws against scipy.stats, the independent reference.

Every quantity the checks rely on (cdf, mean, variance, fourth central moment,
support, histogram grid) is compared with scipy's ``norm``, ``uniform`` and
``truncnorm``.  Sampling tests use fixed seeds and tolerances of 6 standard
errors, so they are deterministic and far from the decision boundary.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from initcheck.laws import TRUNCATION_CORRECTION, Law, Normal, TruncatedNormal, Uniform

MU = 0.5
SIGMA = 2.0


def tn(a: float, b: float, mu: float = MU, sigma: float = SIGMA) -> TruncatedNormal:
    """N(mu, sigma) truncated to [mu + a sigma, mu + b sigma] (bounds given in sigmas)."""
    return TruncatedNormal(mu, sigma, mu + a * sigma, mu + b * sigma)


# (id, law, scipy frozen reference)
CASES = [
    ("normal-std", Normal(0.0, 1.0), stats.norm(0.0, 1.0)),
    ("normal", Normal(MU, SIGMA), stats.norm(MU, SIGMA)),
    ("normal-small", Normal(-0.003, 0.0125), stats.norm(-0.003, 0.0125)),
    ("uniform-sym", Uniform(-0.25, 0.25), stats.uniform(-0.25, 0.5)),
    ("uniform-asym", Uniform(-1.0, 3.0), stats.uniform(-1.0, 4.0)),
    ("tn-sym-2", tn(-2, 2), stats.truncnorm(-2, 2, loc=MU, scale=SIGMA)),
    ("tn-sym-keras", tn(-2, 2, 0.0, 0.05 / TRUNCATION_CORRECTION),
     stats.truncnorm(-2, 2, loc=0.0, scale=0.05 / TRUNCATION_CORRECTION)),
    ("tn-asym", tn(-3, 1), stats.truncnorm(-3, 1, loc=MU, scale=SIGMA)),
    ("tn-narrow", tn(-0.5, 0.7), stats.truncnorm(-0.5, 0.7, loc=MU, scale=SIGMA)),
    ("tn-far-tail", tn(3, 5), stats.truncnorm(3, 5, loc=MU, scale=SIGMA)),
    ("tn-far-left-tail", tn(-5, -3), stats.truncnorm(-5, -3, loc=MU, scale=SIGMA)),
    ("tn-one-sided", tn(-1, 10), stats.truncnorm(-1, 10, loc=MU, scale=SIGMA)),
    ("tn-one-sided-left", tn(-10, 1), stats.truncnorm(-10, 1, loc=MU, scale=SIGMA)),
    ("tn-far-tail-wide", tn(3, 12), stats.truncnorm(3, 12, loc=MU, scale=SIGMA)),
]
IDS = [c[0] for c in CASES]
LAW_AND_REF = [pytest.param(law, ref, id=name) for name, law, ref in CASES]


def ref_support(ref) -> tuple[float, float]:
    return tuple(float(v) for v in ref.support())


def ref_fourth_moment(ref) -> float:
    var, kurt = (float(v) for v in ref.stats(moments="vk"))
    return (kurt + 3.0) * var * var


def probe_points(law: Law, ref) -> np.ndarray:
    """Points in, at the edges of and outside the support, plus far away."""
    lo, hi = ref_support(ref)
    mean, std = float(ref.mean()), float(ref.std())
    pts = [mean + k * std for k in np.linspace(-12.0, 12.0, 97)]
    for edge in (lo, hi):
        if math.isfinite(edge):
            width = abs(edge) * 1e-9 + std * 1e-6
            pts += [edge, edge - width, edge + width, edge - 10 * std, edge + 10 * std]
    if math.isfinite(lo) and math.isfinite(hi):
        pts += list(np.linspace(lo, hi, 101))
    pts += [-1e6, 1e6, -1e300, 1e300]
    return np.array(sorted(pts), dtype=np.float64)


# ---------------------------------------------------------------- cdf


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_cdf_matches_scipy(law, ref):
    x = probe_points(law, ref)
    got = np.asarray(law.cdf(x), dtype=np.float64)
    want = ref.cdf(x)
    assert got.shape == x.shape
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_cdf_lower_tail_relative_accuracy(law, ref):
    """Where the cdf is small but not negligible it agrees to many digits relatively."""
    x = probe_points(law, ref)
    want = ref.cdf(x)
    keep = (want > 1e-250) & (want < 0.5)
    got = np.asarray(law.cdf(x[keep]), dtype=np.float64)
    np.testing.assert_allclose(got, want[keep], rtol=1e-8)


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_cdf_is_monotone_and_in_unit_interval(law, ref):
    x = np.linspace(float(ref.mean()) - 20 * float(ref.std()), float(ref.mean()) + 20 * float(ref.std()), 2001)
    u = np.asarray(law.cdf(x))
    assert np.all(u >= 0.0) and np.all(u <= 1.0)
    assert np.all(np.diff(u) >= 0.0)


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_cdf_outside_support(law, ref):
    lo, hi = law.support
    assert float(law.cdf(-math.inf)) == 0.0
    assert float(law.cdf(math.inf)) == 1.0
    if math.isfinite(lo):
        below = np.array([lo - 1.0, lo - 1e6, lo - abs(lo) * 1e-6 - 1e-12])
        np.testing.assert_array_equal(law.cdf(below), 0.0)
        assert float(law.cdf(lo)) == pytest.approx(0.0, abs=1e-15)
    if math.isfinite(hi):
        above = np.array([hi + 1.0, hi + 1e6, hi + abs(hi) * 1e-6 + 1e-12])
        np.testing.assert_array_equal(law.cdf(above), 1.0)
        assert float(law.cdf(hi)) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_cdf_accepts_scalars_lists_and_arrays(law, ref):
    m = float(ref.median())
    scalar = law.cdf(m)
    assert np.ndim(scalar) == 0
    assert float(scalar) == pytest.approx(0.5, abs=1e-12)
    assert np.asarray(law.cdf([m, m])).shape == (2,)
    assert np.asarray(law.cdf(np.full((3, 4), m))).shape == (3, 4)
    assert np.asarray(law.cdf(np.full((3, 4), m, dtype=np.float32))).shape == (3, 4)


# ---------------------------------------------------------------- moments


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_mean_matches_scipy(law, ref):
    assert law.mean == pytest.approx(float(ref.mean()), rel=1e-10, abs=1e-13 * float(ref.std()))


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_variance_and_std_match_scipy(law, ref):
    assert law.variance == pytest.approx(float(ref.var()), rel=1e-9)
    assert law.std == pytest.approx(float(ref.std()), rel=1e-9)


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_fourth_central_moment_matches_scipy(law, ref):
    assert law.fourth_moment == pytest.approx(ref_fourth_moment(ref), rel=1e-8)


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_fourth_central_moment_by_quadrature(law, ref):
    """A second, independent reference: integrate (x - mean)^4 against scipy's pdf."""
    from scipy import integrate

    mean = float(ref.mean())
    lo, hi = ref_support(ref)
    std = float(ref.std())
    lo, hi = max(lo, mean - 40 * std), min(hi, mean + 40 * std)
    value, _ = integrate.quad(lambda x: (x - mean) ** 4 * ref.pdf(x), lo, hi, epsabs=0, epsrel=1e-12, limit=200)
    assert law.fourth_moment == pytest.approx(value, rel=1e-8)


def test_normal_closed_forms():
    law = Normal(1.5, 0.3)
    assert law.mean == 1.5
    assert law.variance == pytest.approx(0.09, rel=1e-15)
    assert law.std == pytest.approx(0.3, rel=1e-15)
    assert law.fourth_moment == pytest.approx(3 * 0.3**4, rel=1e-15)


def test_uniform_closed_forms():
    law = Uniform(-1.0, 3.0)
    assert law.mean == 1.0
    assert law.variance == pytest.approx(16 / 12, rel=1e-15)
    assert law.fourth_moment == pytest.approx(4.0**4 / 80, rel=1e-15)


def test_truncated_normal_without_effective_truncation_is_the_normal():
    law = TruncatedNormal(0.2, 0.5, 0.2 - 40 * 0.5, 0.2 + 40 * 0.5)
    assert law.mean == pytest.approx(0.2, abs=1e-15)
    assert law.variance == pytest.approx(0.25, rel=1e-13)
    assert law.fourth_moment == pytest.approx(3 * 0.5**4, rel=1e-13)


def test_truncated_normal_with_infinite_bounds_is_the_normal():
    law = TruncatedNormal(0.2, 0.5, -math.inf, math.inf)
    assert law.mean == pytest.approx(0.2, abs=1e-15)
    assert law.variance == pytest.approx(0.25, rel=1e-13)
    assert law.fourth_moment == pytest.approx(3 * 0.5**4, rel=1e-13)
    np.testing.assert_allclose(law.cdf([-1.0, 0.2, 0.9]), stats.norm(0.2, 0.5).cdf([-1.0, 0.2, 0.9]), rtol=1e-13)


def test_symmetric_truncated_normal_has_the_location_as_mean():
    law = tn(-2, 2)
    assert law.mean == pytest.approx(MU, abs=1e-14)


# ---------------------------------------------------------------- support and grid


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_support_matches_scipy(law, ref):
    lo, hi = law.support
    want_lo, want_hi = ref_support(ref)
    assert lo == pytest.approx(want_lo, rel=1e-14, abs=1e-14)
    assert hi == pytest.approx(want_hi, rel=1e-14, abs=1e-14)
    assert law.bounded == (math.isfinite(want_lo) and math.isfinite(want_hi))


def test_support_values():
    assert Normal(0.0, 1.0).support == (-math.inf, math.inf)
    assert not Normal(0.0, 1.0).bounded
    assert Uniform(-0.5, 2.0).support == (-0.5, 2.0)
    assert Uniform(-0.5, 2.0).bounded
    assert TruncatedNormal(0.0, 1.0, -0.7, 1.9).support == (-0.7, 1.9)
    assert TruncatedNormal(0.0, 1.0, -0.7, 1.9).bounded


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_grid_is_finite_and_inside_support(law, ref):
    lo, hi = law.grid()
    assert math.isfinite(lo) and math.isfinite(hi)
    assert lo < hi
    s_lo, s_hi = law.support
    assert s_lo <= lo and hi <= s_hi
    assert lo <= law.mean <= hi


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_grid_holds_essentially_all_mass(law, ref):
    lo, hi = law.grid()
    # the reference's tails, computed without cancellation
    assert float(ref.cdf(lo)) < 1e-14, "mass below the grid (scipy)"
    assert float(ref.sf(hi)) < 1e-14, "mass above the grid (scipy)"
    # and the law's own cdf agrees
    assert float(law.cdf(lo)) < 1e-14, "mass below the grid (law.cdf)"
    assert 1.0 - float(law.cdf(hi)) < 1e-14, "mass above the grid (law.cdf)"


@pytest.mark.parametrize("law", [Uniform(-0.3, 0.7), tn(-2, 2), tn(3, 5), tn(-0.5, 0.7)], ids=str)
def test_grid_of_a_short_bounded_law_is_its_support(law):
    assert law.grid() == law.support


def test_grid_of_a_normal_is_eight_sigma():
    lo, hi = Normal(0.5, 2.0).grid()
    assert lo == pytest.approx(0.5 - 16.0, rel=1e-15)
    assert hi == pytest.approx(0.5 + 16.0, rel=1e-15)


# ---------------------------------------------------------------- the truncation correction


def test_truncation_correction_is_the_std_of_the_standard_normal_truncated_at_two():
    assert TRUNCATION_CORRECTION == pytest.approx(float(stats.truncnorm(-2, 2).std()), rel=0, abs=1e-15)


def test_truncation_correction_closed_form():
    phi2 = math.exp(-2.0) / math.sqrt(2 * math.pi)
    mass = float(stats.norm.cdf(2.0) - stats.norm.cdf(-2.0))
    assert TRUNCATION_CORRECTION == pytest.approx(math.sqrt(1 - 4 * phi2 / mass), rel=0, abs=1e-15)


def test_truncation_correction_restores_the_variance():
    std = 0.0375
    sigma = std / TRUNCATION_CORRECTION
    law = TruncatedNormal(0.0, sigma, -2 * sigma, 2 * sigma)
    assert law.std == pytest.approx(std, rel=1e-13)


# ---------------------------------------------------------------- sampling


SAMPLE_N = 100_000


@pytest.mark.parametrize("seed", [0, 12345])
@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_sample_has_the_law_mean_and_variance(law, ref, seed):
    x = law.sample(np.random.default_rng(seed), SAMPLE_N)
    assert isinstance(x, np.ndarray)
    assert x.shape == (SAMPLE_N,)
    assert x.dtype == np.float64
    assert np.all(np.isfinite(x))
    lo, hi = law.support
    assert np.all(x >= lo) and np.all(x <= hi)

    n = x.size
    mean_se = math.sqrt(law.variance / n)
    assert abs(x.mean() - law.mean) < 6 * mean_se
    var_se = math.sqrt((law.fourth_moment - law.variance**2) / n)
    assert abs(x.var(ddof=1) - law.variance) < 6 * var_se


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_sample_is_reproducible_with_a_seed(law, ref):
    a = law.sample(np.random.default_rng(7), 1000)
    b = law.sample(np.random.default_rng(7), 1000)
    c = law.sample(np.random.default_rng(8), 1000)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_sample_follows_the_cdf(law, ref):
    """The probability-integral transform of a sample is uniform (KS at a tiny alpha)."""
    x = law.sample(np.random.default_rng(2024), 50_000)
    u = np.sort(np.asarray(law.cdf(x)))
    n = u.size
    d = max(np.max(np.arange(1, n + 1) / n - u), np.max(u - np.arange(n) / n))
    # DKW bound at alpha = 1e-9
    assert d < math.sqrt(math.log(2 / 1e-9) / (2 * n))


# ---------------------------------------------------------------- printing, equality, hashing


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_describe_is_a_non_empty_string(law, ref):
    text = law.describe()
    assert isinstance(text, str)
    assert text.strip()


@pytest.mark.parametrize("law, ref", LAW_AND_REF)
def test_to_dict(law, ref):
    d = law.to_dict()
    assert d["family"] == law.family
    assert d["text"] == law.describe()
    params = {k: v for k, v in d.items() if k not in ("family", "text")}
    assert type(law)(**params) == law


def test_describe_mentions_the_parameters():
    assert "0.05" in Normal(0.0, 0.05).describe()
    assert "0.25" in Uniform(-0.25, 0.25).describe()
    assert "2" in tn(-2, 2).describe()
    assert {Normal.family, Uniform.family, TruncatedNormal.family} == {"normal", "uniform", "truncated_normal"}


@pytest.mark.parametrize(
    "make",
    [
        lambda: Normal(0.0, 0.05),
        lambda: Uniform(-0.25, 0.25),
        lambda: TruncatedNormal(0.0, 1.0, -2.0, 2.0),
        lambda: TruncatedNormal(0.5, 2.0, -1.5, 20.5),
    ],
)
def test_equal_parameters_give_equal_hashable_laws(make):
    a, b = make(), make()
    assert a is not b
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert {a: 1}[b] == 1


def test_different_parameters_or_families_give_different_laws():
    assert Normal(0.0, 1.0) != Normal(0.0, 2.0)
    assert Normal(0.0, 1.0) != Normal(0.1, 1.0)
    assert Uniform(-1.0, 1.0) != Uniform(-1.0, 2.0)
    assert TruncatedNormal(0.0, 1.0, -2.0, 2.0) != TruncatedNormal(0.0, 1.0, -2.0, 3.0)
    assert TruncatedNormal(0.0, 1.0, -2.0, 2.0) != Normal(0.0, 1.0)
    assert len({Normal(0.0, 1.0), Normal(0.0, 2.0), Uniform(-1.0, 1.0)}) == 3


def test_laws_are_frozen():
    import dataclasses

    law = Normal(0.0, 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        law.sigma = 2.0  # type: ignore[misc]
