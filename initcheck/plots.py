"""One PNG per checked row (``--plot DIR``): the sample against the law.

Each picture has two panels side by side:

1. **Histogram against the law's density.**  The row's summary keeps no sample,
   only counts per cell (65536 cells of nearly equal law mass for float rows,
   one count per representable value for 16-bit rows), so the panel sums runs
   of consecutive cells into about :data:`DISPLAY_BINS` display bins: about
   three quarters of the boundaries split the plotted law mass into equal
   parts (equal groups of the equal-mass cells), the rest split the plotted x
   range into equal widths, so the tails get bins too.  A bin [a, b) holding c
   of the N finite values is drawn at height ``c / (N (b - a))``; over it go
   the law's expectation per bin, ``p / (b - a)`` with ``p = F(b) - F(a)``
   the bin's law mass (solid), and the law's density ``f(x) ~ (F(x + h) -
   F(x)) / h``, a finite difference of the CDF on a fine grid (dashed).  For a
   16-bit row each representable value's cell is the interval that rounds to
   it, so the same heights compare the sample with the law rounded to the
   dtype; each bound atom of a bounded law gets a bin of its own and its share
   is printed in the legend (PyTorch's bf16 ``uniform_`` moves mass between
   them).  Below the histogram a strip shows each bin's standardized residual
   ``(c - N p) / sqrt(N p)``: about +-1 of noise when the sampler is right, a
   pattern (a dip in the centre and lifted shoulders for a std too large, a
   bar for a spike) when it is not.  Values beyond the histogram grid (its
   open end cells) are counted in the legend and the extreme one is marked.

2. **ECDF minus the law's CDF**, ``D(x) = F_N(x) - F(x)``, at the cell edges of
   the float histogram (``F_N`` = share of the values below the edge) or at the
   representable values of a 16-bit dtype (both sides cumulative up to and
   including the value, against the law rounded to the dtype).  The
   Kolmogorov-Smirnov statistic is ``max |D(x)|``; the shaded band is +- the KS
   check's critical distance (``result.check("ks").threshold``, at the check's
   Holm level), so the check fails exactly when the curve leaves the band.  The
   point of the largest ``|D|`` is marked.

The title names the row and shows its verdict in colour (PASS green, WARN
yellow, FAIL red) with the reason underneath.  A constant law gets a bar chart
of the values seen and the constant check's result instead.

matplotlib is imported only when pictures are drawn (``pip install
'initcheck[plot]'``); pictures are drawn on bare :class:`matplotlib.figure.Figure`
objects with the Agg backend, never registered with pyplot, so nothing
accumulates over many rows.
"""

from __future__ import annotations

import importlib
import math
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from initcheck.errors import InputError

if TYPE_CHECKING:
    from initcheck.laws import Law
    from initcheck.results import RowResult

#: About how many bins the histogram panel shows.
DISPLAY_BINS = 200
#: Share of the display bins that split the law mass equally (the rest split x equally).
EQUAL_MASS_SHARE = 0.75
#: Points of the finite-difference density curve.
DENSITY_POINTS = 2001
#: Half-width, in the law's std, of the plotted range of an unbounded law (widened to the sample's extremes).
PLOT_HALF_WIDTH = 5.0
#: Longest file-name slug.
SLUG_LENGTH = 80

VERDICT_COLORS = {"PASS": "#2e7d32", "WARN": "#c99700", "FAIL": "#c62828"}
SAMPLE_COLOR = "#1f5fa8"
LAW_COLOR = "#d35400"
FIGSIZE = (11.0, 4.5)
DPI = 110


def require_matplotlib() -> None:
    """Raise :class:`InputError` when matplotlib cannot be imported."""
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'initcheck[plot]'") from None


