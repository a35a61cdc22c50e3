"""Reducers of host memory: every float32/float64 draw through the fold kernel,
16-bit draws by exact bit-pattern counts.

:class:`HostReducer`'s kernel (:mod:`initcheck.kernels`: the C extension
``initcheck/_kernels.c`` where it was built, else its NumPy twin) makes one
pass over the draw; the C one releases the GIL, so the runner folds draw i on
one core while the framework samples draw i+1 on the other.  Power sums are
accumulated in float64 whatever the sample dtype.

Both reducers take a batch of draws at once, ``fold(x, draws=K)`` with x of
shape ``(K, *draw_shape)``, and give exactly the statistics of K single folds:
one kernel call for the whole batch, lag-1 pairs within each draw and between
consecutive draws (across batches too; on their first PAIR_PREFIX positions).  A draw holding NaN or Inf adds no
pairs and is no one's neighbour, in a batch as alone.
"""

from __future__ import annotations

import copy

import math

import numpy as np

from initcheck import kernels
from initcheck.reducers.shapes import PAIR_PREFIX, as_host_array, batch_shape, lag_of_rows
from initcheck.grid import Grid
from initcheck.laws import Law
from initcheck.structure import StructureFolder
from initcheck.summary import Summary


class HostReducer:
    """Streaming statistics of host arrays, one pass of ``kernels.fold`` per draw or batch.

    The kernel counts cells in an int32 histogram (what the scattered adds cost
    is cache footprint); the counts move into the int64 summary before any cell
    could reach 2^31.
    """

    #: Values the int32 cells may take in before they are moved to the int64 summary.
    flush_every = np.iinfo(np.int32).max
    #: ``fold`` does the work before it returns (the runner gives it a thread of its own).
    asynchronous = False

    def __init__(self, law: Law, grid: Grid | None = None, expected_values: int | None = None):
        grid = grid or Grid.for_law(law)
        self._expected = expected_values
        self._structure: StructureFolder | bool | None = None
        self._summary = Summary(ref=law.mean, grid=grid)
        self._slope = grid.slope
        self._extremes = np.array([math.inf, -math.inf])
        self._counts = np.zeros(4, dtype=np.int64)  # finite, NaN, +Inf, -Inf
        self._cells = np.zeros(grid.cells + 2, dtype=np.int32)
        self._unflushed = 0
        self._chain = PairChain(self._summary.ref, self._summary.pairs)

    def fold(self, x, draws: int | None = None) -> None:
        """Fold one draw, or with ``draws=K`` the K draws stacked along x's first axis."""
        count, draw_shape = batch_shape(x.shape, draws)
        row_length = lag_of_rows(draw_shape)
        x = as_host_array(x)
        if x.dtype not in (np.float32, np.float64):
            if count == 1 and x.size > PAIR_PREFIX:
                self._fold_converted(x, draw_shape)
                return
            x = x.astype(np.float64)  # a batch, or a draw of at most PAIR_PREFIX values
        counts = self._counts
        nonfinite_before = int(counts[1]) + int(counts[2]) + int(counts[3])
        self._fold_values(x)
        # NaN or Inf poison products: such draws add none (the finite check has already failed)
        finite = int(counts[1]) + int(counts[2]) + int(counts[3]) == nonfinite_before
        self._chain.fold(x, count, row_length, finite)
        if finite:
            self._structure = fold_structure(self._structure, self._summary.ref, draw_shape, x, count,
                                             expected=self._expected)

    def no_more_draws(self) -> None:
        """The next fold is the last: its draw need not be kept as the
        neighbour of one that will never come (a model's parameter folded
        over a known number of instances)."""
        self._chain.keep = False

    def _fold_values(self, x: np.ndarray) -> None:
        """The kernel's fold of float32/float64 values, the cells moved to int64 in time."""
        s, g = self._summary, self._summary.grid
        for start in range(0, x.size, self.flush_every):
            part = x[start : start + self.flush_every]
            if self._unflushed + part.size > self.flush_every:
                self._flush()
            kernels.fold(
                part, s.ref, g.lo, g.segment_scale, g.cum, self._slope, s.sums, self._extremes, self._counts,
                self._cells,
            )
            self._unflushed += part.size

    def _fold_converted(self, x: np.ndarray, draw_shape) -> None:
        """A large draw of another dtype (a custom function's integers), checked
        as float64 a part of LARGE_PART values at a time: no full float64 copy."""
        counts = self._counts
        nonfinite_before = int(counts[1]) + int(counts[2]) + int(counts[3])

        def values_of(a, b):
            return x[a:b].astype(np.float64)

        for a in range(0, x.size, LARGE_PART):
            self._fold_values(values_of(a, a + LARGE_PART))
        if int(counts[1]) + int(counts[2]) + int(counts[3]) != nonfinite_before:
            self._chain.forget()
            return
        self._chain.fold_in_parts(values_of, x.size, lag_of_rows(draw_shape), LARGE_PART)
        self._structure = structure_for(self._structure, self._summary.ref, draw_shape, x.dtype.itemsize,
                                        self._expected)
        if self._structure:
            self._structure.fold_in_parts(values_of, np.ascontiguousarray(x), LARGE_PART)

    def _flush(self) -> None:
        self._summary.hist += self._cells
        self._cells[:] = 0
        self._unflushed = 0

    def summary(self) -> Summary:
        """The statistics so far, as a copy: a fold after the call changes
        nothing in it."""
        self._flush()
        s = copy.copy(self._summary)  # the arrays the folds keep adding to, copied; the grid shared
        s.sums, s.pairs = self._summary.sums.copy(), self._summary.pairs.copy()
        s.hist = None if s.hist is None else s.hist.copy()
        s.count, s.nan, s.posinf, s.neginf = (int(c) for c in self._counts)
        s.minimum, s.maximum = float(self._extremes[0]), float(self._extremes[1])
        s.structure = self._structure.result() if self._structure else None
        return s


