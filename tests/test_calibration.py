"""Calibration: how often a correct sampler fails (alpha), and what the checks catch.

False failures: many independent single-row commands on exact samplers, at a
large alpha so failures are frequent enough to count; the observed count must
be consistent with a rate of at most alpha (a binomial bound, not an eyeball),
and the bound must be tight enough to catch a rate of 2 alpha (its power is
itself a test, below, with no sampling).  Holm keeps each command's
family-wise rate at or below alpha, and the KS (DKW) and spike (Chernoff)
p-values are conservative, so the rate is usually a little below.

Power: the deviations the design promises to catch at the default N = 10^7
fail, each for its own reason.  Everything is seeded, hence deterministic.
"""

import math

import numpy as np
import pytest
from scipy import stats

from initcheck.laws import Normal, TruncatedNormal, Uniform

from helpers import check_rows, failed, sampler_plan

ALPHA = 0.05

LAWS = {
    "normal": Normal(0.0, 0.05),
    "uniform": Uniform(-0.1, 0.1),
    "truncated": TruncatedNormal(0.0, 0.05, -0.1, 0.1),
}
DTYPES = ("float32", "float64", "bfloat16")
CASES = [(name, dtype) for name in LAWS for dtype in DTYPES]

#: Single-row commands per (law, dtype) case, and in all (pooled).  A row
#: costs tens of ms whatever its size (fixed work per row: the law's CDF on the
#: 2^16-cell histogram grid, the annotations), so fewer values per row save
#: little; 1080 rows took ~25 s alone (~36 s beside another pytest worker)
#: when written.  Power 0.99 at 2 alpha for each case alone would need ~900
#: rows per case, 8100 in all: hence one pooled count, and a per-case guard.
RUNS_PER_CASE = 120
RUNS = RUNS_PER_CASE * len(CASES)

#: Tail probabilities at rate alpha of the pooled count and of each case's
#: count: a correct pipeline fails the test with probability at most
#: POOLED_TAIL + len(CASES) * CASE_TAIL < 1e-4 (union bound).
POOLED_TAIL = 5e-5
CASE_TAIL = 5e-6


def binomial_limit(runs: int, rate: float, tail: float) -> int:
    """The smallest count c with P(Binomial(runs, rate) >= c) <= tail."""
    return int(stats.binom.isf(tail, runs, rate)) + 1


#: 85 of 1080 (7.9%): P(Binomial(1080, alpha) >= 85) = 3.6e-5, and
#: P(Binomial(1080, 2 alpha) >= 85) = 0.9929: a pipeline whose every case fails
#: at rate 2 alpha fails this test with probability >= 0.99.
POOLED_LIMIT = binomial_limit(RUNS, ALPHA, POOLED_TAIL)
#: 20 of 120 (16.7%): P(Binomial(120, alpha) >= 20) = 2.2e-6.  The weaker
#: per-case guard, for one case miscalibrated alone: it fails with probability
#: 0.016 at 2 alpha, 0.34 at 3 alpha, 0.85 at 4 alpha, 0.989 at 5 alpha.
CASE_LIMIT = binomial_limit(RUNS_PER_CASE, ALPHA, CASE_TAIL)


def failure_probability(rate: float) -> float:
    """A bound on P(the test fails) when every row fails independently at
    ``rate`` (at most: a union bound over the pooled and per-case limits)."""
    pooled = stats.binom.sf(POOLED_LIMIT - 1, RUNS, rate)
    per_case = stats.binom.sf(CASE_LIMIT - 1, RUNS_PER_CASE, rate)
    return min(1.0, pooled + len(CASES) * per_case)


def test_false_failure_bound_is_safe_at_alpha_and_catches_twice_alpha():
    """The (runs, limits) of the next test, from the binomial law alone: a
    correct pipeline (row failure rate <= alpha) fails it with probability
    < 1e-4 (5.6e-5 at alpha), one whose rows fail at 2 alpha with probability
    >= 0.99 (0.9929: the pooled count alone)."""
    assert (RUNS, POOLED_LIMIT, RUNS_PER_CASE, CASE_LIMIT) == (1080, 85, 120, 20)
    # each limit is the smallest within its tail
    assert stats.binom.sf(POOLED_LIMIT - 1, RUNS, ALPHA) <= POOLED_TAIL < stats.binom.sf(POOLED_LIMIT - 2, RUNS, ALPHA)
    assert stats.binom.sf(CASE_LIMIT - 1, RUNS_PER_CASE, ALPHA) <= CASE_TAIL
    assert CASE_TAIL < stats.binom.sf(CASE_LIMIT - 2, RUNS_PER_CASE, ALPHA)
    # the tails only shrink as the rate falls: alpha is the worst correct case
    for rate in (0.0, 0.01, 0.03, 0.045, ALPHA):
        assert failure_probability(rate) < 1e-4
    assert failure_probability(ALPHA) == pytest.approx(5.6e-5, rel=0.02)
    power = stats.binom.sf(POOLED_LIMIT - 1, RUNS, 2 * ALPHA)
    assert power >= 0.99 and power == pytest.approx(0.9929, abs=5e-5)
    assert stats.binom.sf(CASE_LIMIT - 1, RUNS_PER_CASE, 4 * ALPHA) == pytest.approx(0.85, abs=0.005)


