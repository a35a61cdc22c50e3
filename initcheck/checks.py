"""The checks: a :class:`Summary` of samples against the law it should follow.

Deterministic checks (fail on any offence, whatever alpha):

* ``finite``   any NaN or Inf fails, with the counts.
* ``support``  a bounded law fails on a value outside its bounds by more than one
               unit in the last place of the sample dtype.

Statistical checks, each with a p-value; Holm's step-down procedure over every
statistical check of a command keeps the family-wise false-failure rate at
``alpha`` (default 1e-6):

* ``mean``      z = (mean - mu) / sqrt(sigma^2 / N), two-sided normal p-value.
* ``variance``  z = (s^2 - sigma^2) / sqrt((mu4 - sigma^4) / N), mu4 the law's
                fourth central moment; two-sided normal p-value.
* ``ks``        Kolmogorov-Smirnov distance D read off the histogram: the largest
                gap between the empirical and the law's CDF at the histogram edges
                (a lower bound of the true D); D plus the largest cell mass is an
                upper bound.  The p-value is the Dvoretzky-Kiefer-Wolfowitz bound
                2 exp(-2 N D^2), valid for every N, and the critical value at
                level a is sqrt(ln(2 / a) / (2 N)).

Each statistical check also states its power: the smallest deviation it detects
with probability 0.999 at the Bonferroni level alpha / m (a lower bound of its
Holm level), so a PASS says how large a bug could still hide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from initcheck.check_result import POWER, CheckResult
from initcheck.laws import Law, standard_normal_quantile
from initcheck.structure_checks import check_copies, check_draws, check_positions
from initcheck.summary import Summary

__all__ = ["POWER", "CheckResult", "evaluate"]

#: The spike checks test each cell or value against max(its law mass, ATOM_FLOOR):
#: an atom holding less than one value in a million cannot matter to training,
#: and float64 CDF differences cannot resolve smaller law masses near the
#: centre of a law anyway (PyTorch's bfloat16 samplers return an exact -0 about
#: twice in 10^7 draws, where the rounded law's mass is 1e-39).
ATOM_FLOOR = 1e-6


def two_sided_pvalue(z: float) -> float:
    """Two-sided normal p-value; a statistic that is not a number fails."""
    if not math.isfinite(z):
        return 0.0
    return float(math.erfc(abs(z) / math.sqrt(2.0)))


def z_critical(level: float) -> float:
    """z with P(|Z| > z) = level."""
    return -standard_normal_quantile(level / 2.0)


def ks_critical(level: float, n: int) -> float:
    """DKW critical value: P(D > c) <= level for c = sqrt(ln(2 / level) / (2 n))."""
    return math.sqrt(math.log(2.0 / level) / (2.0 * n))


def check_finite(summary: Summary) -> CheckResult:
    parts = [
        f"{count:,} {name}"
        for count, name in ((summary.nan, "NaN"), (summary.posinf, "+Inf"), (summary.neginf, "-Inf"))
        if count
    ]
    passed = not parts
    detail = "all values finite" if passed else f"{' and '.join(parts)} among {summary.total:,} values"
    return CheckResult("finite", float(summary.nonfinite), detail, passed=passed)


def ulp(dtype: np.dtype, value: float) -> float:
    """One unit in the last place of ``value`` in the sample dtype (0 if not a float)."""
    try:
        spacing = float(np.spacing(dtype.type(abs(value))))
    except (TypeError, ValueError):
        return 0.0
    return spacing if math.isfinite(spacing) and dtype.kind in "fV" else 0.0


def check_support(law: Law, summary: Summary, dtype: np.dtype) -> CheckResult | None:
    """Values outside a bounded law's support, beyond one ulp of the sample dtype."""
    if not law.bounded or summary.count == 0:
        return None
    low, high = law.support
    tolerance_low, tolerance_high = ulp(dtype, low), ulp(dtype, high)
    below = summary.minimum < low - tolerance_low
    above = summary.maximum > high + tolerance_high
    problems = []
    if below:
        problems.append(f"min {summary.minimum:.6g} below the lower bound {low:.6g}")
    if above:
        problems.append(f"max {summary.maximum:.6g} above the upper bound {high:.6g}")
    excess = max(low - summary.minimum, summary.maximum - high, 0.0)
    detail = "; ".join(problems) if problems else f"within [{low:.6g}, {high:.6g}]"
    return CheckResult("support", excess, detail, passed=not problems)


