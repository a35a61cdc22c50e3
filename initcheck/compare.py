"""``initcheck compare OLD.json NEW.json``: what changed between two reports.

Made for the user who just upgraded a framework: run the same command before
and after, with ``--json``, and compare.  Rows are matched by their ``key``
(framework, initializer, layer, shape, dtype, device; see
:attr:`initcheck.runner.RowResult.key`).  The comparison reports

* rows added and rows gone (keys in only one report);
* verdict changes (PASS -> FAIL, SKIP -> PASS, ...);
* law changes: the law the framework documents is not the same any more;
* API text changes, as information;
* appearing (or vanishing) NaN / Inf values;
* shifts between the two runs, from the sufficient statistics the reports
  store, by two-sample tests (see :func:`mean_shift`, :func:`variance_shift`,
  :func:`ks_shift`).  Holm's procedure over every test of every matched row
  keeps the family-wise rate of false "significant" shifts at ``alpha``
  (default 1e-6, like the rest of initcheck).  Only rows with at least two
  finite values in both runs are tested.

Under the table, a power line states what the tests would have flagged: for
the mean, variance and KS tests, the smallest shift detected with probability
0.999 in the least powerful matched row, each test at the Bonferroni level
alpha / T (T tests, a lower bound of every Holm level; see :func:`shift_reach`),
so "none changed significantly" comes with the size of change it rules out.

The two runs are treated as independent samples.  Runs with the same seed of
an unchanged sampler draw the same values: the tests then see no shift at all,
and positively correlated samples only make them conservative.

Regression rule (exit code 1 when any row regressed, else 0):

* its verdict got worse: PASS -> WARN, or anything -> FAIL;
* it is no longer checked: a row that had a verdict (PASS, WARN or FAIL) is
  gone from the new report or became SKIP;
* NaN or Inf values appeared (none before, some now);
* a significant shift in a row that was PASS before, under the same law.

Not regressions, but reported: added rows (there was nothing to regress from,
and the new report's own exit code judges them), improved verdicts, API text
changes, law changes, shifts in rows that were already WARN or FAIL (the
verdicts say what is wrong with them; a change for the worse shows as a verdict
change), and shifts in rows whose law changed (the framework documents a
different law, so its samples are expected to move; the new verdict, against
the new law, says whether they moved to the right place).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
from rich.table import Table
from rich.text import Text

from initcheck.check_result import POWER
from initcheck.checks import two_sided_pvalue, z_critical
from initcheck.laws import standard_normal_quantile
from initcheck.policy import holm
from initcheck.errors import InputError
from initcheck.report import REPORT_SCHEMA, json_safe
from initcheck.structure import AxisSums
from initcheck.summary import Summary

COMPARE_SCHEMA = "initcheck-compare/1"
DEFAULT_ALPHA = 1e-6
#: Verdicts that mean the row was checked.
CHECKED = ("PASS", "WARN", "FAIL")


# --------------------------------------------------------------------------- results


@dataclass
class ShiftTest:
    """One two-sample test of one row; like a scipy.stats result it has a
    ``statistic`` and a ``pvalue``.  :func:`compare_reports` fills in ``level``
    (the share of alpha Holm's procedure gives it), ``threshold`` (the
    statistic's critical value at that level) and ``passed``."""

    name: str  # "mean", "variance", "ks" or "positions"
    statistic: float
    pvalue: float
    detail: str
    old: str  # the compared quantity (mean, std, or the CDF where D is largest) in the old run
    new: str
    #: n1 n2 / (n1 + n2) for a KS test (its critical value needs it), else None.
    effective_n: float | None = None
    #: (n1, n2), the finite values of each run, for the power statement.
    counts: tuple[int, int] | None = None
    #: Variance test: the larger of the two runs' kurtoses m4 / s^4.
    kurtosis: float | None = None
    #: KS test: how far D read at the cell edges may lie below the true D
    #: (the largest cell's share of either run; 0 for the exact 16-bit D).
    resolution: float = 0.0
    level: float | None = None
    threshold: float | None = None
    passed: bool | None = None

    @property
    def significant(self) -> bool:
        return self.passed is False

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "statistic": self.statistic,
            "pvalue": self.pvalue,
            "level": self.level,
            "threshold": self.threshold,
            "significant": self.significant,
            "old": self.old,
            "new": self.new,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class NotCompared:
    """A test that could not be made, and why."""

    name: str
    reason: str

    def to_dict(self) -> dict:
        return {"name": self.name, "reason": self.reason}


@dataclass
class Change:
    """One thing that differs about one row, as a line of the table."""

    key: str
    kind: str  # added, gone, verdict, law, api, non-finite, mean, variance, ks
    old: str
    new: str
    detail: str = ""
    regression: bool = False
    test: ShiftTest | None = None

    def to_dict(self) -> dict:
        out = {"key": self.key, "kind": self.kind, "old": self.old, "new": self.new,
               "detail": self.detail, "regression": self.regression}
        if self.test is not None:
            out.update(statistic=self.test.statistic, pvalue=self.test.pvalue, level=self.test.level)
        return out


@dataclass(frozen=True)
class Regression:
    """A row that regressed, with every reason."""

    key: str
    reasons: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"key": self.key, "reasons": list(self.reasons)}