class PatternReducer:
    """Streaming statistics of 16-bit draws: every bit pattern counted exactly
    (see :mod:`initcheck.lowp`), on the host or, for torch tensors on a GPU, on
    the device in batches of draws; lag-1 pairs as for the other reducers."""

    def __init__(self, law: Law, dtype: str, device=None, expected_values: int | None = None):
        from initcheck import lowp

        self._expected = expected_values
        self._structure: StructureFolder | bool | None = None
        self._lowp, self._dtype, self._ref = lowp, dtype, law.mean
        self._patterns = np.zeros(lowp.PATTERNS, dtype=np.int64)
        self._pairs = np.zeros((3, 4))
        self._chain = PairChain(law.mean, self._pairs)
        self._device_counts = self._device_pairs = self._batches = None
        if device is not None:
            import torch

            from initcheck.reducers.backends.torch_reducer import Batches, TorchPairs, TorchStructure

            self._device_counts = torch.zeros(lowp.PATTERNS, dtype=torch.int64, device=device)
            self._device_pairs = TorchPairs(device)
            self._batches = Batches(self._fold_device_batch, device)
            self._structure = TorchStructure(law.mean, device, itemsize=2, expected_values=expected_values)
        #: On a device, ``fold`` only queues work (see TorchReducer).
        self.asynchronous = device is not None

    def no_more_draws(self) -> None:
        """As :meth:`HostReducer.no_more_draws` (the host path keeps the last draw)."""
        self._chain.keep = False

    def fold(self, x, draws: int | None = None) -> None:
        """Fold one draw, or with ``draws=K`` the K draws stacked along x's first axis."""
        if self._batches is not None:
            self._batches.add(x, draws)
            return
        count, draw_shape = batch_shape(x.shape, draws)
        patterns = self._lowp.as_patterns(x)
        table = self._lowp.pattern_values32(self._dtype)
        if count == 1 and patterns.size > PAIR_PREFIX:
            self._fold_large(patterns, table, draw_shape)
            return
        kernels.bit_patterns(patterns, self._patterns)
        values = table[patterns]
        finite = bool(np.isfinite(values).all())
        self._chain.fold(values, count, lag_of_rows(draw_shape), finite)
        if finite:
            self._structure = fold_structure(self._structure, self._ref, draw_shape, values, count,
                                             bits=patterns, expected=self._expected)

    def _fold_large(self, patterns: np.ndarray, table: np.ndarray, draw_shape) -> None:
        """A draw of more than PAIR_PREFIX values, seen as float32 a part at a
        time (never a full copy of the draw); a draw holding NaN or Inf adds no
        pairs and no structure, as in :meth:`fold`."""
        nonfinite = self._lowp.nonfinite_patterns(self._dtype)
        before = int(self._patterns[nonfinite].sum())
        kernels.bit_patterns(patterns, self._patterns)
        if int(self._patterns[nonfinite].sum()) != before:
            self._chain.forget()  # no pairs, and no one's neighbour
            return

        def values_of(a, b):
            return table[patterns[a:b]]

        self._chain.fold_in_parts(values_of, patterns.size, lag_of_rows(draw_shape), LARGE_PART)
        self._structure = structure_for(self._structure, self._ref, draw_shape, 2, self._expected)
        if self._structure:
            self._structure.fold_in_parts(values_of, patterns, LARGE_PART)

    def _fold_device_batch(self, x, row_length: int) -> None:
        """K torch draws, shape (K, n): bincount of the bit patterns, pairs in torch;
        draws of more than ``torch_reducer.PART`` values a part at a time
        (no float64 copy of a whole draw)."""
        import torch

        from initcheck.reducers.backends import torch_reducer

        def counted(part):
            self._device_counts += torch.bincount(part.view(torch.int16).reshape(-1).int() & 0xFFFF,
                                                  minlength=self._lowp.PATTERNS)
            return part.double() - self._ref, None

        if x.shape[1] > torch_reducer.PART:
            for draw in x:
                torch_reducer.fold_in_parts(draw, row_length, self._batches.draw_shape, self._device_pairs,
                                            self._structure, counted)
            return
        d, _ = counted(x)
        self._device_pairs.fold(d, row_length, torch.isfinite(x).all(1))
        self._structure.fold(x, self._batches.draw_shape)

    def summary(self) -> Summary:
        patterns, pairs = self._patterns, self._pairs
        if self._batches is not None:
            self._batches.flush()
            patterns = patterns + self._device_counts.cpu().numpy()
            pairs = self._device_pairs.numpy()
        summary = self._lowp.pattern_summary(self._ref, self._dtype, patterns, pairs)
        summary.structure = self._structure.result() if self._structure else None
        return summary