def slug(text: str) -> str:
    """A file-name-safe short form: lowercase letters, digits and '-' only."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(out) > SLUG_LENGTH:  # cut between words, never inside one
        cut = out[: SLUG_LENGTH + 1]
        out = cut.rsplit("-", 1)[0] if "-" in cut else out[:SLUG_LENGTH]
    return out.rstrip("-") or "row"


def plot_name(index: int, result: RowResult) -> str:
    """``NN-slug.png`` for the row at 1-based position ``index``."""
    return f"{index:02d}-{slug(result.key)}.png"


def plottable(result: RowResult) -> bool:
    """Whether the row has something to draw: it ran and kept at least one finite value."""
    return (
        result.verdict != "SKIP"
        and result.summary is not None
        and result.law is not None
        and result.summary.count > 0
    )


def write_plots(results: list[RowResult], directory: str | Path, failures_only: bool = False) -> list[Path]:
    """Draw one PNG per plottable row of ``results`` into ``directory`` (created).

    Rows without a summary, SKIP rows and rows with no finite value get no file;
    with ``failures_only`` only FAIL and WARN rows get one.  The file of the row
    at 1-based position i in ``results`` is ``f"{i:02d}-{slug(row.key)}.png"``.
    Returns the paths written, in order."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for index, result in enumerate(results, start=1):
        if not plottable(result):
            continue
        if failures_only and result.verdict not in ("FAIL", "WARN"):
            continue
        path = directory / plot_name(index, result)
        plot_row(result, path)
        written.append(path)
    return written


# -- data ---------------------------------------------------------------------------------


@dataclass
class Cells:
    """A row's counts on cells of x: ``edges`` (K + 1, non-decreasing), the
    ``observed`` counts and the law's ``masses`` of the K cells, the counts
    in no cell (below the first edge, at or above the last), and the indices
    of the edges every display bin boundary set must keep (at a bounded
    law's bounds); ``atoms``, ``atom_values``: the cells and values of the
    bound atoms of a 16-bit row."""

    edges: np.ndarray
    observed: np.ndarray
    masses: np.ndarray
    below: int = 0
    above: int = 0
    fixed: tuple[int, ...] = ()
    atoms: tuple[int, ...] = ()
    atom_values: tuple[float, ...] = ()


@dataclass
class Bins:
    """Display bins: ``edges`` (B + 1), observed and expected density per bin,
    standardized residuals, and the values of cells outside the plotted range
    (not counting the cells' own ``below`` and ``above``)."""

    edges: np.ndarray
    density: np.ndarray
    expected: np.ndarray
    residuals: np.ndarray
    outside: int


@dataclass
class Gap:
    """``D(x) = ECDF(x) - CDF(x)`` at the points ``x``; ``steps``: D is a step
    function of x (16-bit rows) rather than known only at the points."""

    x: np.ndarray
    d: np.ndarray
    steps: bool

    @property
    def largest(self) -> int:
        return int(np.argmax(np.abs(self.d)))


def _rounded(result: RowResult):
    from initcheck.lowp import RoundedLaw

    return RoundedLaw(result.law, result.summary.dtype16)


def _atom_counts(rounded, summary) -> np.ndarray:
    """Counts of the finite values seen, aligned with the rounded law's values."""
    from initcheck.lowp import counts_by_value

    values, counts = counts_by_value(summary.patterns, summary.dtype16)
    aligned = np.zeros(len(rounded.values), dtype=np.int64)
    np.add.at(aligned, np.searchsorted(rounded.values, values), counts)
    return aligned


def row_cells(result: RowResult) -> Cells:
    """The row's counts on cells: the histogram grid's cells for a float row,
    for a 16-bit row the representable values, each owning the interval that
    rounds to it (between the midpoints to its neighbours).  A bounded law's
    bounds are kept as bin edges: the grid edges at the bounds for a float row,
    for a 16-bit row both edges of each bound atom's cell, so the atoms a
    sampler may over- or under-fill (PyTorch's bf16 ``uniform_``) get bins of
    their own."""
    summary, law = result.summary, result.law
    if summary.patterns is not None:
        rounded = _rounded(result)
        values = rounded.values
        edges = np.concatenate([[values[0]], 0.5 * (values[:-1] + values[1:]), [values[-1]]])
        atoms = rounded.bound_atoms() or ()
        fixed = tuple(i + k for i in atoms for k in (0, 1))
        return Cells(edges, _atom_counts(rounded, summary), rounded.masses, fixed=fixed, atoms=tuple(atoms),
                     atom_values=tuple(float(values[i]) for i in atoms))
    edges = summary.grid.edges()
    hist = summary.hist
    fixed = ()
    if law.bounded:
        low, high = law.support
        fixed = (int(np.searchsorted(edges, low, side="right")) - 1, int(np.searchsorted(edges, high, side="left")))
    return Cells(edges, hist[1:-1], np.diff(law.cdf(edges)), int(hist[0]), int(hist[-1]), fixed)