def verdict_got_worse(old: str, new: str) -> bool:
    """PASS -> WARN, anything else -> FAIL."""
    return (new == "FAIL" and old != "FAIL") or (old == "PASS" and new == "WARN")


def no_longer_checked(old: str, new: str | None) -> bool:
    """A row with a verdict is gone (``new`` None) or skipped now."""
    return old in CHECKED and new in (None, "SKIP")


@dataclass
class RowComparison:
    """A row found in both reports."""

    key: str
    old: dict
    new: dict
    tests: list[ShiftTest] = field(default_factory=list)
    not_compared: list[NotCompared] = field(default_factory=list)

    @property
    def old_verdict(self) -> str:
        return self.old.get("verdict", "SKIP")

    @property
    def new_verdict(self) -> str:
        return self.new.get("verdict", "SKIP")

    @property
    def law_changed(self) -> bool:
        return not _same(self.old.get("law"), self.new.get("law"))

    @property
    def api_changed(self) -> bool:
        return self.old.get("api") != self.new.get("api")

    @property
    def nonfinite(self) -> tuple[int, int]:
        """(old, new) count of NaN and Inf values; 0 for a row without statistics."""
        return _nonfinite(self.old), _nonfinite(self.new)

    @property
    def significant(self) -> list[ShiftTest]:
        return [t for t in self.tests if t.significant]

    def changes(self) -> list[Change]:
        """Everything that differs, each marked when it is a regression."""
        found = []
        old, new = self.old_verdict, self.new_verdict
        if old != new:
            worse, unchecked = verdict_got_worse(old, new), no_longer_checked(old, new)
            detail = "worse" if worse else ("no longer checked" if unchecked else "")
            reason = self.new.get("reason") or ""
            detail = "; ".join(part for part in (detail, reason) if part)
            found.append(Change(self.key, "verdict", old, new, detail, worse or unchecked))
        if self.law_changed:
            found.append(Change(self.key, "law", _law_text(self.old), _law_text(self.new),
                                "the documented law changed"))
        if self.api_changed:
            found.append(Change(self.key, "api", str(self.old.get("api")), str(self.new.get("api"))))
        before, after = self.nonfinite
        if (before == 0) != (after == 0):
            appeared = before == 0
            found.append(Change(self.key, "non-finite", f"{before:,}", f"{after:,}",
                                "NaN/Inf appeared" if appeared else "NaN/Inf gone", appeared))
        for test in self.significant:
            if self.law_changed:
                regression, note = False, "explained by the law change"
            elif old != "PASS":
                regression, note = False, f"the row was already {old}"
            else:
                regression, note = True, ""
            detail = "; ".join(part for part in (test.detail, note) if part)
            found.append(Change(self.key, test.name, test.old, test.new, detail, regression, test))
        return found

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "verdict": {"old": self.old_verdict, "new": self.new_verdict},
            "law": {"old": self.old.get("law"), "new": self.new.get("law")},
            "law_changed": self.law_changed,
            "api": {"old": self.old.get("api"), "new": self.new.get("api")},
            "nonfinite": dict(zip(("old", "new"), self.nonfinite)),
            "tests": [t.to_dict() for t in self.tests],
            "not_compared": [n.to_dict() for n in self.not_compared],
            "changes": [c.to_dict() for c in self.changes()],
        }