def check_constant(law: Law, summary: Summary, dtype: np.dtype | None = None) -> CheckResult:
    """A degenerate law: every finite value must equal it exactly, as the
    sample dtype holds it (0.3 in float32 is 0.30000001192...)."""
    value = law.mean
    if summary.dtype16 is not None:
        from initcheck.lowp import round_to

        value = float(round_to(summary.dtype16, value))
    elif dtype is not None and np.dtype(dtype).kind == "f":
        value = float(np.dtype(dtype).type(value))
    equal = summary.count > 0 and summary.minimum == summary.maximum == value
    detail = f"all equal {law.mean:g}" if equal else (
        f"values in [{summary.minimum:.6g}, {summary.maximum:.6g}], expected all {law.mean:g}"
    )
    spread = max(abs(summary.minimum - value), abs(summary.maximum - value)) if summary.count else math.nan
    return CheckResult("constant", spread, detail, passed=equal)


def check_mean(law: Law, summary: Summary) -> CheckResult:
    n = summary.count
    shift = (summary.mean - law.mean) / law.std  # in sigmas of the law
    z = shift * math.sqrt(n)
    direction = "above" if shift > 0 else "below"
    detail = f"mean {abs(shift):.3g}σ {direction} the law's: z = {z:.1f}"
    return CheckResult("mean", z, detail, pvalue=two_sided_pvalue(z))


def check_variance(law: Law, summary: Summary) -> CheckResult:
    n = summary.count
    sigma2 = law.variance
    z = (summary.variance - sigma2) / math.sqrt((law.fourth_moment - sigma2**2) / n)
    relative = summary.std / law.std - 1.0
    direction = "above" if relative > 0 else "below"
    detail = f"std {abs(relative) * 100:.3g}% {direction} the law's: z = {z:.1f}"
    return CheckResult("variance", z, detail, pvalue=two_sided_pvalue(z))


#: (law, grid) -> (edges, law CDF at the edges), most recent last: the rows of
#: one command share a few laws (a model's 200 parameters, a handful), and a
#: normal CDF over 2^16 edges costs milliseconds.
_EDGE_CDFS: dict = {}
_EDGE_CDFS_KEPT = 32


def law_cdf_at_edges(law: Law, grid) -> tuple[np.ndarray, np.ndarray]:
    """(edges of ``grid``, ``law.cdf`` at them), read-only, cached per law and grid."""
    try:
        key = (law, grid.lo, grid.hi, grid.cells, grid.cum.tobytes())
        hash(key)
    except TypeError:  # a law that cannot be hashed: computed each time
        key = None
    found = _EDGE_CDFS.get(key) if key is not None else None
    if found is None:
        edges = grid.edges()
        found = (edges, np.asarray(law.cdf(edges), dtype=np.float64))
        for array in found:
            array.setflags(write=False)
        if key is not None:
            _EDGE_CDFS[key] = found
            while len(_EDGE_CDFS) > _EDGE_CDFS_KEPT:
                del _EDGE_CDFS[next(iter(_EDGE_CDFS))]
    return found


@dataclass(frozen=True)
class KSDistance:
    """KS distance bracketed from a histogram: lower <= D <= upper."""

    lower: float
    upper: float
    where: float  # the edge of the largest gap