def row_gap(result: RowResult) -> Gap:
    """ECDF minus the law's CDF: at the grid edges (float rows) or at the
    representable values against the rounded law (16-bit rows)."""
    summary, law = result.summary, result.law
    n = summary.count
    if summary.patterns is not None:
        rounded = _rounded(result)
        observed = np.cumsum(_atom_counts(rounded, summary)) / n
        return Gap(rounded.values, observed - np.cumsum(rounded.masses), steps=True)
    edges = summary.grid.edges()
    return Gap(edges, summary.counts_below_edges() / n - law.cdf(edges), steps=False)


def display_range(law: Law, summary, gap: Gap | None = None) -> tuple[float, float]:
    """The x range of the panels: a bounded law's support (cut at its grid) with
    a small margin, an unbounded law's mean +- 5 std (cut at a finite bound);
    widened to the sample's extremes and to the largest ECDF gap, but not past
    the law's grid (half the support's width beyond a bounded law's bounds)."""
    grid_low, grid_high = law.grid()
    if law.bounded:
        low, high = max(law.support[0], grid_low), min(law.support[1], grid_high)
        margin = 0.04 * (high - low)
        low, high = low - margin, high + margin
        limit_low, limit_high = low - 0.5 * (high - low), high + 0.5 * (high - low)
    else:  # a finite bound on one side still ends the range there
        half = PLOT_HALF_WIDTH * law.std
        low, high = max(law.mean - half, grid_low), min(law.mean + half, grid_high)
        margin = 0.04 * (high - low)
        low, high = low - (margin if low == law.support[0] else 0.0), high + (margin if high == law.support[1] else 0.0)
        limit_low, limit_high = min(grid_low, low), max(grid_high, high)
    points = [summary.minimum, summary.maximum]
    if gap is not None and len(gap.x):
        points.append(float(gap.x[gap.largest]))
    for point in points:
        if math.isfinite(point):
            low, high = min(low, max(point, limit_low)), max(high, min(point, limit_high))
    return low, high


def display_bins(
    cells: Cells, n: int, low: float, high: float, bins: int = DISPLAY_BINS
) -> Bins:
    """Sum runs of consecutive cells into about ``bins`` bins over [low, high].

    The boundaries are cell edges: where the law mass of the cells in range
    crosses k / (0.75 bins) of its total (equal groups of equal-mass cells) and
    the edges nearest to 0.25 bins equally spaced x, less those that would
    close a sliver (:func:`_merge_small`).  Density = count / (n width);
    residual = (count - n mass) / sqrt(n mass) (+inf where the law puts no
    mass but values fell).  The cells' ``fixed`` edges are cuts that always
    stay, so no bin straddles a bound of the law."""
    edges = cells.edges
    first = max(int(np.searchsorted(edges, low, side="right")) - 1, 0)
    last = min(int(np.searchsorted(edges, high, side="left")), len(edges) - 1)  # cells first..last-1
    if last <= first:
        first, last = max(last - 1, 0), max(last, 1)
    observed = cells.observed[first:last]
    masses = cells.masses[first:last]
    local = edges[first : last + 1]
    count = last - first
    mass_bins = max(1, int(round(bins * EQUAL_MASS_SHARE)))
    width_bins = max(1, bins - mass_bins)
    cumulative = np.concatenate([[0.0], np.cumsum(masses)])  # law mass below each local edge
    candidates = [np.array([0, count])]
    if cumulative[-1] > 0:
        targets = np.linspace(0.0, cumulative[-1], mass_bins + 1)[1:-1]
        candidates.append(np.searchsorted(cumulative, targets, side="left"))
    span_low, span_high = max(low, local[0]), min(high, local[-1])
    candidates.append(np.searchsorted(local, np.linspace(span_low, span_high, width_bins + 1)))
    fixed = [cut - first for cut in cells.fixed if 0 < cut - first < count]
    candidates.append(np.array(fixed, dtype=np.int64))
    candidates = np.unique(np.clip(np.concatenate(candidates), 0, count))
    cuts = _merge_small(candidates, cumulative, local, cumulative[-1] / mass_bins,
                        (span_high - span_low) / width_bins, fixed)
    counts = np.add.reduceat(observed, cuts[:-1]).astype(np.float64)
    law_mass = np.add.reduceat(masses, cuts[:-1])
    bin_edges = local[cuts]
    widths = np.diff(bin_edges)
    with np.errstate(divide="ignore", invalid="ignore"):
        density = np.where(widths > 0, counts / (n * widths), 0.0)
        expected = np.where(widths > 0, law_mass / widths, 0.0)
        mean = n * law_mass
        residuals = np.where(mean > 0, (counts - mean) / np.sqrt(mean), np.where(counts > 0, np.inf, 0.0))
    outside = int(cells.observed[:first].sum() + cells.observed[last:].sum())
    return Bins(bin_edges, density, expected, residuals, outside)