@dataclass
class Comparison:
    """Everything :func:`compare_reports` found."""

    alpha: float
    rows: list[RowComparison]
    added: list[dict]  # rows only in the new report
    gone: list[dict]  # rows only in the old report
    #: framework -> (old version, new version); None where a report lacks it.
    versions: dict[str, tuple[str | None, str | None]]
    #: other environment entries (initcheck, python, platform) that differ.
    environment_changes: dict[str, tuple]
    #: settings (samples, seed, alpha, device, ...) that differ.
    settings_changes: dict[str, tuple]
    old_created: str | None = None
    new_created: str | None = None

    @property
    def tests(self) -> list[ShiftTest]:
        return [t for row in self.rows for t in row.tests]

    @property
    def power(self) -> Power | None:
        """The smallest shifts the tests would have flagged (see :class:`Power`)."""
        return comparison_power(self.rows, self.alpha)

    def changes(self) -> list[Change]:
        found = []
        for row in self.gone:
            verdict = row.get("verdict", "SKIP")
            found.append(Change(row["key"], "gone", verdict, "—", "no longer checked" if verdict in CHECKED else "",
                                verdict in CHECKED))
        for row in self.rows:
            found += row.changes()
        for row in self.added:
            found.append(Change(row["key"], "added", "—", row.get("verdict", "SKIP"), row.get("reason") or ""))
        return found

    @property
    def regressions(self) -> list[Regression]:
        reasons: dict[str, list[str]] = {}
        for change in self.changes():
            if change.regression:
                reasons.setdefault(change.key, []).append(_reason(change))
        return [Regression(key, tuple(texts)) for key, texts in reasons.items()]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    def to_dict(self) -> dict:
        return json_safe({
            "schema": COMPARE_SCHEMA,
            "alpha": self.alpha,
            "tests": len(self.tests),
            "created": {"old": self.old_created, "new": self.new_created},
            "versions": {name: {"old": a, "new": b} for name, (a, b) in self.versions.items()},
            "environment_changes": {k: {"old": a, "new": b} for k, (a, b) in self.environment_changes.items()},
            "settings_changes": {k: {"old": a, "new": b} for k, (a, b) in self.settings_changes.items()},
            "matched": len(self.rows),
            "added": [{"key": r["key"], "verdict": r.get("verdict")} for r in self.added],
            "gone": [{"key": r["key"], "verdict": r.get("verdict")} for r in self.gone],
            "rows": [r.to_dict() for r in self.rows],
            "changes": [c.to_dict() for c in self.changes()],
            "regressions": [r.to_dict() for r in self.regressions],
            "power": self.power.to_dict() if self.power is not None else None,
            "exit_code": self.exit_code,
        })


def _reason(change: Change) -> str:
    if change.kind == "verdict":
        return f"{change.old} → {change.new}"
    if change.kind == "gone":
        return "gone"
    if change.kind == "non-finite":
        return f"{change.new} non-finite values"
    return f"{change.kind} shift"


# ------------------------------------------------------------------ two-sample tests


def _z_test(name: str, difference: float, variance: float, detail: str, old: str, new: str) -> ShiftTest:
    """z = difference / sqrt(variance); an exact tie of two constant samples is z = 0."""
    if variance > 0:
        z = difference / math.sqrt(variance)
    else:
        z = 0.0 if difference == 0 else math.copysign(math.inf, difference)
    return ShiftTest(name, z, two_sided_pvalue(z), f"{detail}: z = {z:+.1f}", old, new)


def _spread_counts(old: Summary, new: Summary) -> tuple[int, int] | None:
    """(n1, n2) for the power statement; None when both runs are constant (a
    zero bias): any change of theirs is seen exactly, no shift size applies."""
    return (old.count, new.count) if old.variance > 0 or new.variance > 0 else None


def mean_shift(old: Summary, new: Summary) -> ShiftTest:
    """Two-sample z test of the means, each run with its own variance (Welch's
    statistic; with N in the thousands the normal law is exact enough):

        z = (mean2 - mean1) / sqrt(s1^2 / n1 + s2^2 / n2),   p = P(|Z| > |z|).

    n counts the finite values, s^2 is the unbiased sample variance."""
    difference = new.mean - old.mean
    variance = old.variance / old.count + new.variance / new.count
    scale = old.std if old.std > 0 else 1.0
    detail = f"mean moved {difference / scale:+.3g}σ (of the old std)"
    test = _z_test("mean", difference, variance, detail, f"{old.mean:.4g}", f"{new.mean:.4g}")
    test.counts = _spread_counts(old, new)
    return test


def variance_shift(old: Summary, new: Summary) -> ShiftTest:
    """Two-sample z test of the variances.  The sample variance s^2 of n values
    is asymptotically normal with variance (mu4 - sigma^4) / n, estimated from
    each run's own fourth central moment m4:

        z = (s2^2 - s1^2) / sqrt((m4_1 - s1^4) / n1 + (m4_2 - s2^4) / n2).

    Unlike an F test this does not assume normal samples (a uniform law's
    m4 is 1.8 sigma^4, not 3)."""
    s1, s2 = old.variance, new.variance
    variance = max(old.central_moment(4) - s1 * s1, 0.0) / old.count
    variance += max(new.central_moment(4) - s2 * s2, 0.0) / new.count
    relative = new.std / old.std - 1.0 if old.std > 0 else math.inf
    detail = f"std {relative * 100:+.2f}%"
    test = _z_test("variance", s2 - s1, variance, detail, f"{old.std:.4g}", f"{new.std:.4g}")
    test.counts = _spread_counts(old, new)
    kurtoses = [s.central_moment(4) / s.central_moment(2) ** 2 for s in (old, new) if s.central_moment(2) > 0]
    test.kurtosis = max(kurtoses) if kurtoses else None
    return test


