"""Each check on synthetic samples with a known answer.

Correct samplers must pass; planted deviations must fail, each for its own
reason.  Seeds are fixed, and every planted effect is many times the smallest
one the check detects at this N, so the outcomes are deterministic and far from
the decision boundary.
"""

import math

import numpy as np
import pytest
from scipy import stats

from initcheck.checks import CheckResult, ks_critical
from initcheck.policy import apply_holm
from initcheck.laws import TRUNCATION_CORRECTION, Normal, TruncatedNormal, Uniform

from helpers import check_rows, failed, sampler_plan

STD = 0.05
NORMAL = Normal(0.0, STD)
UNIFORM = Uniform(-math.sqrt(3) * STD, math.sqrt(3) * STD)


def normal(mu=0.0, sigma=STD):
    return lambda rng, n: rng.normal(mu, sigma, n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "law, sample",
    [
        (NORMAL, normal()),
        (UNIFORM, lambda rng, n: rng.uniform(UNIFORM.low, UNIFORM.high, n)),
        (TruncatedNormal(0.0, 1.0, -2.0, 2.0), lambda rng, n: TruncatedNormal(0.0, 1.0, -2.0, 2.0).sample(rng, n)),
        (Normal(3.0, 0.5), normal(3.0, 0.5)),
    ],
    ids=["normal", "uniform", "truncated", "shifted-normal"],
)
def test_correct_samplers_pass(law, sample, dtype):
    (row,) = check_rows([sampler_plan(law, sample, dtype=dtype)])
    assert row.verdict == "PASS", row.reason
    assert {c.name for c in row.checks} >= {"finite", "mean", "variance", "ks"}


def test_variance_off_by_one_percent_fails():
    (row,) = check_rows([sampler_plan(NORMAL, normal(sigma=STD * 1.01))], samples=2_000_000)
    assert row.verdict == "FAIL"
    assert "variance" in failed(row)
    assert "std 1" in row.check("variance").detail and "above" in row.check("variance").detail


def test_shifted_mean_fails():
    (row,) = check_rows([sampler_plan(NORMAL, normal(mu=0.01 * STD))], samples=4_000_000)
    assert failed(row) >= {"mean"}
    assert "variance" not in failed(row)


def test_values_outside_the_support_fail():
    wide = lambda rng, n: rng.uniform(UNIFORM.low * 1.001, UNIFORM.high * 1.001, n)
    (row,) = check_rows([sampler_plan(UNIFORM, wide)])
    assert "support" in failed(row)
    assert "above the upper bound" in row.check("support").detail


def test_one_ulp_beyond_a_bound_is_tolerated():
    high = np.float32(UNIFORM.high)
    def sample(rng, n):
        x = rng.uniform(UNIFORM.low, UNIFORM.high, n).astype(np.float32)
        x[0] = np.nextafter(high, np.float32(1))  # float32 rounding of the bound, one ulp up
        return x
    (row,) = check_rows([sampler_plan(UNIFORM, sample)])
    assert row.check("support").passed


def test_uniform_where_normal_expected_fails_on_ks_only():
    (row,) = check_rows([sampler_plan(NORMAL, lambda rng, n: rng.uniform(UNIFORM.low, UNIFORM.high, n))])
    assert "ks" in failed(row)
    assert "mean" not in failed(row) and "variance" not in failed(row)


def test_uncorrected_truncation_fails():
    """Keras' old bug: a normal cut at 2 sigma without the 0.8796 correction."""
    law = TruncatedNormal(0.0, STD / TRUNCATION_CORRECTION, -2 * STD / TRUNCATION_CORRECTION, 2 * STD / TRUNCATION_CORRECTION)
    buggy = TruncatedNormal(0.0, STD, -2 * STD, 2 * STD)
    (row,) = check_rows([sampler_plan(law, buggy.sample)])
    assert "variance" in failed(row) and "below" in row.check("variance").detail