def _merge_small(candidates, cumulative, x, mass_step: float, width_step: float, fixed=()) -> np.ndarray:
    """Keep a candidate cut only when the bin it closes holds at least half a
    mass step or spans at least half a width step: where an equal-mass cut and
    an equal-width cut nearly coincide they would make a sliver of a bin whose
    density is pure noise.  The first and last candidates and the ``fixed``
    ones always stay (a sliver before a fixed cut is merged into the bin before)."""

    def big(start: int, stop: int) -> bool:
        return cumulative[stop] - cumulative[start] >= 0.5 * mass_step or x[stop] - x[start] >= 0.5 * width_step

    fixed = {int(cut) for cut in fixed} | {int(candidates[0])}
    kept = [int(candidates[0])]
    for cut in map(int, candidates[1:-1]):
        if cut in fixed:
            if kept[-1] not in fixed and not big(kept[-1], cut):
                kept.pop()
            kept.append(cut)
        elif big(kept[-1], cut):
            kept.append(cut)
    last = int(candidates[-1])
    if kept[-1] not in fixed and not big(kept[-1], last):
        kept.pop()
    kept.append(last)
    return np.array(kept)


def law_density(law: Law, low: float, high: float, points: int = DENSITY_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(x, f(x)) with f the finite difference of the law's CDF on ``points``
    equally spaced x in [low, high], at the midpoints."""
    x = np.linspace(low, high, points)
    cdf = law.cdf(x)
    return 0.5 * (x[:-1] + x[1:]), np.diff(cdf) / np.diff(x)


# -- drawing ------------------------------------------------------------------------------


def _nonfinite_text(summary) -> str:
    parts = [f"{count:,} {name}" for count, name in
             ((summary.nan, "NaN"), (summary.posinf, "+Inf"), (summary.neginf, "-Inf")) if count]
    return (" + ".join(parts) + " not plotted") if parts else ""


#: Header layout, in inches from the top of the figure.
TITLE_AT, DETAILS_AT, REASON_AT, REASON_LINE, PANEL_GAP = 0.10, 0.36, 0.58, 0.125, 0.40
#: Inches a second title line, and a second details line, take.
TITLE_LINE, DETAILS_LINE = 0.2, 0.15


def _header(fig, result: RowResult) -> None:
    """Row name, law and N on the left; verdict in its colour on the right; the
    reason, wrapped, underneath."""
    summary = result.summary
    height = fig.get_figheight()

    def at(inches: float) -> float:
        return 1.0 - inches / height

    title = _title_lines(result)
    fig.text(0.01, at(TITLE_AT), "\n".join(title), ha="left", va="top", fontsize=11, fontweight="bold",
             linespacing=1.15)
    down = TITLE_LINE * (len(title) - 1)  # a second title line pushes the rest down
    details = _details_lines(result)
    nonfinite = _nonfinite_text(summary)
    fig.text(0.01, at(DETAILS_AT + down), "\n".join(details), ha="left", va="top", fontsize=8.5, color="#333333",
             linespacing=1.2)
    down += DETAILS_LINE * (len(details) - 1)
    if nonfinite:
        fig.text(0.99, at(DETAILS_AT + down), nonfinite, ha="right", va="top", fontsize=8.5, color=VERDICT_COLORS["FAIL"],
                 fontweight="bold")
    color = VERDICT_COLORS.get(result.verdict, "#555555")
    fig.text(0.99, at(TITLE_AT - 0.02), f" {result.verdict} ", ha="right", va="top", fontsize=12, fontweight="bold",
             color="white", bbox=dict(boxstyle="round,pad=0.25", facecolor=color, edgecolor=color))
    if result.reason:
        lines = _reason_lines(result.reason)
        fig.text(0.01, at(REASON_AT + down), "\n".join(lines), ha="left", va="top", fontsize=7.5, linespacing=1.25,
                 color=color if result.verdict in ("FAIL", "WARN") else "#333333")


def _details_lines(result: RowResult, width: int = 170) -> list[str]:
    """API · shape · law · N, wrapped to the figure's width (two lines at most)."""
    shape = "x".join(map(str, result.shape))
    details = "  ·  ".join((" ".join(result.api.split()), f"shape {shape}", f"law {result.law.describe()}",
                            f"N = {result.summary.count:,} finite values"))
    lines = textwrap.wrap(details, width) or [""]
    return lines if len(lines) <= 2 else [lines[0], textwrap.shorten(" ".join(lines[1:]), width, placeholder=" …")]


def _header_extra(result: RowResult) -> float:
    """Inches the header grows by when its title or details take a second line."""
    return TITLE_LINE * (len(_title_lines(result)) - 1) + DETAILS_LINE * (len(_details_lines(result)) - 1)


def _title_lines(result: RowResult, width: int = 100) -> list[str]:
    """Framework · initializer · layer · dtype · device, each label on one line,
    wrapped to at most two lines that stay clear of the verdict badge."""
    name = " · ".join(" ".join(str(part).split()) for part in
                      (result.framework, result.initializer, result.layer, result.dtype, result.device) if part)
    lines = textwrap.wrap(name, width) or [""]
    if len(lines) > 2:
        lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), width, placeholder=" …")]
    return lines