def kolmogorov_pvalue(d: float, effective_n: float) -> float:
    """Asymptotic two-sample KS p-value: P(K > sqrt(n_e) D), K Kolmogorov's
    distribution, n_e = n1 n2 / (n1 + n2)."""
    from scipy.special import kolmogorov

    return float(min(1.0, kolmogorov(math.sqrt(effective_n) * d)))


def ks_critical_two_sample(level: float, effective_n: float) -> float:
    """The D whose asymptotic two-sample p-value is ``level``."""
    from scipy.special import kolmogi

    return float(kolmogi(level)) / math.sqrt(effective_n)


def _ks_result(d: float, where: float, f_old: float, f_new: float, n1: int, n2: int, how: str,
               resolution: float = 0.0) -> ShiftTest:
    effective_n = n1 * n2 / (n1 + n2)
    detail = f"KS D = {d:.3g} ({how}): the CDF at x = {where:.4g}"
    return ShiftTest("ks", d, kolmogorov_pvalue(d, effective_n), detail, f"{f_old:.4g}", f"{f_new:.4g}", effective_n,
                     counts=(n1, n2), resolution=resolution)


def ks_shift(old: Summary, new: Summary) -> ShiftTest | NotCompared:
    """Two-sample Kolmogorov-Smirnov test, D = max |F1(x) - F2(x)| of the two
    empirical CDFs of the finite values, p-value from the asymptotic Kolmogorov
    distribution at sqrt(n_e) D with n_e = n1 n2 / (n1 + n2).

    From histograms on the same grid, F1 and F2 are known only at the cell
    edges (cumulative cell counts over n): D read there is a lower bound of the
    true D (the largest gap may lie inside a cell), and D computed from binned
    values is stochastically smaller than the continuous D, so the p-value is
    conservative (too large, never too small).  Histograms on different grids
    (the law changed) cannot be compared from counts: neither run's CDF is known
    at the other's edges, so the test is skipped.

    For 16-bit rows the counts of each bit pattern give both empirical CDFs
    exactly at every representable value, where they jump: D is exact.  With
    such ties the asymptotic p-value is conservative too."""
    if old.patterns is not None and new.patterns is not None:
        if old.dtype16 != new.dtype16:
            return NotCompared("ks", f"different 16-bit dtypes ({old.dtype16}, {new.dtype16})")
        return _ks_exact_16bit(old, new)
    if old.hist is None or new.hist is None or old.grid is None or new.grid is None:
        return NotCompared("ks", "a report holds no histogram for this row")
    if not old.grid.same(new.grid):
        return NotCompared("ks", "the histogram grids differ (the law changed, or initcheck versions "
                                 "with other grids wrote the reports): the two CDFs are not known at common points")
    f_old = old.counts_below_edges() / old.count
    f_new = new.counts_below_edges() / new.count
    gaps = np.abs(f_new - f_old)
    k = int(np.argmax(gaps))
    edges = old.grid.edges()
    largest_cell = max(float(np.max(old.hist)) / old.count, float(np.max(new.hist)) / new.count)
    test = _ks_result(float(gaps[k]), float(edges[k]), float(f_old[k]), float(f_new[k]),
                      old.count, new.count, "binned: a lower bound", largest_cell)
    test.counts = _spread_counts(old, new)
    return test


def _ks_exact_16bit(old: Summary, new: Summary) -> ShiftTest:
    from initcheck.lowp import counts_by_value

    values_old, counts_old = counts_by_value(old.patterns, old.dtype16)
    values_new, counts_new = counts_by_value(new.patterns, new.dtype16)
    values = np.union1d(values_old, values_new)
    aligned_old = np.zeros(len(values), dtype=np.int64)
    aligned_new = np.zeros(len(values), dtype=np.int64)
    aligned_old[np.searchsorted(values, values_old)] = counts_old
    aligned_new[np.searchsorted(values, values_new)] = counts_new
    f_old = np.cumsum(aligned_old) / old.count
    f_new = np.cumsum(aligned_new) / new.count
    gaps = np.abs(f_new - f_old)
    k = int(np.argmax(gaps))
    return _ks_result(float(gaps[k]), float(values[k]), float(f_old[k]), float(f_new[k]),
                      old.count, new.count, f"exact over the {old.dtype16} values")