def test_nan_and_inf_fail_finite_without_crashing():
    def sample(rng, n):
        x = rng.normal(0, STD, n)
        x[3] = np.nan
        x[5] = np.inf
        return x
    (row,) = check_rows([sampler_plan(NORMAL, sample)], samples=1_000_000)
    assert row.verdict == "FAIL"
    assert "finite" in failed(row)
    assert row.summary.nan == 1 and row.summary.posinf == 1
    assert "1 NaN and 1 +Inf" in row.check("finite").detail
    # the finite values are still checked and still fine
    assert row.check("variance").passed and row.check("ks").passed


def test_all_nan_is_a_failed_row():
    (row,) = check_rows([sampler_plan(NORMAL, lambda rng, n: np.full(n, np.nan))], samples=10_000)
    assert row.verdict == "FAIL" and "finite" in failed(row)


def test_rows_are_deterministic_and_independent_of_other_rows():
    plan = lambda: sampler_plan(NORMAL, normal(), name="a")
    (alone,) = check_rows([plan()], samples=100_000)
    _, together = check_rows([sampler_plan(NORMAL, normal(), name="b"), plan()], samples=100_000)
    assert alone.summary.sums.tolist() == together.summary.sums.tolist()
    (other_seed,) = check_rows([plan()], samples=100_000, seed=1)
    assert other_seed.summary.sums.tolist() != alone.summary.sums.tolist()


def test_power_statements_shrink_with_n():
    (small,) = check_rows([sampler_plan(NORMAL, normal(), shape=(100, 100))], samples=100_000)
    (large,) = check_rows([sampler_plan(NORMAL, normal(), shape=(100, 100))], samples=1_000_000)
    for name in ("mean", "variance", "ks", "spikes", "independence"):
        assert large.check(name).power < small.check(name).power
    # the mean detects shifts of (z_{alpha/2m} + z_{0.999}) / sqrt(N) sigmas, m statistical checks
    m = sum(c.statistical for c in large.checks)
    expected = (stats.norm.isf(1e-6 / m / 2) + stats.norm.isf(0.001)) / math.sqrt(large.summary.count)
    assert large.check("mean").power == pytest.approx(expected, rel=1e-9)


def test_ks_critical_value_is_dkw():
    assert ks_critical(0.05, 10_000) == pytest.approx(math.sqrt(math.log(40) / 20_000))


def test_holm_step_down():
    checks = [CheckResult(str(i), 0.0, "", pvalue=p) for i, p in enumerate([0.001, 0.03, 0.013, 0.9])]
    checks = apply_holm(checks, alpha=0.05)
    # sorted p: 0.001 <= 0.05/4, 0.013 <= 0.05/3, 0.03 > 0.05/2: stop there
    assert [c.passed for c in checks] == [False, True, False, True]
    assert checks[0].level == pytest.approx(0.0125)
    assert checks[2].level == pytest.approx(0.05 / 3)


