"""Checks of a row's structure (:mod:`initcheck.structure`): where values sit,
whether draws are independent, and which values repeat.

Each is a pure function of a :class:`~initcheck.summary.Summary` returning a
:class:`~initcheck.checks.CheckResult` with a p-value (None when the row has
nothing to test), and a ``*_power`` function giving its power statement at a
level; :mod:`initcheck.policy` decides.  With d = x - ref (the law's mean):

``positions``
    For every axis of the draw (and the sequence of draws), positions merged
    into contiguous groups of at least :data:`MIN_GROUP` values; group g holds
    m_g values with sums s1_g, s2_g.  Pooled over the axis: mu = sum s1 / M,
    v = sum s2 / M - mu^2, and V = E d^4 - (E d^2)^2 from the row's power sums.
    Means:     T1 = sum_g (s1_g - m_g mu)^2 / (m_g v)          ~ chi2(G - 1)
    Variances: T2 = sum_g m_g (s2_g / m_g - sum s2 / M)^2 / V  ~ chi2(G - 1)
    (upper tails: positions that follow other laws spread the groups apart).
    The p-value is the smallest over axes and both statistics times their
    number.  At least MIN_GROUP values a group keep each term's excess
    kurtosis below 12 / 4096, so the chi-square tails hold far out.

``draws``
    Per element e of the first P values of every draw, S_e = sum over the D
    draws of d (a report keeps sum S_e and sum S_e^2).  With independent draws Var S_e = D sigma^2, so
    T = sum_e (S_e - D m)^2 / (D v) ~ c chi2((P - 1) / c), with m, v the
    mean and variance of those P D values and c = 1 + kappa / (2 D), kappa the
    row's excess kurtosis (the moment-matched scale of a sum of P squares).
    Two-sided: correlated or repeated draws raise T by 1 + (D - 1) rho (rho
    the mean correlation between two draws), cancelling ones lower it.

``copies``
    Of the R1 pairs of selected grams whose first values are equal, the law
    itself explains them all: the chance that two values coincide is
    q = 2 R1 / (r N^2) (r the selection rate, N grams), bounded above by
    q+ from R1+ = R1 + 6.4 sqrt(R1) + 21 (a Poisson upper bound far in the
    tail).  Grams of k independent values coincide with chance q^k, so the
    repeats of whole grams by chance are at most Poisson(lambda0),
    lambda0 = R1+ (q+)^(k-1) + S^2 / 2^65 (S selected grams, 64-bit keys);
    p = P(Poisson(lambda0) >= R) for the R repeats seen.  A copied run of k
    values or more (exact, or negated) is selected in both its places with
    chance r, so copies covering a fraction f of the values add about r f N
    repeats: the power statement solves for f.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from scipy import special

from initcheck.check_result import POWER, CheckResult
from initcheck.structure import AxisSums, Grams
from initcheck.summary import Summary

#: Values a group of positions holds at least (adjacent positions are merged).
MIN_GROUP = 4096


def _moments(summary: Summary) -> tuple[float, float]:
    """(E d^2, Var d^2) of the row's values about ref, from its power sums."""
    n = summary.count
    second, fourth = summary.sums[1] / n, summary.sums[3] / n
    return second, max(fourth - second * second, 1e-300)