def _profile(axis, summary: Summary) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(count, mean in sigmas about the axis' pooled mean, variance relative to
    the pooled one, kurtosis) of each group of one axis."""
    with np.errstate(divide="ignore", invalid="ignore"):  # a constant row: NaN profiles, no positions test
        return _profile_values(axis, summary)


def _profile_values(axis, summary: Summary) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    m = axis.count
    means = axis.s1 / m
    variances = axis.s2 / m - means**2
    pooled_mean = axis.s1.sum() / m.sum()
    pooled_variance = axis.s2.sum() / m.sum() - pooled_mean**2
    kurtosis = summary.central_moment(4) / summary.central_moment(2) ** 2
    return m, (means - pooled_mean) / math.sqrt(pooled_variance), variances / pooled_variance, kurtosis


def positions_shift(old: Summary, new: Summary) -> ShiftTest | NotCompared | None:
    """Whether the profile of the positions moved: for every axis of the draw
    both reports keep (same shape, same groups), the groups of at least
    MIN_GROUP values of the old run, and in each the mean (in sigmas, about
    the axis' pooled mean) and the variance (relative to the pooled one) of
    both runs.  With u_g, w_g the differences of the two runs' group means
    and relative variances,

        T_mean = sum_g u_g^2 / (1/m1_g + 1/m2_g),
        T_std  = sum_g w_g^2 / ((k1 - 1)/m1_g + (k2 - 1)/m2_g)   ~ chi2(G - 1)

    (k the runs' kurtoses); the p-value is the smallest over axes and the two
    statistics times their number.  The sequence of draws is not compared:
    draw i of one run has nothing to do with draw i of the other."""
    from scipy import special

    from initcheck.structure_checks import merged

    if old.structure is None or new.structure is None:
        return None
    if tuple(old.structure.shape) != tuple(new.structure.shape):
        return NotCompared("positions", "the draws' shapes differ")
    news = {a.name: a for a in new.structure.axes if a.name != "draws"}
    tests, regrouped = [], False
    for raw_old in old.structure.axes:
        raw_new = news.get(raw_old.name)
        if raw_new is None:
            continue
        if not np.array_equal(raw_old.edges, raw_new.edges):
            regrouped = True
            continue
        grouped = merged(raw_old)
        if len(grouped.count) < 2:
            continue
        starts = np.searchsorted(raw_old.edges[:-1], grouped.edges[:-1])
        grouped_new = AxisSums(raw_new.name, raw_new.size, grouped.edges, np.add.reduceat(raw_new.count, starts),
                               np.add.reduceat(raw_new.s1, starts), np.add.reduceat(raw_new.s2, starts))
        m1, mean1, var1, k1 = _profile(grouped, old)
        m2, mean2, var2, k2 = _profile(grouped_new, new)
        df = len(m1) - 1
        for kind, difference, spread in (("mean", mean2 - mean1, 1 / m1 + 1 / m2),
                                         ("std", var2 - var1, (k1 - 1) / m1 + (k2 - 1) / m2)):
            terms = difference**2 / spread
            tests.append((float(special.chdtrc(df, terms.sum())), grouped, kind, int(np.argmax(terms)),
                          difference, terms.sum() / df))
    if not tests:
        return NotCompared("positions", "the reports group the positions differently (another N)") if regrouped \
            else None
    pvalue, axis, kind, group, difference, ratio = min(tests, key=lambda t: t[0])
    pvalue = min(1.0, pvalue * len(tests))
    lo, hi = int(axis.edges[group]), int(axis.edges[group + 1]) - 1
    where = f"{axis.name} {lo}" if lo == hi else f"{axis.name} {lo}-{hi}"
    moved = (f"{difference[group]:+.3g}σ in mean" if kind == "mean"
             else f"{(math.sqrt(max(1 + difference[group], 0)) - 1) * 100:+.2g}% in std")
    detail = f"the {kind} profile along the {axis.name} changed ({ratio:.3g}x chance): {where} moved {moved}"
    return ShiftTest("positions", ratio, pvalue, detail, "", "")


def shift_tests(old: Summary, new: Summary) -> tuple[list[ShiftTest], list[NotCompared]]:
    """The mean, variance, KS and positions tests of one row (p-values only; no Holm yet)."""
    moments = np.concatenate([old.sums, new.sums])
    if not np.all(np.isfinite(moments)):
        reason = "the power sums are not finite"
        return [], [NotCompared(name, reason) for name in ("mean", "variance", "ks")]
    tests, skipped = [mean_shift(old, new), variance_shift(old, new)], []
    for extra in (ks_shift(old, new), positions_shift(old, new)):
        if isinstance(extra, NotCompared):
            skipped.append(extra)
        elif extra is not None:
            tests.append(extra)
    return tests, skipped


# ------------------------------------------------------------------------- power


@dataclass(frozen=True)
class Reach:
    """The smallest shift of one kind that the comparison detects with
    probability POWER, in its least powerful row."""

    name: str  # "mean", "variance" or "ks"
    value: float  # in sigmas (mean), a relative std change (variance), a CDF distance (ks)
    key: str  # the row where it is largest
    counts: tuple[int, int]

    @property
    def text(self) -> str:
        if self.name == "mean":
            return f"a mean shift ≥ {self.value:.2g}σ"
        if self.name == "variance":
            return f"a std change ≥ {self.value * 100:.2g}%"
        return f"a KS distance ≥ {self.value:.2g}"

    def to_dict(self) -> dict:
        return {"name": self.name, "value": self.value, "key": self.key, "counts": list(self.counts)}


def shift_reach(test: ShiftTest, level: float) -> float | None:
    """The smallest true shift that ``test`` detects with probability POWER
    when it is tested at ``level`` (None for the positions test, whose
    chi-square has no single effect size).  With n1, n2 the runs' finite
    values, z_c the two-sided critical value at ``level`` and z_b the POWER
    quantile of the standard normal:

    * mean: a shift of (z_c + z_b) sqrt(1/n1 + 1/n2) old standard deviations
      (the two runs' std taken equal);
    * variance: the relative variance change r = (z_c + z_b) sqrt((k - 1)(1/n1 + 1/n2)),
      k the larger kurtosis of the two runs, given as the std decrease
      1 - sqrt(1 - r) (the larger of the two directions);
    * KS: a true distance Δ between the two CDFs is seen as D ≥ Δ - ε1 - ε2 -
      resolution, where εi = sqrt(ln(4 / (1 - POWER)) / (2 ni)) bounds each
      empirical CDF's error with probability 1 - (1 - POWER) / 2 (DKW) and
      ``resolution`` the largest cell's share (binned D is read at the cell
      edges); Δ is detected when that reaches the two-sample critical value
      kolmogi(level) sqrt(1/n1 + 1/n2)."""
    if test.counts is None or test.name not in ("mean", "variance", "ks"):
        return None  # positions, or two constant runs
    n1, n2 = test.counts
    spread = math.sqrt(1.0 / n1 + 1.0 / n2)
    z = z_critical(level) + standard_normal_quantile(POWER)
    if test.name == "mean":
        return z * spread
    if test.name == "variance":
        if test.kurtosis is None:
            return None
        relative_variance = z * spread * math.sqrt(max(test.kurtosis - 1.0, 0.0))
        return 1.0 - math.sqrt(1.0 - relative_variance) if relative_variance < 1.0 else 1.0
    noise = sum(math.sqrt(math.log(4.0 / (1.0 - POWER)) / (2.0 * n)) for n in (n1, n2))
    return ks_critical_two_sample(level, n1 * n2 / (n1 + n2)) + noise + test.resolution


@dataclass(frozen=True)
class Power:
    """What the comparison would have flagged: for the mean, variance and KS
    tests, the smallest shift detected with probability POWER in the least
    powerful row, every test taken at the Bonferroni level alpha / T (T the
    number of tests), a lower bound of its Holm level, so the statement holds
    for Holm too."""

    level: float
    tests: int
    reaches: tuple[Reach, ...]

    @property
    def text(self) -> str:
        parts = ", ".join(reach.text for reach in self.reaches)
        return (f"Power (probability {POWER:g}, each test at alpha/{self.tests:,} = {self.level:.2g}, "
                f"the least powerful row): flags {parts} between the runs.")

    def to_dict(self) -> dict:
        return {"probability": POWER, "level": self.level, "tests": self.tests,
                "reaches": [reach.to_dict() for reach in self.reaches], "text": self.text}


def comparison_power(rows: list[RowComparison], alpha: float) -> Power | None:
    """The weakest row's reach of each test kind (None when nothing was tested)."""
    tests = [(row.key, test) for row in rows for test in row.tests]
    if not tests:
        return None
    level = alpha / len(tests)
    weakest: dict[str, Reach] = {}
    for key, test in tests:
        reach = shift_reach(test, level)
        if reach is not None and (test.name not in weakest or reach > weakest[test.name].value):
            weakest[test.name] = Reach(test.name, reach, key, test.counts)
    reaches = tuple(weakest[name] for name in ("mean", "variance", "ks") if name in weakest)
    return Power(level, len(tests), reaches) if reaches else None


# --------------------------------------------------------------------------- reports


def load_report(path) -> dict:
    """Read an ``initcheck --json`` report; InputError (one line, naming the file)
    when it is missing, unreadable, not JSON, or not a report of schema
    ``initcheck-report/2``."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a report") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot be read ({getattr(error, 'strerror', None) or error})") from None
    try:
        report = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    if not isinstance(report, dict) or "schema" not in report:
        raise InputError(f"{path}: not an initcheck report (no \"schema\" field)")
    schema = report["schema"]
    if schema != REPORT_SCHEMA:
        raise InputError(f"{path}: schema {schema!r}, but initcheck compare reads {REPORT_SCHEMA!r} reports "
                         "(run the command again with this initcheck)")
    rows = report.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and isinstance(r.get("key"), str) for r in rows):
        raise InputError(f"{path}: not an initcheck report (its rows have no keys)")
    return report


def _rows_by_key(report: dict) -> dict[str, dict]:
    """Rows by key; a key seen again (the same row run twice) gets " #2", " #3"..."""
    rows: dict[str, dict] = {}
    for row in report.get("rows", []):
        key, copy = row["key"], 1
        while key in rows:
            copy += 1
            key = f"{row['key']} #{copy}"
        rows[key] = row if key == row["key"] else {**row, "key": key}
    return rows


def _summary(row: dict, which: str) -> Summary | str:
    """The row's Summary, or why there is none to compare."""
    data = row.get("statistics")
    if not data:
        return f"no statistics in the {which} report ({row.get('verdict', 'SKIP')})"
    try:
        summary = Summary.from_dict(data)
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(f"row {row['key']!r} of the {which} report: statistics unreadable ({error})") from None
    if summary.count < 2:
        return f"fewer than 2 finite values in the {which} report"
    return summary


def _nonfinite(row: dict) -> int:
    data = row.get("statistics") or {}
    return sum(int(data.get(name, 0) or 0) for name in ("nan", "posinf", "neginf"))


def _same(a, b) -> bool:
    """Equal, floats within 1e-12 relative (a law recomputed from the same numbers)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    numbers = isinstance(a, (int, float)) and isinstance(b, (int, float))
    if numbers and (isinstance(a, float) or isinstance(b, float)):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0) or a == b
    return a == b


def _law_text(row: dict) -> str:
    law = row.get("law")
    if not law:
        return "—"
    return law.get("text") or json.dumps(law, sort_keys=True)


def _differences(old: dict, new: dict, keys=None) -> dict[str, tuple]:
    keys = keys if keys is not None else sorted(set(old) | set(new), key=lambda k: (k not in old, k))
    return {k: (old.get(k), new.get(k)) for k in keys if not _same(old.get(k), new.get(k))}


def _row_samples_changes(rows: list) -> dict[str, tuple]:
    """The N each matched row asked for, where it changed (a suite's checks
    each have their own): ``{"samples (N rows)": (old, new)}``, one entry per
    distinct change."""
    changes: dict[tuple, int] = {}
    for row in rows:
        before, after = row.old.get("samples"), row.new.get("samples")
        if before is not None and after is not None and before != after:
            changes[(before, after)] = changes.get((before, after), 0) + 1
    return {f"samples ({count} row{'s' if count > 1 else ''})": pair for pair, count in changes.items()}


def compare_reports(old: dict, new: dict, alpha: float = DEFAULT_ALPHA) -> Comparison:
    """Match the rows of two reports by key and test every matched row with
    statistics in both for shifts (mean, variance, KS, positions), Holm over all tests."""
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha must be between 0 and 1, got {alpha:g}")
    old_rows, new_rows = _rows_by_key(old), _rows_by_key(new)
    if old_rows and new_rows and not set(old_rows) & set(new_rows):
        raise InputError(f"the two reports share no rows (no row key in common: {len(old_rows)} rows before, "
                         f"{len(new_rows)} after); compare two runs of the same command or suite")
    rows = []
    for key, old_row in old_rows.items():
        if key not in new_rows:
            continue
        new_row = new_rows[key]
        row = RowComparison(key, old_row, new_row)
        before, after = _summary(old_row, "old"), _summary(new_row, "new")
        if isinstance(before, Summary) and isinstance(after, Summary):
            row.tests, row.not_compared = shift_tests(before, after)
        elif old_row.get("statistics") or new_row.get("statistics"):
            reason = before if isinstance(before, str) else after
            row.not_compared = [NotCompared("shifts", reason)]
        rows.append(row)
    tests = [t for row in rows for t in row.tests]
    for test, (level, rejected) in zip(tests, holm([t.pvalue for t in tests], alpha)):
        test.level, test.passed = level, not rejected
        if test.name == "positions":
            test.threshold = None  # a chi-square over the groups: its p-value is what is compared
        elif test.effective_n is None:
            test.threshold = z_critical(test.level)
        else:
            test.threshold = ks_critical_two_sample(test.level, test.effective_n)

    old_env, new_env = old.get("environment") or {}, new.get("environment") or {}
    old_versions, new_versions = old_env.get("frameworks") or {}, new_env.get("frameworks") or {}
    names = list(old_versions) + [name for name in new_versions if name not in old_versions]
    return Comparison(
        alpha=alpha,
        rows=rows,
        added=[row for key, row in new_rows.items() if key not in old_rows],
        gone=[row for key, row in old_rows.items() if key not in new_rows],
        versions={name: (old_versions.get(name), new_versions.get(name)) for name in names},
        environment_changes=_differences(old_env, new_env, ["initcheck", "python", "platform", "devices"]),
        settings_changes={**_differences(old.get("settings") or {}, new.get("settings") or {}),
                          **_row_samples_changes(rows)},
        old_created=old.get("created"),
        new_created=new.get("created"),
    )


# ----------------------------------------------------------------------------- render

_KIND_TEXT = {"verdict": "verdict", "law": "law changed", "api": "API text", "non-finite": "non-finite values",
              "mean": "mean shift", "variance": "variance shift", "ks": "distribution shift (KS)",
              "positions": "positions shift",
              "added": "added", "gone": "gone"}


def _version_text(old, new) -> str:
    if old == new:
        return f"{old} (unchanged)"
    return f"{old or 'absent'} → {new or 'absent'}"


def _setting_text(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _pvalue_text(test: ShiftTest) -> str:
    p = f"{test.pvalue:.2g}" if test.pvalue > 0 else "< 1e-300"
    return f"{p} ≤ {test.level:.2g}" if test.level is not None else p


def _statistic_text(test: ShiftTest) -> str:
    if test.name == "ks":
        return f"D = {test.statistic:.3g}\ncrit {test.threshold:.2g}"
    if test.name == "positions":
        return f"{test.statistic:.3g}x chance"
    return f"z = {test.statistic:+.1f}\ncrit ±{test.threshold:.2g}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def summary_line(comparison: Comparison) -> str:
    """The final line: the regressions, or that there are none."""
    regressions = comparison.regressions
    extra = []
    if comparison.added:
        extra.append(f"{len(comparison.added)} added")
    if comparison.gone:
        extra.append(f"{len(comparison.gone)} gone")
    extra_text = f" ({', '.join(extra)})" if extra else ""
    if regressions:
        parts = [f"{r.key} ({', '.join(r.reasons)})" for r in regressions[:3]]
        if len(regressions) > 3:
            parts.append(f"and {len(regressions) - 3} more")
        return f"{_plural(len(regressions), 'regression')}: " + "; ".join(parts)
    changed = {c.key for c in comparison.changes() if c.kind not in ("added", "gone")}
    matched = f"no regression: {_plural(len(comparison.rows), 'row')} matched{extra_text}"
    if changed:
        return f"{matched}, {len(changed)} changed (none for the worse)"
    return f"{matched}, none changed significantly"


def render_comparison(comparison: Comparison, console) -> None:
    """Versions and settings, a table of what changed, and the one-line verdict."""
    if comparison.old_created or comparison.new_created:
        console.print(f"old report {comparison.old_created or '?'}, new report {comparison.new_created or '?'}")
    if comparison.versions:
        console.print("versions: " + ", ".join(f"{name} {_version_text(a, b)}"
                                               for name, (a, b) in comparison.versions.items()))
    for name, (a, b) in comparison.environment_changes.items():
        if name == "devices":
            continue
        console.print(f"{name}: {_version_text(a, b)}")
    if comparison.settings_changes:
        console.print("settings differ: " + "; ".join(
            f"{name} {_setting_text(a)} → {_setting_text(b)}" for name, (a, b) in comparison.settings_changes.items()
        ))
    changes = comparison.changes()
    if changes:
        table = Table(show_lines=False, title_justify="left")
        table.add_column("row", overflow="fold", max_width=44)
        table.add_column("what changed", overflow="fold")
        table.add_column("old → new", overflow="fold")
        table.add_column("statistic", justify="right")
        table.add_column("p-value ≤ level", justify="right")
        table.add_column("", overflow="fold")
        for index, change in enumerate(changes):
            first = index == 0 or changes[index - 1].key != change.key
            last = index == len(changes) - 1 or changes[index + 1].key != change.key
            what = Text(_KIND_TEXT.get(change.kind, change.kind), style="bold red" if change.regression else "")
            if change.detail:
                what.append(f"\n{change.detail}", style="dim")
            test = change.test
            table.add_row(
                change.key if first else "",
                what,
                f"{change.old} → {change.new}",
                _statistic_text(test) if test else "",
                _pvalue_text(test) if test else "",
                Text("regression", style="bold red") if change.regression else "",
                end_section=last,
            )
        console.print(table)
    kinds = [name for name in ("mean", "variance", "ks", "positions") if any(t.name == name for t in comparison.tests)]
    kinds_text = ", ".join("KS" if name == "ks" else name for name in kinds) or "none"
    console.print(f"Family-wise alpha {comparison.alpha:g}, Holm over {len(comparison.tests)} two-sample tests "
                  f"({kinds_text}) of {_plural(len(comparison.rows), 'matched row')}.")
    power = comparison.power
    if power is not None:
        console.print(power.text)
    console.print(summary_line(comparison), style="bold red" if comparison.regressions else "bold green")