def _reason_lines(reason: str, width: int = 175, most: int = 3) -> list[str]:
    lines = textwrap.wrap(reason, width)
    if len(lines) > most:
        lines = lines[:most]
        lines[-1] = lines[-1][: width - 1] + "…"
    return lines


def _mark_bounds(axes, law: Law) -> None:
    """A dashed line at each finite bound of the law's support."""
    bounds = [bound for bound in law.support if math.isfinite(bound)]
    for i, bound in enumerate(bounds):
        axes.axvline(bound, color="#555555", linestyle="--", linewidth=0.9,
                     label=("law's bounds" if len(bounds) > 1 else "law's bound") if i == 0 else None)


def _histogram_panel(axes, strip, result: RowResult, cells: Cells, low: float, high: float) -> None:
    summary, law = result.summary, result.law
    n = summary.count
    bins = display_bins(cells, n, low, high)
    sixteen = summary.patterns is not None
    label = "sample" if not sixteen else f"sample ({summary.dtype16} values)"
    axes.stairs(bins.density, bins.edges, color=SAMPLE_COLOR, linewidth=0, fill=True, alpha=0.25)
    axes.stairs(bins.expected, bins.edges, color=LAW_COLOR, linewidth=1.6, label="law, per bin", zorder=2)
    axes.stairs(bins.density, bins.edges, color=SAMPLE_COLOR, linewidth=0.9, label=label, zorder=3)
    x, f = law_density(law, low, high)
    axes.plot(x, f, color="#7a3000", linewidth=0.8, linestyle=(0, (4, 2)), label=f"law density {law.describe()}",
              zorder=4)
    _mark_bounds(axes, law)
    for atom, value in zip(cells.atoms, cells.atom_values):  # bins too narrow to see: say what they hold
        share, mass = cells.observed[atom] / n, cells.masses[atom]
        axes.plot([], [], " ", label=f"bound atom {value:g}: {share:.3g} of the values (law {mass:.3g})")
    ends = ((cells.below, summary.minimum, f"below {cells.edges[0]:.4g} (smallest {summary.minimum:.4g})"),
            (cells.above, summary.maximum, f"at or above {cells.edges[-1]:.4g} (largest {summary.maximum:.4g})"))
    for count, extreme, where in ends:  # no cell holds them: show where the extreme one lies
        if count:
            axes.plot([extreme], [0.0], "^", color=VERDICT_COLORS["FAIL"], markersize=8, clip_on=False, zorder=5,
                      label=f"{count:,} values {where}")
    if bins.outside:
        axes.plot([], [], " ", label=f"{bins.outside:,} values outside the plotted range")
    axes.set_xlim(low, high)
    top = max(float(np.max(bins.density, initial=0.0)), float(np.max(f, initial=0.0)))
    axes.set_ylim(0.0, top * _legend_room(axes) if top > 0 else 1.0)
    if sixteen:
        axes.set_ylabel("density (share per unit of x;\na value spread over what rounds to it)", fontsize=8)
        axes.set_title(f"Histogram vs the law's density ({len(bins.density)} bins of {summary.dtype16} values)",
                       fontsize=9.5)
    else:
        axes.set_ylabel("density (share per unit of x)", fontsize=8.5)
        axes.set_title(f"Histogram vs the law's density ({len(bins.density)} bins)", fontsize=9.5)
    axes.legend(fontsize=7.5, loc="upper right", framealpha=0.85)
    axes.tick_params(labelbottom=False, labelsize=8)
    axes.ticklabel_format(axis="y", style="plain", useOffset=False)

    residuals = bins.residuals
    finite = np.isfinite(residuals)
    reach = max(4.0, float(np.max(np.abs(residuals[finite]), initial=0.0)) * 1.1)
    shown = np.where(finite, residuals, np.sign(residuals) * reach)
    strip.axhspan(-3, 3, color="#999999", alpha=0.15, linewidth=0)
    strip.stairs(shown, bins.edges, color=SAMPLE_COLOR, linewidth=0.9, fill=True, alpha=0.6, baseline=0.0)
    strip.axhline(0.0, color=LAW_COLOR, linewidth=0.8)
    _mark_bounds(strip, law)
    strip.set_xlim(low, high)
    strip.set_ylim(-reach, reach)
    strip.set_ylabel("residual\n(o − e) / √e", fontsize=7.5)
    strip.set_xlabel("value x", fontsize=8.5)
    strip.tick_params(labelsize=7.5)