def merged(axis: AxisSums) -> AxisSums:
    """The axis with adjacent groups merged until each holds at least
    MIN_GROUP values (as many groups as that allows, of nearly equal counts)."""
    total = float(axis.count.sum())
    groups = int(min(len(axis.count), total // MIN_GROUP))
    if groups == len(axis.count) or groups < 1:
        return axis
    before = np.cumsum(axis.count) - axis.count
    ids = np.minimum((before * groups / total).astype(np.int64), groups - 1)
    starts = np.flatnonzero(np.diff(np.concatenate([[-1], ids])))
    edges = np.append(axis.edges[starts], axis.edges[-1])
    return AxisSums(axis.name, axis.size, edges, np.add.reduceat(axis.count, starts),
                    np.add.reduceat(axis.s1, starts), np.add.reduceat(axis.s2, starts))


def _axis_statistics(axis: AxisSums, summary: Summary) -> list[tuple[str, float, int]]:
    """[(kind, T, degrees of freedom)] for the means and the variances of one axis."""
    m, s1, s2 = axis.count, axis.s1, axis.s2
    total = m.sum()
    mu = s1.sum() / total
    v = s2.sum() / total - mu * mu
    _, var_d2 = _moments(summary)
    df = len(m) - 1
    if v <= 0:
        return []
    t_mean = float(np.sum((s1 - m * mu) ** 2 / (m * v)))
    t_var = float(np.sum(m * (s2 / m - s2.sum() / total) ** 2) / var_d2)
    return [("mean", t_mean, df), ("std", t_var, df)]


def _testable_axes(summary: Summary) -> list[AxisSums]:
    structure = summary.structure
    if structure is None or summary.count < 2:
        return []
    return [a for a in (merged(axis) for axis in structure.axes) if len(a.count) >= 2]


def _positions_tests(summary: Summary) -> list[tuple[AxisSums, str, float, int, float]]:
    """[(axis, kind, T, degrees of freedom, p-value)] of every axis, worst first."""
    tests = [(axis, kind, t, df, float(special.chdtrc(df, t))) for axis in _testable_axes(summary)
             for kind, t, df in _axis_statistics(axis, summary)]
    return sorted(tests, key=lambda test: test[4])


def check_positions(summary: Summary) -> CheckResult | None:
    """Per-axis means and variances tested for equality (module docstring)."""
    tests = _positions_tests(summary)
    if not tests:
        return None
    axis, kind, t, df, worst = tests[0]
    pvalue = min(1.0, worst * len(tests))
    detail = f"{_describe_positions(axis, kind, summary)} ({kind} spread {t / df:.3g}x chance over {df + 1} groups)"
    return CheckResult("positions", t / df, detail, pvalue=pvalue)


def _label(axis: AxisSums, first: int, last: int) -> str:
    """Positions of groups first..last (inclusive) in words."""
    lo, hi = int(axis.edges[first]), int(axis.edges[last + 1]) - 1
    plural = {"rows": ("row", "rows"), "columns": ("column", "columns"), "draws": ("draw", "draws"),
              "positions": ("position", "positions")}.get(axis.name)
    if plural is None:
        return f"{axis.name} index {lo}" if lo == hi else f"{axis.name} indices {lo}-{hi}"
    return f"{plural[0]} {lo}" if lo == hi else f"{plural[1]} {lo}-{hi}"


#: A split of a block of positions in two is kept when its chi-square (1
#: degree of freedom) exceeds this (z about 6.3: never by chance in a report).
SPLIT_SCORE = 40.0
#: Blocks a description names at most.
MAX_BLOCKS = 4


def _blocks(m: np.ndarray, a: np.ndarray, unit: float) -> list[tuple[int, int]]:
    """Contiguous blocks [lo, hi) of groups, by binary segmentation: the
    group quantity ``a`` (a sum over each group's m values) is split where the
    two sides' means differ most (score L R / (L + R) (mean_L - mean_R)^2 /
    unit, chi-square 1 under equal means), while a split scores above
    SPLIT_SCORE, into at most MAX_BLOCKS blocks."""
    blocks = [(0, len(m))]
    while len(blocks) < MAX_BLOCKS:
        best = None
        for index, (lo, hi) in enumerate(blocks):
            if hi - lo < 2:
                continue
            cm, ca = np.cumsum(m[lo:hi]), np.cumsum(a[lo:hi])
            left, right = cm[:-1], cm[-1] - cm[:-1]
            gap = ca[:-1] / left - (ca[-1] - ca[:-1]) / right
            score = left * right / cm[-1] * gap * gap / unit
            k = int(np.argmax(score))
            if score[k] > SPLIT_SCORE and (best is None or score[k] > best[0]):
                best = (float(score[k]), index, lo + k + 1)
        if best is None:
            break
        _, index, cut = best
        lo, hi = blocks.pop(index)
        blocks[index:index] = [(lo, cut), (cut, hi)]
    return blocks


def _describe_positions(axis: AxisSums, kind: str, summary: Summary) -> str:
    """Where the positions differ: the blocks of contiguous positions that
    explain most of the spread ("rows 0-255 std 7.7% above rows 256-767", or
    with more blocks each against the whole axis), else the most deviant
    group ("row 17 std 30% above the rest of the rows")."""
    m, s1, s2 = axis.count, axis.s1, axis.s2
    sigma = math.sqrt(max(summary.central_moment(2), 1e-300))
    a = s1 if kind == "mean" else s2
    total_m, total_1, total_2 = m.sum(), s1.sum(), s2.sum()
    pooled_variance = total_2 / total_m - (total_1 / total_m) ** 2
    unit = pooled_variance if kind == "mean" else _moments(summary)[1]

    def value(count, b1, b2):  # a block's mean (in sigmas) or std
        mean = b1 / count
        return mean / sigma if kind == "mean" else math.sqrt(max(b2 / count - mean * mean, 0.0))

    def compare(x, y):
        if kind == "mean":
            return f"mean {abs(x - y):.3g}σ {'above' if x > y else 'below'}"
        if y == 0:  # a block of constants (zeroed rows, say)
            return f"std {x:.3g}, against std 0 in"
        return f"std {abs(x / y - 1) * 100:.3g}% {'above' if x > y else 'below'}"

    spread = float(np.sum((a - m * a.sum() / total_m) ** 2 / m)) / unit
    blocks = _blocks(m, a, unit)
    sums = [(m[lo:hi].sum(), s1[lo:hi].sum(), s2[lo:hi].sum()) for lo, hi in blocks]
    explained = sum((bm * (ba / bm - a.sum() / total_m) ** 2) for bm, ba in
                    ((bm, b1 if kind == "mean" else b2) for bm, b1, b2 in sums)) / unit
    if len(blocks) >= 2 and explained >= 0.5 * spread:
        if len(blocks) == 2:
            (lo1, hi1), (lo2, hi2) = blocks
            return (f"{_label(axis, lo1, hi1 - 1)} {compare(value(*sums[0]), value(*sums[1]))} "
                    f"{_label(axis, lo2, hi2 - 1)}")
        whole = value(total_m, total_1, total_2)
        parts = []
        for (lo, hi), block in zip(blocks, sums):
            x = value(*block)
            change = (f"{x - whole:+.3g}σ" if kind == "mean" else
                      f"{(x / whole - 1) * 100:+.3g}%" if whole > 0 else f"std {x:.3g}")
            parts.append(f"{_label(axis, lo, hi - 1)} {change}")
        what = "mean" if kind == "mean" else "std"
        return f"{what} by block of the {axis.name}, against the whole: " + ", ".join(parts)
    individual = (a - m * a.sum() / total_m) ** 2 / m
    k = int(np.argmax(individual))
    x = value(m[k], s1[k], s2[k])
    y = value(total_m - m[k], total_1 - s1[k], total_2 - s2[k])
    return f"{_label(axis, k, k)} {compare(x, y)} the rest of the {axis.name}"


def positions_power(summary: Summary, level: float, check_level: float) -> tuple[float, str, float] | None:
    """The relative std difference between two halves of the positions of an
    axis detected with probability POWER at ``level``, for the least powerful
    axis (the noncentrality is lambda = M delta^2 / (kurtosis - 1)), and the
    critical spread ratio T / df of the worst test at ``check_level``."""
    tests = _positions_tests(summary)
    if not tests:
        return None
    axes = list({id(test[0]): test[0] for test in tests}.values())
    df_worst = tests[0][3]
    threshold = float(special.chdtri(df_worst, check_level / len(tests))) / df_worst
    second, var_d2 = _moments(summary)
    kurtosis_minus_one = var_d2 / max(second**2, 1e-300)
    worst, name = 0.0, ""
    for axis in axes:
        df = len(axis.count) - 1
        lam = _noncentrality(df, level / len(tests))
        delta = math.sqrt(lam * kurtosis_minus_one / axis.count.sum())
        if delta > worst:
            worst, name = delta, axis.name
    return worst, f"two halves of the {name} with std ≥ {worst * 100:.2g}% apart", threshold


def _noncentrality(df: int, level: float) -> float:
    """The lambda at which a noncentral chi2(df, lambda) exceeds the level's
    critical value with probability POWER."""
    critical = special.chdtri(df, level)
    return float(special.chndtrinc(critical, df, 1.0 - POWER))


def _draws_test(summary: Summary) -> tuple[float, float, float, int, int] | None:
    """(T, c, nu, D, P) of the draws check, or None when it cannot run."""
    structure = summary.structure
    if structure is None or structure.draws is None or summary.count < 2:
        return None
    sums = structure.draws
    draws, p = sums.draws, sums.positions
    if draws < 2 or p < 2:
        return None
    values = draws * p
    mean = sums.total / values
    v = sums.s2 / values - mean * mean
    if v <= 0:
        return None
    # sum_e (S_e - D m)^2 = sum_e S_e^2 - P (D m)^2
    t = max(sums.squares - p * (draws * mean) ** 2, 0.0) / (draws * v)
    excess = summary.central_moment(4) / summary.central_moment(2) ** 2 - 3.0
    c = max(1.0 + excess / (2.0 * draws), 0.05)
    return t, c, (p - 1) / c, draws, p


def check_draws(summary: Summary) -> CheckResult | None:
    """Independence of all draws: per-element sums over every draw (module docstring)."""
    found = _draws_test(summary)
    if found is None:
        return None
    t, c, nu, draws, p = found
    scaled = t / c
    pvalue = min(1.0, 2.0 * min(float(special.chdtrc(nu, scaled)), float(special.chdtr(nu, scaled))))
    ratio = t / (p - 1)
    detail = (f"the sums over {draws:,} draws of each of the first {p:,} positions vary "
              f"{ratio:.3g}x as much as independent draws allow")
    if pvalue < 1e-3:  # say what it means only where chance does not explain it
        what = ("draws share a component (repeated or correlated draws)" if ratio > 1
                else "draws cancel each other (anti-correlated draws)")
        detail = f"{what}: {detail}"
    return CheckResult("draws", ratio, detail, pvalue=pvalue)


def draws_power(summary: Summary, level: float, check_level: float) -> tuple[float, str, float] | None:
    """The mean correlation between two draws detected with probability POWER
    at ``level``, and the upper critical ratio at ``check_level``."""
    found = _draws_test(summary)
    if found is None:
        return None
    _, c, nu, draws, p = found
    threshold = c * float(special.chdtri(nu, check_level / 2.0)) / (p - 1)
    critical = special.chdtri(nu, level / 2.0)
    low = special.chdtri(nu, POWER)
    rho = (critical / low - 1.0) / (draws - 1)
    return rho, f"a mean correlation between draws ≥ {rho:.2g}", threshold


def _copies_rates(grams: Grams) -> tuple[float, float]:
    """(lambda0, r N): the chance repeats' Poisson mean bound, and the repeats
    per unit of copied fraction."""
    r, n = grams.rate, max(grams.grams, 1)
    r1_up = grams.single_repeats + 6.4 * math.sqrt(grams.single_repeats) + 21.0
    q_up = min(1.0, 2.0 * r1_up / (r * n * n))
    lambda0 = r1_up * q_up ** (grams.k - 1) + grams.selected**2 / 2.0**65
    return lambda0, r * n


def check_copies(summary: Summary) -> CheckResult | None:
    """Repeated runs of values, exact or negated (module docstring)."""
    structure = summary.structure
    grams = structure.grams if structure is not None else None
    if grams is None or grams.selected == 0:
        return None
    lambda0, _ = _copies_rates(grams)
    repeats = grams.repeats
    pvalue = 1.0 if repeats == 0 else float(special.gammainc(repeats, lambda0))
    if repeats == 0:
        detail = f"no repeated run of {grams.k} values among {grams.selected:,} selected"
    else:
        detail = (f"{repeats:,} repeated runs of {grams.k} values among {grams.selected:,} selected "
                  f"(chance explains {lambda0:.2g}): {describe_copies(grams, structure.shape)}")
    return CheckResult("copies", float(repeats), detail, pvalue=pvalue)


def _critical_repeats(lambda0: float, level: float) -> int:
    """The fewest repeats whose chance P(Poisson(lambda0) >= c) is at most ``level``
    (P(X >= c) = gammainc(c, lambda0)): from the Poisson quantile, then stepped
    to the exact boundary, so a large lambda0 costs no long search."""
    from scipy import stats

    guess = stats.poisson.isf(level, lambda0)
    critical = max(1, int(guess) + 1) if math.isfinite(guess) else 1
    while critical > 1 and special.gammainc(critical - 1, lambda0) <= level:
        critical -= 1
    while special.gammainc(critical, lambda0) > level:
        critical += 1
    return critical


def copies_power(summary: Summary, level: float, check_level: float) -> tuple[float, str, float] | None:
    """The smallest copied fraction of the values detected with probability
    POWER at ``level``, and the critical number of repeats at ``check_level``."""
    structure = summary.structure
    grams = structure.grams if structure is not None else None
    if grams is None or grams.selected == 0:
        return None
    lambda0, per_fraction = _copies_rates(grams)
    critical = _critical_repeats(lambda0, level)
    needed = float(special.gammaincinv(critical, POWER))
    fraction = min(1.0, max(needed - lambda0, 0.0) / per_fraction)
    text = f"copies (exact or negated runs of ≥ {grams.k} values) of ≥ {fraction:.2g} of the values"
    return fraction, text, float(_critical_repeats(lambda0, check_level))


def describe_copies(grams: Grams, shape: tuple) -> str:
    """What repeated, from the example pairs: the commonest relation between
    the two places, with how many of the examples show it."""
    if len(grams.examples) == 0:
        return "repeats beyond the examples kept"
    n = max(grams.draw_size, 1)
    row = math.prod(shape[1:]) if len(shape) >= 2 else 0
    relations = Counter()
    first_seen, apart = {}, {}
    for earlier, later in grams.examples.tolist():
        negated = (earlier & 1) != (later & 1)
        a, b = earlier >> 1, later >> 1
        (da, ia), (db, ib) = divmod(a, n), divmod(b, n)
        if da == db:
            offset = ib - ia
            relation = ("rows", 0) if row and offset % row == 0 else ("offset", offset)
            step = offset // row if row and offset % row == 0 else 0
        elif ia == ib:
            relation, step = ("draw", 0), db - da
        else:
            relation, step = ("shift", (db - da, ib - ia)), 0
        key = (relation, negated)
        relations[key] += 1
        first_seen.setdefault(key, (da, ia, db, ib))
        apart[key] = math.gcd(apart.get(key, 0), step)
    (relation, negated), count = relations.most_common(1)[0]
    da, ia, db, ib = first_seen[(relation, negated)]
    period = apart[(relation, negated)]
    copy = "the negation of" if negated else "a copy of"
    kind, value = relation
    if kind == "rows":
        text = f"row {ib // row} is {copy} row {ia // row}" + (
            f" (rows repeat with a period of {period})" if period > 0 else "")
    elif kind == "offset" and row and ia // row == ib // row:
        text = (f"column {ib % row} is {copy} column {ia % row} within a row "
                f"({value} apart, e.g. row {ia // row})")
    elif kind == "offset":
        text = f"position {ib} is {copy} position {ia} within a draw ({value} apart)"
    elif kind == "draw":
        text = f"draw {db} is {copy} draw {da}" + (
            f" (draws repeat with a period of {period})" if period > 1 else "")
    else:
        text = f"draw {db} is {copy} draw {da} shifted by {ia - ib:+d} values (a stream reused at an offset)"
    share = count / len(grams.examples)
    return text + (f"; {share:.0%} of the examples" if share < 1 else "")
