"""The histogram grid: cells of (nearly) equal mass under the law.

The design histograms u = F(x), the law's CDF, in equal cells.  Evaluating F
per value is costly, so the kernel uses ``u(x)``, the piecewise-linear
interpolation of F between ``segments`` equally spaced points of the law's grid
interval ``[lo, hi]`` (renormalized so u(lo) = 0 and u(hi) = 1):

    t    = (x - lo) * segments / (hi - lo),   j = floor(t)
    u    = (cum[j] + (t - j) * slope[j]) / cells,   cum[j] = cells * u(x_j)
    cell = floor(cells * u) + 1          for lo <= x < hi
    cell = 0 below lo,  cells + 1 at or above hi

For a uniform law u is linear: ``cum[j] = j * cells / segments`` exactly,
and with ``cells / segments`` a power of two the kernel computes the same
cells as ``floor((x - lo) * cells / (hi - lo)) + 1``, with no table look-up.

u is monotone, so each cell is an interval of x whose edges :meth:`Grid.edges`
gives exactly; the checks evaluate the law's true CDF there.  With 1024
segments F is nearly linear inside each one, so every cell holds about 1/cells
of the mass (at most a few percent more): the KS distance read at the edges is
within about 1/cells of the true one, as with an exact probability transform.

2^16 cells of int32 take 256 KiB and stay in a core's L2 cache while a draw is
folded; 2^20 cells did not, and the scattered adds then cost more than the
framework's own sampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Histogram cells between lo and hi (plus one open cell on each side).
HIST_CELLS = 2**16
#: Linear pieces of the approximate probability transform.
SEGMENTS = 1024
#: A CDF within this fraction of a straight line at every grid point is taken
#: as linear (a uniform law, up to rounding): its ``cum`` is then exactly
#: ``j * cells / segments``, which the kernel reads without any table.
LINEAR_TOLERANCE = 1e-12


@dataclass(frozen=True, eq=False)
class Grid:
    lo: float
    hi: float
    cells: int
    cum: np.ndarray  # segments + 1 values, cum[0] = 0, cum[-1] = cells, non-decreasing

    @classmethod
    def for_law(cls, law, cells: int = HIST_CELLS, segments: int = SEGMENTS) -> Grid:
        """The grid of ``law``.  A law with an atom inside its grid
        (``law.atoms``, e.g. the zeros of a sparse matrix) gets its lower end
        moved out by a few cell widths until the atom lies in the middle of a
        cell: a cell edge on the atom, or within rounding of it, would put the
        atom's values on either side of the edge depending on the last bit
        (:meth:`_atom_inside_a_cell`)."""
        lo, hi = law.grid()
        grid = cls._of(law, lo, hi, cells, segments)
        atoms = [a for a in getattr(law, "atoms", ()) if lo < a < hi]
        return grid._atom_inside_a_cell(law, atoms[0]) if atoms else grid

    def _atom_inside_a_cell(self, law, atom: float) -> Grid:
        """This grid with ``lo`` lowered until the atom lies inside one of the
        linear segments (not within 1% of either end) and u(atom) * cells is
        within a quarter of the middle of a cell.  Inside its segment the
        atom's mass is spread evenly, so lowering lo by d moves u(atom) * cells
        by about mass * cells * segment_scale * d, while the law's continuous
        part of u(atom) does not depend on the grid.  An atom of less than one
        cell's mass only needs to lie inside a segment: on either side of an
        edge it moves the KS distance by less than the histogram's resolution."""
        mass = float(law.cdf(atom) - law.cdf(np.nextafter(atom, -np.inf)))
        grid = self
        for _ in range(32):
            t = (atom - grid.lo) * grid.segment_scale
            j = min(int(math.floor(t)), grid.segments - 1)
            if not 0.01 < t - j < 0.99:  # on a segment's end: into the middle of the segment first
                step = 0.5 / grid.segment_scale
            else:
                position = float(grid.cum[j]) + (t - j) * float(grid.slope[j])
                offset = position - math.floor(position) - 0.5
                if abs(offset) < 0.25 or mass * grid.cells < 1.0:  # (an atom within one cell: either side will do)
                    return grid
                # to the middle of this cell's successor (offset > 0) or of this cell
                step = (1.0 - offset if offset > 0 else -offset) / (mass * grid.cells * grid.segment_scale)
            grid = Grid._of(law, grid.lo - step, grid.hi, grid.cells, grid.segments)
        return grid

    @classmethod
    def _of(cls, law, lo: float, hi: float, cells: int, segments: int) -> Grid:
        points = np.linspace(lo, hi, segments + 1)
        cdf = law.cdf(points)
        span = cdf[-1] - cdf[0]
        u = (cdf - cdf[0]) / span if span > 0 else np.linspace(0.0, 1.0, segments + 1)
        cum = np.maximum.accumulate(u * cells)
        cum[0], cum[-1] = 0.0, float(cells)
        linear = np.arange(segments + 1) * (cells / segments)
        if np.allclose(cum, linear, rtol=0.0, atol=LINEAR_TOLERANCE * cells):
            cum = linear  # a uniform law: exactly linear, and the kernel's fast path
        return cls(float(lo), float(hi), int(cells), cum)

    @property
    def segments(self) -> int:
        return len(self.cum) - 1

    @property
    def segment_scale(self) -> float:
        return self.segments / (self.hi - self.lo)

    @property
    def slope(self) -> np.ndarray:
        return np.diff(self.cum)

    def cell_of(self, x) -> np.ndarray:
        """Cell index of each value (the kernel's rule, in NumPy, for tests)."""
        x = np.asarray(x, dtype=np.float64)
        t = (x - self.lo) * self.segment_scale
        j = np.clip(np.floor(t), 0, self.segments - 1).astype(np.int64)
        c = self.cum[j] + (t - j) * self.slope[j]
        inner = np.minimum(np.floor(c), self.cells - 1).astype(np.int64) + 1
        return np.where(t < 0, 0, np.where(t >= self.segments, self.cells + 1, inner))

    def edges(self) -> np.ndarray:
        """The ``cells + 1`` values of x where u(x) = k / cells, k = 0..cells."""
        k = np.arange(self.cells + 1, dtype=np.float64)
        j = np.clip(np.searchsorted(self.cum, k, side="right") - 1, 0, self.segments - 1)
        slope = self.slope[j]
        inside = np.divide(k - self.cum[j], slope, out=np.zeros_like(k), where=slope > 0)
        x = self.lo + (j + inside) / self.segment_scale
        x[0], x[-1] = self.lo, self.hi
        return np.maximum.accumulate(x)

    def same(self, other: Grid) -> bool:
        return (self.lo, self.hi, self.cells) == (other.lo, other.hi, other.cells) and np.array_equal(
            self.cum, other.cum
        )

    def to_dict(self) -> dict:
        """Everything needed to rebuild the grid (:meth:`from_dict`)."""
        return {"lo": self.lo, "hi": self.hi, "cells": self.cells, "segments": self.segments,
                "cum": [float(c) for c in self.cum]}

    @classmethod
    def from_dict(cls, data: dict) -> Grid:
        return cls(float(data["lo"]), float(data["hi"]), int(data["cells"]), np.asarray(data["cum"], dtype=np.float64))