def _legend_room(axes) -> float:
    """How far above the data's top the y axis must reach for the legend
    (upper right, one line per entry) to sit above the curves."""
    entries = len(axes.get_legend_handles_labels()[0])
    height = axes.get_position().height * axes.figure.get_figheight()  # inches
    share = min(0.7, (0.16 * entries + 0.15) / height)
    return 1.02 / (1.0 - share)


def _gap_panel(axes, result: RowResult, gap: Gap, low: float, high: float) -> None:
    law = result.law
    # the points in range and one more on each side, so the curve runs to the panel's edges
    start = max(int(np.searchsorted(gap.x, low, side="left")) - 1, 0)
    stop = min(int(np.searchsorted(gap.x, high, side="right")) + 1, len(gap.x))
    inside = slice(start, stop)
    if gap.steps:
        axes.step(gap.x[inside], gap.d[inside], where="post", color=SAMPLE_COLOR, linewidth=1.0,
                  label="ECDF − law CDF (rounded law)")
    else:
        axes.plot(gap.x[inside], gap.d[inside], color=SAMPLE_COLOR, linewidth=1.0, label="ECDF − law CDF")
    axes.axhline(0.0, color="#555555", linewidth=0.7)
    ks = result.check("ks")
    critical = ks.threshold if ks is not None and ks.threshold is not None else None
    if critical is not None:
        axes.axhspan(-critical, critical, color="#2e7d32", alpha=0.12, linewidth=0,
                     label=f"KS critical distance ±{critical:.2g}")
    k = gap.largest
    d_max = float(gap.d[k])
    color = VERDICT_COLORS["FAIL"] if ks is not None and ks.passed is False else "#222222"
    axes.plot([gap.x[k]], [d_max], "o", color=color, markersize=6,
              label=f"largest |gap| D = {abs(d_max):.3g} at x = {gap.x[k]:.4g}")
    axes.annotate(f"D = {abs(d_max):.3g}", (gap.x[k], d_max), textcoords="offset points",
                  xytext=(6, 6 if d_max >= 0 else -12), fontsize=8, color=color)
    _mark_bounds(axes, law)
    reach = max(float(np.max(np.abs(gap.d))), 1.5 * (critical or 0.0))
    reach = reach * 1.15 if reach > 0 else 1e-3
    axes.set_ylim(-reach, reach + 2 * reach * (_legend_room(axes) - 1.0))  # room for the legend above the curve
    axes.set_xlim(low, high)
    axes.set_xlabel("value x", fontsize=8.5)
    axes.set_ylabel("share of values ≤ x, sample minus law", fontsize=8.5)
    where = "at the histogram's cell edges" if not gap.steps else f"at every {result.summary.dtype16} value"
    axes.set_title(f"Empirical CDF minus the law's CDF ({where})", fontsize=9.5)
    axes.legend(fontsize=7.5, loc="upper right", framealpha=0.85)
    axes.tick_params(labelsize=8)
    axes.ticklabel_format(axis="y", style="plain", useOffset=False)