def ks_distance(law: Law, summary: Summary) -> KSDistance:
    n = summary.count
    edges, law_cdf = law_cdf_at_edges(law, summary.grid)
    sample_cdf = summary.counts_below_edges() / n
    gaps = np.abs(sample_cdf - law_cdf)
    k = int(np.argmax(gaps))
    lower = float(gaps[k])
    masses = np.diff(law_cdf)
    for atom in law.atoms:  # an atom's own mass jumps in both CDFs at once: not a gap the grid hides
        cell = int(np.searchsorted(edges, atom, side="right")) - 1
        if 0 <= cell < len(masses):
            masses[cell] -= float(law.cdf(atom) - law.cdf(np.nextafter(atom, -np.inf)))
    widest_cell = float(np.max(masses))
    outer = max(sample_cdf[0], law_cdf[0], 1.0 - sample_cdf[-1], 1.0 - law_cdf[-1])
    return KSDistance(lower, max(lower + widest_cell, outer), float(edges[k]))


def check_ks(law: Law, summary: Summary) -> CheckResult:
    n = summary.count
    d = ks_distance(law, summary)
    pvalue = min(1.0, 2.0 * math.exp(-2.0 * n * d.lower**2))
    detail = f"KS D = {d.lower:.3g}, largest gap at x = {d.where:.4g}"
    return CheckResult("ks", d.lower, detail, pvalue=pvalue, resolution=d.upper - d.lower)


def binomial_upper_tail_bound(count, n: int, p):
    """Chernoff bound on P(Binomial(n, p) >= count), vectorized: exp(-n KL(q || p))
    with q = count / n when q > p, else 1.  Never below the true tail, so a
    p-value from it is valid (conservative by at most a factor ~ sqrt(n))."""
    q = np.asarray(count, dtype=np.float64) / n
    p = np.asarray(p, dtype=np.float64)
    q, p = np.broadcast_arrays(q, p)
    bound = np.ones(q.shape)
    above = np.flatnonzero(q > p)  # elsewhere the bound is 1: only these need the logarithms
    qa, pa = q.flat[above], p.flat[above]
    with np.errstate(divide="ignore", invalid="ignore"):
        first = qa * np.log(qa / pa)  # qa > pa >= 0, so qa > 0
        second = np.where(qa < 1, (1 - qa) * np.log((1 - qa) / (1 - pa)), 0.0)
        kl = first + second
    bound.flat[above] = np.exp(-n * np.where(np.isfinite(kl), kl, np.inf))
    return np.where(p <= 0, np.where(q > 0, 0.0, 1.0), bound)


