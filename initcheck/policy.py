"""Policy: what the numbers of every row mean together.

Execution (:mod:`initcheck.sampling`) leaves each row a
:class:`~initcheck.summary.Summary` and the p-values of its checks
(:func:`initcheck.checks.evaluate`).  This module decides:

* **Holm** over every statistical check of every row of one command: sort the m
  p-values ascending, test the j-th (from 0) at alpha / (m - j), reject while
  every smaller one was rejected.  The family-wise rate of false failures is at
  most alpha under any dependence between the checks.
* **Annotations**: each statistical check's critical value at its Holm level
  and its power statement (the smallest deviation detected with probability
  :data:`~initcheck.checks.POWER` at the Bonferroni level alpha / m, a lower
  bound of its Holm level).
* **Verdicts**: PASS, FAIL, or WARN for a 16-bit row whose every failure is
  explained by a rounding within the dtype's resolution (:func:`rounding_cause`);
  ``strict`` makes WARN a FAIL.

Every result it hands out is immutable.
"""

from __future__ import annotations

import math
from dataclasses import replace

from initcheck.checks import POWER, CheckResult, evaluate, ks_critical, z_critical
from initcheck.draw_checks import NAMES as DRAW_CHECKS
from initcheck.laws import Law, standard_normal_quantile
from initcheck.lowp import sample_dtype
from initcheck.results import RowResult, Sampled
from initcheck.structure_checks import copies_power, draws_power, positions_power
from initcheck.summary import Summary

#: Power statements of the structure checks, by check name.
STRUCTURE_POWER = {"positions": positions_power, "draws": draws_power, "copies": copies_power}


def holm(pvalues: list[float], alpha: float) -> list[tuple[float, bool]]:
    """Holm's step-down procedure: (level, rejected) for each p-value, in the
    order given.

    Sort the m p-values ascending; the j-th (from 0) is tested at alpha / (m - j)
    and rejected while every smaller one was.  The family-wise error rate is at
    most alpha under any dependence between the tests.

    >>> holm([0.01, 0.04, 0.03], alpha=0.05)
    [(0.016666666666666666, True), (0.05, False), (0.025, False)]
    """
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    m = len(pvalues)
    decided: list[tuple[float, bool]] = [(0.0, False)] * m
    rejecting = True
    for j, i in enumerate(order):
        level = alpha / (m - j)
        rejecting = rejecting and pvalues[i] <= level
        decided[i] = (level, rejecting)
    return decided


def apply_holm(checks: list[CheckResult], alpha: float) -> list[CheckResult]:
    """The checks with each statistical one's Holm level and outcome set
    (deterministic checks come back as they are)."""
    statistical = [i for i, c in enumerate(checks) if c.statistical]
    decided = list(checks)
    for i, (level, rejected) in zip(statistical, holm([checks[i].pvalue for i in statistical], alpha)):
        decided[i] = replace(checks[i], level=level, passed=not rejected)
    return decided


def annotate(check: CheckResult, law: Law, summary: Summary, bonferroni_level: float) -> CheckResult:
    """The check with its threshold (at its Holm level) and its power statement:
    the smallest deviation it detects with probability POWER at the Bonferroni
    level (a lower bound of its Holm level)."""
    n = summary.count
    if n < 2 or not check.statistical:
        return check
    beta_z = standard_normal_quantile(POWER)
    reach = (z_critical(bonferroni_level) + beta_z) / math.sqrt(n)
    if check.name == "mean":
        return replace(check, threshold=z_critical(check.level), power=reach,
                       power_text=f"mean shift ≥ {reach:.2g}σ")
    if check.name == "variance":
        relative_variance = reach * math.sqrt(law.fourth_moment / law.variance**2 - 1.0)
        power = math.sqrt(1.0 + relative_variance) - 1.0
        return replace(check, threshold=z_critical(check.level), power=power,
                       power_text=f"std error ≥ {power * 100:.2g}%")
    if check.name == "ks":
        noise = math.sqrt(math.log(2.0 / (1.0 - POWER)) / (2.0 * n))
        power = ks_critical(bonferroni_level, n) + noise + check.resolution
        return replace(check, threshold=ks_critical(check.level, n), power=power,
                       power_text=f"KS distance ≥ {power:.2g}")
    if check.name == "spikes":
        # an atom hides in a cell (or on a value) of mass `resolution`
        cells = summary.grid.cells + 2 if summary.grid is not None else len(summary.patterns)
        expected = n * check.resolution
        log_term = math.log(cells / bonferroni_level)
        threshold = expected + math.sqrt(2.0 * expected * log_term) + log_term
        power = (threshold + beta_z * math.sqrt(threshold)) / n - check.resolution
        return replace(check, threshold=threshold / n, power=power,
                       power_text=f"an atom ≥ {power:.2g} of the values")
    if check.name == "independence":
        return replace(check, threshold=z_critical(check.level), power=reach,
                       power_text=f"lag-1 correlation ≥ {reach:.2g}")
    if check.name == "diagonal signs":
        from initcheck.draw_checks import signs_power

        found = signs_power(check, bonferroni_level)
        if found is not None:
            power, text, threshold = found
            return replace(check, threshold=threshold, power=power, power_text=text)
        return check
    if check.name in STRUCTURE_POWER:
        found = STRUCTURE_POWER[check.name](summary, bonferroni_level, check.level)
        if found is not None:
            power, text, threshold = found
            return replace(check, threshold=threshold, power=power, power_text=text)
    return check