def structure_for(folder, ref, draw_shape, itemsize: int, expected=None):
    """The row's StructureFolder for draws of this shape: made on the first
    fold; a row whose draws change shape keeps no structure (False from then on)."""
    if folder is None:
        return StructureFolder(ref, draw_shape, itemsize, expected)
    if folder is False or folder.shape != tuple(draw_shape):
        return False
    return folder


def fold_structure(folder, ref, draw_shape, values, draws, bits=None, expected=None):
    """The row's StructureFolder after folding these draws (see :func:`structure_for`)."""
    itemsize = bits.dtype.itemsize if bits is not None else values.dtype.itemsize
    folder = structure_for(folder, ref, draw_shape, itemsize, expected)
    if folder:
        folder.fold(values, draws, bits=bits)
    return folder


#: Values of a large 16-bit draw seen as float32 at a time.
LARGE_PART = 1 << 18


class PairChain:
    """The lag-1 pairs of a stream of host draws (``kernels.pairs``) and the
    start of the last draw (its first PAIR_PREFIX values), the next one's
    neighbour, kept as a copy: the framework may reuse the draw's memory."""

    def __init__(self, ref: float, out: np.ndarray):
        self._ref, self._out = ref, out
        self._previous: np.ndarray | None = None
        self._scratch = np.zeros(12)
        #: False once the caller said no draw follows: the last one is not kept.
        self.keep = True

    def fold(self, values: np.ndarray, draws: int, row_length: int, finite: bool) -> None:
        """Add the pairs of ``draws`` draws, flat in ``values``.  With ``finite``
        false some value is NaN or Inf: the draws holding one add no pairs and
        are no one's neighbour; the others pair as they would alone."""
        if draws == 0:
            return
        n = values.size // draws
        if n > PAIR_PREFIX:
            for k in range(draws):
                self._fold_large(values[k * n : (k + 1) * n], row_length, finite)
            return
        previous = self._previous
        if previous is not None and (previous.size != n or previous.dtype != values.dtype):
            previous = None
        if finite:
            kernels.pairs(values, previous, row_length, self._ref, self._out, n)
        else:
            clean = np.isfinite(values.reshape(draws, n)).all(axis=1)
            for start, end in _runs(clean):
                before = previous if start == 0 else None
                kernels.pairs(values[start * n : end * n], before, row_length, self._ref, self._out, n)
            if not clean[-1]:
                self._previous = None
                return
        if not self.keep:
            self._previous = None
            return
        last = values[(draws - 1) * n :]
        if previous is None:
            previous = np.empty_like(last)
        np.copyto(previous, last)
        self._previous = previous

    def _fold_large(self, draw: np.ndarray, row_length: int, finite: bool) -> None:
        """A draw of more than PAIR_PREFIX values: pairs within it in full, with
        the previous draw on the first PAIR_PREFIX positions."""
        if not (finite or np.isfinite(draw).all()):
            self._previous = None
            return
        kernels.pairs(draw, None, row_length, self._ref, self._out, draw.size)
        self._cross(draw[:PAIR_PREFIX])

    def fold_in_parts(self, values_of, n: int, row_length: int, part: int) -> None:
        """One finite draw of n > PAIR_PREFIX values given piecewise
        (``values_of(a, b)``, whole rows of about ``part`` values at a time),
        with the pairs it would add whole: each part is paired together with
        the row (or, for 1-d draws, the value) before it, less that row alone."""
        overlap = max(row_length, 1)
        step = max(1, part // overlap) * overlap
        before = None
        for a in range(0, n, step):
            chunk = values_of(a, min(n, a + step))
            if before is None:
                kernels.pairs(chunk, None, row_length, self._ref, self._out, chunk.size)
            else:
                window = np.concatenate([before, chunk])
                kernels.pairs(window, None, row_length, self._ref, self._out, window.size)
                self._scratch[:] = 0.0
                kernels.pairs(before, None, row_length, self._ref, self._scratch, before.size)
                self._out.reshape(-1)[:8] -= self._scratch[:8]
            before = np.array(chunk[-overlap:], copy=True) if chunk.size >= overlap else None
        self._cross(values_of(0, PAIR_PREFIX))

    def forget(self) -> None:
        """The next draw has no previous one (the last held NaN or Inf)."""
        self._previous = None

    def _cross(self, head: np.ndarray) -> None:
        """The consecutive-draws pairs of a large draw's first PAIR_PREFIX values."""
        previous = self._previous
        if previous is not None and previous.size == head.size and previous.dtype == head.dtype:
            self._scratch[:] = 0.0
            kernels.pairs(head, previous, 0, self._ref, self._scratch, head.size)
            self._out.reshape(-1)[8:12] += self._scratch[8:12]
        elif self.keep:
            previous = np.empty_like(head)
        if not self.keep:
            self._previous = None
            return
        np.copyto(previous, head)
        self._previous = previous


def _runs(clean: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of consecutive True values."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], clean, [False]]).astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


class ConstantReducer:
    """The statistics a constant law's checks read (``finite`` and
    ``constant``): counts, NaN/Inf, min and max, the power sums about the
    constant, and a histogram of ``CELLS`` cells; no structure.  A model has
    many constant parameters (norm weights, zero biases); this costs a few
    microseconds each, where a full reducer's 2^16-cell histogram and
    structure statistics cost milliseconds."""

    CELLS = 4
    asynchronous = False

    def __init__(self, law: Law):
        self._summary = Summary(ref=law.mean, grid=Grid.for_law(law, cells=self.CELLS))
        self._edges = self._summary.grid.edges()

    def fold(self, x, draws: int | None = None) -> None:
        x = as_host_array(x).reshape(-1)
        for start in range(0, x.size, LARGE_PART):
            self._fold_part(np.asarray(x[start : start + LARGE_PART], dtype=np.float64))

    def _fold_part(self, values: np.ndarray) -> None:
        s = self._summary
        finite = np.isfinite(values)
        if not finite.all():
            s.nan += int(np.isnan(values).sum())
            s.posinf += int((values == math.inf).sum())
            s.neginf += int((values == -math.inf).sum())
            values = values[finite]
        if values.size == 0:
            return
        s.count += values.size
        s.minimum, s.maximum = min(s.minimum, float(values.min())), max(s.maximum, float(values.max()))
        d = values - s.ref
        d2 = d * d
        s.sums += [d.sum(), d2.sum(), (d2 * d).sum(), (d2 * d2).sum()]
        cells = np.searchsorted(self._edges, values, side="right")
        s.hist += np.bincount(cells, minlength=len(s.hist))[: len(s.hist)]

    def summary(self) -> Summary:
        return self._summary