def test_a_zeroed_remainder_is_a_spike():
    """0.1% of the tensor left at zero: moments barely move, the spike check fails."""
    def sample(rng, n):
        x = rng.normal(0, STD, n)
        x[: n // 1000] = 0.0
        return x
    (row,) = check_rows([sampler_plan(NORMAL, sample)], samples=2_000_000)
    assert "spikes" in failed(row)
    assert "variance" not in failed(row) and "mean" not in failed(row)
    assert "spike in [0, " in row.check("spikes").detail and "0.00102 of the values" in row.check("spikes").detail


def test_values_stuck_at_a_bound_are_a_spike():
    """A uniform sampler that returns its upper bound 0.05% of the time."""
    high = np.float32(UNIFORM.high)
    def sample(rng, n):
        x = rng.uniform(UNIFORM.low, UNIFORM.high, n).astype(np.float32)
        x[rng.random(n) < 5e-4] = high
        return x
    (row,) = check_rows([sampler_plan(UNIFORM, sample)], samples=2_000_000)
    assert row.check("support").passed  # the bound itself is allowed
    assert "spikes" in failed(row) and f"{UNIFORM.high:.6g})" in row.check("spikes").detail


def test_a_law_of_the_wrong_scale_is_a_density_excess_not_a_spike():
    """Half the std: every cell near the centre holds about twice its law mass.
    The spike check fails (the cells are not the law's), but names no atom."""
    (row,) = check_rows([sampler_plan(NORMAL, normal(sigma=STD / 2))], samples=2_000_000)
    assert "spikes" in failed(row) and "variance" in failed(row)
    detail = row.check("spikes").detail
    assert detail.startswith("density ") and "around it: no atom" in detail and "spike" not in detail


def test_values_past_the_support_are_a_tail_not_a_spike():
    """A uniform drawn on [0, 2 high): half the values lie above the law's bound."""
    (row,) = check_rows([sampler_plan(UNIFORM, lambda rng, n: rng.uniform(0, 2 * UNIFORM.high, n))],
                        samples=1_000_000)
    assert "support" in failed(row) and "spikes" in failed(row)
    assert row.check("spikes").detail.startswith(f"tail at or above {UNIFORM.high:.4g}: 0.5")


def test_an_atom_inside_a_density_excess_is_still_a_spike():
    """The same too-narrow law with 0.1% of the values set to 0.01: that cell
    stands out from its neighbours."""
    def sample(rng, n):
        x = rng.normal(0, STD / 2, n)
        x[: n // 1000] = 0.01
        return x
    (row,) = check_rows([sampler_plan(NORMAL, sample)], samples=2_000_000)
    assert row.check("spikes").detail.startswith("spike in [0.00")


def test_identical_rows_fail_independence():
    def sample(rng, n):
        row = rng.normal(0, STD, 1000)
        return np.tile(row, n // 1000)
    (row,) = check_rows([sampler_plan(NORMAL, sample)], samples=2_000_000)
    assert "independence" in failed(row)
    assert "neighbouring rows correlate" in row.check("independence").detail


def test_an_ignored_seed_fails_independence():
    fixed = np.random.default_rng(123).normal(0, STD, 1_000_000)
    (row,) = check_rows([sampler_plan(NORMAL, lambda rng, n: fixed)], samples=3_000_000)
    assert "independence" in failed(row)
    assert "consecutive draws correlate" in row.check("independence").detail


def test_binomial_tail_bound_is_conservative():
    from scipy import stats as scipy_stats

    from initcheck.checks import binomial_upper_tail_bound

    n, p = 100_000, 1e-3
    for count in (100, 120, 150, 200, 400):
        exact = scipy_stats.binom.sf(count - 1, n, p)
        assert binomial_upper_tail_bound(count, n, p) >= exact
    assert binomial_upper_tail_bound(5, n, 0.0) == 0.0
    assert binomial_upper_tail_bound(50, n, p) == 1.0


def test_ctrl_c_checks_what_was_sampled_and_skips_the_rest():
    from initcheck.runner import Row, run

    calls = {"n": 0}

    def sample(rng, n):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return rng.normal(0, STD, n)

    plans = [sampler_plan(NORMAL, sample, shape=(100, 100), name="first"), sampler_plan(NORMAL, normal(), name="second")]
    outcome = run([Row("t", "l", p) for p in plans], 1_000_000, 0, 1e-6, show_progress=False)
    first, second = outcome.results
    assert outcome.interrupted
    assert first.partial and first.summary.count == 3 * 10_000 and first.verdict == "PASS"
    assert first.reason.startswith("partial (interrupted)")
    assert second.verdict == "SKIP" and second.reason == "not run: interrupted"


def test_a_spike_names_a_cell_whose_ends_differ_in_print():
    from initcheck.checks import _interval

    assert _interval(0.0005646, 0.0005654) == "in [0.0005646, 0.0005654)"
    assert _interval(1.00000001, 1.00000002) == "in [1.00000001, 1.00000002)"
    assert _interval(0.25, 0.25) == "at 0.25"