def decide(sampled: list[Sampled], alpha: float, strict: bool = False) -> list[RowResult]:
    """Holm over every statistical check of every row, then each row's verdict.

    A failing 16-bit row gets the WARN rule (docs/design.md, "Low precision"),
    widened to every rounding within the dtype's resolution
    (:func:`rounding_candidates`): when one of them explains every failure
    (mass moved between the bound atoms with the pooled count agreeing with the
    law, bounds rounded to the dtype, or a normal computed in the dtype), the
    verdict is WARN with that cause, or FAIL under ``strict``."""
    every_check = apply_holm([c for s in sampled for c in s.checks], alpha)
    tested = sum(1 for c in every_check if c.statistical)
    results, start = [], 0
    for row in sampled:
        checks = every_check[start:start + len(row.checks)]
        start += len(row.checks)
        results.append(_verdict(row, checks, alpha / max(tested, 1), strict))
    return results


def _verdict(row: Sampled, checks: list[CheckResult], bonferroni_level: float, strict: bool) -> RowResult:
    verdict, reason = "SKIP", row.reason
    if row.summary is not None:
        checks = [annotate(c, row.law, row.summary, bonferroni_level) for c in checks]
        failed = [c for c in checks if not c.passed]
        verdict = "FAIL" if failed else "PASS"
        reason = "; ".join(c.detail for c in failed)
        # a per-draw check is about the tensor, not the rounding of its values: no WARN for it
        if failed and row.summary.patterns is not None and not any(c.name in DRAW_CHECKS for c in failed):
            cause = rounding_cause(row.law, row.summary, row.dtype, checks)
            if cause:
                verdict = "FAIL" if strict else "WARN"
                reason = cause + ("" if not strict else " (--strict)")
    if row.partial:
        reason = "partial (interrupted). " + reason
    return row.decided(checks, verdict, reason)


def rounding_candidates(law: Law, dtype: str) -> list[tuple[Law, str]]:
    """The laws the WARN rule may compare a 16-bit row with, each with the
    rounding it stands for: the documented law; for a uniform law whose bounds
    the dtype cannot hold, the law with its bounds rounded to the dtype
    (PyTorch's CUDA ``uniform_`` casts ``a`` and ``b`` first); for a normal or
    truncated normal of mean 0, the law of a sampler that computes in the dtype
    (:class:`~initcheck.lowp.ScaledIn16Bits`, Keras' TensorFlow backend)."""
    from initcheck.laws import Normal, TruncatedNormal, Uniform
    from initcheck.lowp import ScaledIn16Bits, round_to

    candidates = [(law, "")]
    if isinstance(law, Uniform):
        low, high = (float(round_to(dtype, b)) for b in (law.low, law.high))
        if (low, high) != (law.low, law.high) and low < high:
            candidates.append((
                Uniform(low, high),
                f"the sampler rounds the bounds to {dtype} first ({low:.6g}, {high:.6g} instead of "
                f"{law.low:.6g}, {law.high:.6g}), within {dtype}'s resolution",
            ))
    if isinstance(law, (Normal, TruncatedNormal)) and law.mean == 0.0:
        scaled = ScaledIn16Bits(law, dtype)
        candidates.append((
            scaled,
            f"the sampler computes in {dtype}: a standard draw rounded to {dtype}, times the std rounded to "
            f"{dtype} ({scaled.sigma:.6g} for {law.sigma:.6g}), rounded again; every value is within one "
            f"{dtype} step of a correctly rounded draw",
        ))
    return candidates


def rounding_cause(law: Law, summary: Summary, dtype: str, checks: list[CheckResult]) -> str | None:
    """The WARN cause, when 16-bit rounding explains every failure of
    ``checks``: mass moved between the bound atoms, parameters rounded to the
    dtype, or both."""
    levels = {c.name: c.level for c in checks if c.statistical}
    for candidate, rounding in rounding_candidates(law, summary.dtype16):
        if rounding and _explains(candidate, summary, dtype, levels):
            return rounding + "; against that law every check passes"
        cause = _rebalance_explains(candidate, summary, dtype, levels)
        if cause:
            return f"{rounding}; {cause}" if rounding else cause
    return None


def _explains(law: Law, summary: Summary, dtype: str, levels: dict[str, float]) -> bool:
    """Whether every check of ``summary`` against ``law`` passes at ``levels``
    (the levels Holm gave the row's checks, by name)."""
    return all(
        check.pvalue > levels.get(check.name, 0.0) if check.statistical else check.passed
        for check in evaluate(law, summary, sample_dtype(dtype))
    )


def _rebalance_explains(law: Law, summary: Summary, dtype: str, levels: dict[str, float]) -> str | None:
    """The cause, when splitting the bound atoms' pooled count as ``law`` does
    makes every check pass and the pooled count agrees with ``law``."""
    from initcheck.lowp import as_rounded, rebalanced

    found = rebalanced(summary, as_rounded(law, summary.dtype16))
    if found is None:
        return None
    summary, moved = found
    if not _explains(law, summary, dtype, levels):
        return None
    n = summary.count
    mass = moved["low"][2] + moved["high"][2]
    spread = math.sqrt(n * mass * (1.0 - mass)) or 1.0
    z = (moved["pooled"] - n * mass) / spread
    if math.erfc(abs(z) / math.sqrt(2.0)) <= min(levels.values()):
        return None  # more (or less) mass on the bounds than the law's: not a mere move
    (low_value, low_count, low_mass), (high_value, high_count, high_mass) = moved["low"], moved["high"]
    return (
        f"{summary.dtype16} mass moved between the bound atoms: {low_value:g} holds {low_count / n:.3g} of the "
        f"values (law {low_mass:.3g}), {high_value:g} holds {high_count / n:.3g} (law {high_mass:.3g}); "
        "their pooled mass matches the law, and with it split as the law's every check passes"
    )
