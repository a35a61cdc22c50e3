"""Calibration: how often a correct sampler fails (alpha), and what the checks catch.

False failures: many independent single-row commands on exact samplers, at a
large alpha so failures are frequent enough to count; the observed count must
be consistent with a rate of at most alpha (a binomial bound, not an eyeball).
Holm keeps the family-wise rate at or below alpha, and the KS (DKW) and spike
(Chernoff) p-values are conservative, so the rate is usually well below.

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
RUNS = 60

LAWS = {
    "normal": Normal(0.0, 0.05),
    "uniform": Uniform(-0.1, 0.1),
    "truncated": TruncatedNormal(0.0, 0.05, -0.1, 0.1),
}


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("name", list(LAWS))
def test_false_failure_rate_is_at_most_alpha(name, dtype):
    law = LAWS[name]
    failures = 0
    for seed in range(RUNS):
        (row,) = check_rows([sampler_plan(law, law.sample, shape=(100, 100), dtype=dtype)],
                            samples=20_000, seed=seed, alpha=ALPHA)
        failures += row.verdict == "FAIL"
    # P(Binomial(RUNS, ALPHA) >= limit) < 1e-4: exceeding it means the rate is above alpha
    limit = int(stats.binom.isf(1e-4, RUNS, ALPHA)) + 1
    assert failures < limit, f"{failures} of {RUNS} correct rows failed at alpha = {ALPHA}"


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