def _cell_masses(law: Law, summary: Summary, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """(law mass, edges) of every histogram cell, open end cells included.

    A bounded law puts no mass at or beyond its bounds, yet a correct sampler in
    floating point can round onto the bound; each end cell of a bounded law is
    allowed the law's mass within one ulp of the bound."""
    edges, cdf = law_cdf_at_edges(law, summary.grid)
    inner = np.diff(cdf)
    below, above = cdf[0], 1.0 - cdf[-1]
    if law.bounded:
        low, high = law.support
        below = max(below, float(law.cdf(low + ulp(dtype, low)) - law.cdf(low)))
        above = max(above, float(law.cdf(high) - law.cdf(high - ulp(dtype, high))))
    return np.concatenate([[below], inner, [above]]), edges


def _interval(low: float, high: float) -> str:
    """``in [low, high)`` with enough digits that the two ends differ."""
    for digits in (4, 6, 9, 17):
        a, b = f"{low:.{digits}g}", f"{high:.{digits}g}"
        if a != b:
            return f"in [{a}, {b})"
    return f"at {low:.17g}"


def check_spikes(law: Law, summary: Summary, dtype: np.dtype) -> CheckResult:
    """The fullest cell against its binomial tail: atoms (a zeroed remainder, a
    value stuck at a bound) that moments and KS are too blunt to see.

    Every cell's count is tested against its law mass with a Chernoff bound on
    the binomial tail; the smallest bound times the number of cells (Bonferroni)
    is the p-value.  A fullest cell that its neighbours' excess explains (see
    :func:`_excess_around`) is described as a density above the law's, and an
    open end cell as a tail, rather than as a spike; the statistic and p-value
    are the same either way."""
    n = summary.count
    masses, edges = _cell_masses(law, summary, dtype)
    tails = binomial_upper_tail_bound(summary.hist, n, np.maximum(masses, ATOM_FLOOR))
    k = int(np.argmin(tails))
    pvalue = float(min(1.0, tails[k] * len(masses)))
    share = summary.hist[k] / n
    if k == 0:
        where = f"below {edges[0]:.4g}"
    elif k == len(masses) - 1:
        where = f"at or above {edges[-1]:.4g}"
    else:
        where = _interval(edges[k - 1], edges[k])
    ratio = f"{share / masses[k]:.3g}x its law mass" if masses[k] > 0 else "where the law has no mass"
    around = _excess_around(summary.hist, masses, k, n) if masses[k] > 0 else None
    if k in (0, len(masses) - 1):  # an open end cell: a heavy tail or values past a bound, not one atom
        detail = f"tail {where}: {share:.3g} of the values, {ratio}"
    elif around is None:
        detail = f"spike {where}: {share:.3g} of the values, {ratio}"
    else:
        detail = f"density {share / masses[k]:.3g}x the law's {where} ({around:.3g}x around it: no atom)"
    return CheckResult("spikes", share, detail, pvalue=pvalue, resolution=float(np.median(masses)))


#: Inner cells on each side of the fullest one that tell a spike from a density excess.
NEIGHBOURS = 8


def _excess_around(hist: np.ndarray, masses: np.ndarray, k: int, n: int) -> float | None:
    """r = the count of the NEIGHBOURS inner cells (or 16-bit values) on each side of cell k over
    n times their law mass, when cell k's count is no surprise at r times its
    own mass (Chernoff bound times the number of cells above 10^-3): the
    fullest cell then only shares a smooth excess of density (a law of the
    wrong scale or shape), which is worded as such.  None otherwise: cell k
    stands out from its neighbours, an atom.  Only the wording depends on it."""
    inner = len(masses) - 1
    near = np.r_[max(1, k - NEIGHBOURS):k, k + 1:min(inner, k + 1 + NEIGHBOURS)]
    mass = float(masses[near].sum()) if near.size else 0.0
    if mass <= 0:
        return None
    r = float(hist[near].sum()) / (n * mass)
    if r <= 1.0:
        return None
    expected = min(1.0, max(r * float(masses[k]), ATOM_FLOOR))
    if binomial_upper_tail_bound(hist[k], n, expected) * len(masses) <= 1e-3:
        return None
    return r


def _atom_counts(law, summary: Summary) -> np.ndarray:
    """Counts of the finite values seen, aligned with the rounded law's atoms."""
    from initcheck.lowp import counts_by_value

    values, counts = counts_by_value(summary.patterns, summary.dtype16)
    aligned = np.zeros(len(law.values), dtype=np.int64)
    np.add.at(aligned, np.searchsorted(law.values, values), counts)
    return aligned


def check_ks_atoms(law, summary: Summary) -> CheckResult:
    """Exact KS distance between the empirical CDF and the rounded law's, both
    step functions that jump only at the representable values."""
    n = summary.count
    gaps = np.abs(np.cumsum(_atom_counts(law, summary)) / n - np.cumsum(law.masses))
    k = int(np.argmax(gaps))
    d = float(gaps[k])
    pvalue = min(1.0, 2.0 * math.exp(-2.0 * n * d * d))
    detail = f"KS D = {d:.3g} (exact, against the law rounded to {summary.dtype16}), largest at x = {law.values[k]:.4g}"
    return CheckResult("ks", d, detail, pvalue=pvalue)


def check_spikes_atoms(law, summary: Summary) -> CheckResult:
    """Every representable value's count against its rounded-law mass (a
    fullest value that its neighbours' excess explains is described as a
    density above the law's, as in :func:`check_spikes`)."""
    n = summary.count
    counts = _atom_counts(law, summary)
    tails = binomial_upper_tail_bound(counts, n, np.maximum(law.masses, ATOM_FLOOR))
    k = int(np.argmin(tails))
    pvalue = float(min(1.0, tails[k] * len(tails)))
    share, mass = counts[k] / n, law.masses[k]
    ratio = f"{share / mass:.3g}x its law mass {mass:.3g}" if mass > 0 else "where the law has no mass"
    around = _excess_around(counts, law.masses, k, n) if mass > 0 else None
    if around is None:
        detail = f"atom at {law.values[k]:.6g}: {share:.3g} of the values, {ratio}"
    else:
        detail = f"density {share / mass:.3g}x the law's at {law.values[k]:.6g} ({around:.3g}x around it: no atom)"
    return CheckResult("spikes", share, detail, pvalue=pvalue, resolution=float(law.masses.max()))


#: The lag-1 pairs of Summary.pairs, in words.
PAIR_KINDS = ("neighbouring values", "neighbouring rows", "consecutive draws")


def check_independence(summary: Summary) -> CheckResult | None:
    """Lag-1 correlation within draws (neighbouring values, neighbouring rows) and
    between consecutive draws: z = r sqrt(pairs) is standard normal for
    independent draws.  Catches identical rows and a seed that is ignored.  The
    p-value is the smallest of the two-sided ones times their number."""
    found = [(summary.lag_correlation(kind), name) for kind, name in enumerate(PAIR_KINDS)]
    found = [((r, m), name) for (r, m), name in found if m > 0]
    if not found:
        return None
    scored = [(r * math.sqrt(m), r, name) for (r, m), name in found]
    z, r, name = max(scored, key=lambda item: abs(item[0]))
    pvalue = min(1.0, two_sided_pvalue(z) * len(scored))
    detail = f"{name} correlate: r = {r:.3g} (z = {z:.1f})"
    return CheckResult("independence", z, detail, pvalue=pvalue)


def evaluate(law: Law, summary: Summary, dtype: np.dtype) -> list[CheckResult]:
    """Every check of one row, with p-values but no verdict yet (see :mod:`initcheck.policy`).

    A deterministic law (:attr:`Law.deterministic`: eye, dirac) gets ``finite``
    only: its values are a fixed tensor, compared per draw by the row's draw
    checks (:mod:`initcheck.draw_checks`).  The checks a law declares
    :attr:`~initcheck.laws.Law.untested` are left out."""
    checks = [check_finite(summary)]
    if law.deterministic:
        return checks
    if law.variance == 0.0:
        return checks + [check_constant(law, summary, np.dtype(dtype))]
    support = check_support(law, summary, np.dtype(dtype))
    if support is not None:
        checks.append(support)
    if summary.count < 2:
        checks.append(CheckResult("count", float(summary.count), "fewer than 2 finite values", passed=False))
        return checks
    untested = law.untested
    if summary.patterns is not None:  # 16-bit: exact, against the rounded law
        from initcheck.lowp import as_rounded

        rounded = as_rounded(law, summary.dtype16)
        found = {
            "mean": lambda: check_mean(rounded, summary),
            "variance": lambda: check_variance(rounded, summary),
            "ks": lambda: check_ks_atoms(rounded, summary),
            "spikes": lambda: check_spikes_atoms(rounded, summary),
        }
    else:
        found = {
            "mean": lambda: check_mean(law, summary),
            "variance": lambda: check_variance(law, summary),
            "ks": lambda: check_ks(law, summary),
            "spikes": lambda: check_spikes(law, summary, np.dtype(dtype)),
        }
    found.update(independence=lambda: check_independence(summary), draws=lambda: check_draws(summary),
                 positions=lambda: check_positions(summary), copies=lambda: check_copies(summary))
    for name, check in found.items():
        if name not in untested:
            result = check()
            if result is not None:
                checks.append(result)
    return checks


#: Statistical checks per row (mean, variance, ks, spikes, independence, draws, positions, copies).
CHECKS_PER_ROW = 8


def samples_to_detect(law: Law, std_error: float, level: float) -> int:
    """The N at which the variance check catches a relative std error of
    ``std_error`` with probability POWER at ``level`` (inverts the power statement
    of :func:`initcheck.policy.annotate`)."""
    relative_variance = (1.0 + std_error) ** 2 - 1.0
    spread = math.sqrt(law.fourth_moment / law.variance**2 - 1.0)
    z = z_critical(level) + standard_normal_quantile(POWER)
    return math.ceil((z * spread / relative_variance) ** 2)