@pytest.mark.calibration  # 600 seeded rows: about 20 s
def test_false_failure_rate_is_at_most_alpha():
    """RUNS_PER_CASE single-row commands per (law, dtype), each its own Holm
    family, on disjoint seeds (rows of different cases share no randomness, so
    the pooled count is binomial too).  A row fails when any of its checks
    failed, whatever the checks are: FAIL, or WARN (the 16-bit rule explains a
    rejection; Holm bounds the rejections).

    Fails when the pooled count reaches POOLED_LIMIT (detects a rate of
    2 alpha in every case with probability 0.9929) or a case's count reaches
    CASE_LIMIT (a weaker guard per case, 0.85 at 4 alpha); a correct pipeline
    fails it with probability 5.6e-5.  Seeded, so the counts are fixed for
    a given set of checks."""
    counts = {}
    for index, (name, dtype) in enumerate(CASES):
        law = LAWS[name]
        verdicts = []
        for seed in range(index * RUNS_PER_CASE, (index + 1) * RUNS_PER_CASE):
            (row,) = check_rows([sampler_plan(law, law.sample, shape=(100, 100), dtype=dtype)],
                                samples=20_000, seed=seed, alpha=ALPHA)
            verdicts.append(row.verdict)
        assert set(verdicts) <= {"PASS", "FAIL", "WARN"}, f"{name} {dtype}: {set(verdicts)}"
        counts[name, dtype] = sum(v != "PASS" for v in verdicts)
    pooled = sum(counts.values())
    shown = ", ".join(f"{name} {dtype} {c}" for (name, dtype), c in counts.items())
    assert pooled < POOLED_LIMIT, f"{pooled} of {RUNS} correct rows failed at alpha = {ALPHA} ({shown})"
    over = {case: c for case, c in counts.items() if c >= CASE_LIMIT}
    assert not over, f"of {RUNS_PER_CASE} correct rows per case, at least {CASE_LIMIT} failed: {shown}"


STD = 0.05
N = 10_000_000


def sampled(sample, law=Normal(0.0, STD)):
    (row,) = check_rows([sampler_plan(law, sample)], samples=N)
    return row


def test_std_off_by_half_a_percent_fails_on_variance():
    row = sampled(lambda rng, n: rng.normal(0, STD * 1.005, n))
    assert failed(row) == {"variance"} or "variance" in failed(row)


def test_mean_shifted_by_a_hundredth_sigma_fails_on_mean():
    row = sampled(lambda rng, n: rng.normal(0.01 * STD, STD, n))
    assert "mean" in failed(row)


def test_uniform_with_the_normals_variance_fails_on_ks():
    bound = math.sqrt(3) * STD
    row = sampled(lambda rng, n: rng.uniform(-bound, bound, n))
    assert "ks" in failed(row) and "variance" not in failed(row)


def test_one_nan_in_one_draw_fails_on_finite():
    def sample(rng, n):
        x = rng.normal(0, STD, n)
        if rng.random() < 0.2:
            x[0] = np.nan
        return x
    row = sampled(sample)
    assert failed(row) == {"finite"}


def test_detect_chooses_an_n_that_catches_the_error(capsys):
    """--detect 0.5%: N from the power formula; a 0.5% std error then fails."""
    from initcheck.checks import CHECKS_PER_ROW, samples_to_detect

    law = Normal(0.0, STD)
    n = samples_to_detect(law, 0.005, 1e-6 / CHECKS_PER_ROW)
    (row,) = check_rows([sampler_plan(law, lambda rng, k: rng.normal(0, STD * 1.005, k), shape=(100, 100))],
                        samples=n)
    assert "variance" in failed(row)
    assert row.check("variance").power <= 0.005 * 1.05