def _observed_values(result: RowResult) -> tuple[np.ndarray, np.ndarray]:
    """(x, share) of the values seen: exact values for 16-bit rows, the centres
    of non-empty histogram cells (and the extremes for the open end cells) otherwise."""
    summary = result.summary
    n = summary.count
    if summary.patterns is not None:
        from initcheck.lowp import counts_by_value

        values, counts = counts_by_value(summary.patterns, summary.dtype16)
        return values, counts / n
    edges = summary.grid.edges()
    centres = np.concatenate([[summary.minimum], 0.5 * (edges[:-1] + edges[1:]), [summary.maximum]])
    used = summary.hist > 0
    if summary.minimum == summary.maximum:  # every value equal: say exactly where
        return np.array([summary.minimum]), np.array([1.0])
    return centres[used], summary.hist[used] / n


def _constant_panels(axes, right, result: RowResult) -> None:
    law, summary = result.law, result.summary
    x, share = _observed_values(result)
    order = np.argsort(share)[::-1][:50]
    x, share = x[order], share[order]
    spread = max(float(np.max(np.abs(x - law.mean), initial=0.0)), 1e-3 * max(abs(law.mean), 1.0))
    width = spread / 15
    axes.bar(x, share, width=width, color=SAMPLE_COLOR, alpha=0.7, label="share of the values seen")
    axes.axvline(law.mean, color=LAW_COLOR, linewidth=1.6, label=f"law: {law.describe()}")
    axes.set_xlim(law.mean - 1.3 * spread, law.mean + 1.3 * spread)
    axes.set_ylim(0, 1.1)
    axes.set_xlabel("value x", fontsize=8.5)
    axes.set_ylabel("share of the values", fontsize=8.5)
    axes.set_title("Values seen vs the constant the law claims", fontsize=9.5)
    axes.legend(fontsize=7.5, loc="upper right")
    right.axis("off")
    check = result.check("constant")
    lines = [
        f"law: {law.describe()} (no spread: no density or CDF to compare)",
        f"min {summary.minimum:.6g}, max {summary.maximum:.6g}",
        f"constant check: {check.detail if check else 'not run'}",
    ]
    right.text(0.02, 0.9, "\n".join(lines), va="top", fontsize=9, transform=right.transAxes)


def plot_row(result: RowResult, path: str | Path) -> None:
    """Draw the row's two panels (see the module docstring) and save a PNG at ``path``."""
    from matplotlib.figure import Figure

    summary, law = result.summary, result.law
    reason_lines = len(_reason_lines(result.reason)) if result.reason else 0
    down = _header_extra(result)
    height = FIGSIZE[1] + REASON_LINE * reason_lines + down
    fig = Figure(figsize=(FIGSIZE[0], height), dpi=DPI)
    header = (REASON_AT + REASON_LINE * reason_lines if reason_lines else DETAILS_AT + 0.2) + PANEL_GAP + down
    top = 1.0 - header / height
    try:
        _header(fig, result)
        if law.family == "constant" or law.variance == 0.0:
            grid = fig.add_gridspec(1, 2, left=0.07, right=0.98, bottom=0.12, top=top, wspace=0.22)
            _constant_panels(fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), result)
        else:
            gap = row_gap(result)
            low, high = display_range(law, summary, gap)
            grid = fig.add_gridspec(2, 2, left=0.075, right=0.985, bottom=0.11, top=top, wspace=0.24,
                                    hspace=0.06, height_ratios=[3.2, 1.0])
            histogram = fig.add_subplot(grid[0, 0])
            strip = fig.add_subplot(grid[1, 0], sharex=histogram)
            _histogram_panel(histogram, strip, result, row_cells(result), low, high)
            _gap_panel(fig.add_subplot(grid[:, 1]), result, gap, low, high)
            fig.align_ylabels([histogram, strip])  # the strip's two-line label clear of its ticks
        fig.savefig(path, dpi=DPI)
    finally:
        fig.clear()
