"""Reducers of host memory: every float32/float64 draw through the C kernel,
16-bit draws by exact bit-pattern counts.

:class:`HostReducer`'s kernel (``initcheck/_kernels.c``) makes one pass over
the draw and releases the GIL, so the runner folds draw i on one core while
the framework samples draw i+1 on the other.  Power sums are accumulated in
float64 whatever the sample dtype.
"""

from __future__ import annotations

import math

import numpy as np

from initcheck import _kernels
from initcheck.reducers.shapes import as_host_array, lag_of_rows
from initcheck.grid import Grid
from initcheck.laws import Law
from initcheck.summary import Summary


class HostReducer:
    """Streaming statistics of host arrays, one pass of ``_kernels.fold`` per draw.

    The kernel counts cells in an int32 histogram (what the scattered adds cost
    is cache footprint); the counts move into the int64 summary before any cell
    could reach 2^31.
    """

    #: Values the int32 cells may take in before they are moved to the int64 summary.
    flush_every = np.iinfo(np.int32).max
    #: ``fold`` does the work before it returns (the runner gives it a thread of its own).
    asynchronous = False

    def __init__(self, law: Law, grid: Grid | None = None):
        grid = grid or Grid.for_law(law)
        self._summary = Summary(ref=law.mean, grid=grid)
        self._slope = grid.slope
        self._extremes = np.array([math.inf, -math.inf])
        self._counts = np.zeros(4, dtype=np.int64)  # finite, NaN, +Inf, -Inf
        self._cells = np.zeros(grid.cells + 2, dtype=np.int32)
        self._unflushed = 0
        self._previous: np.ndarray | None = None

    def fold(self, x) -> None:
        row_length = lag_of_rows(x.shape)
        x = as_host_array(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        nonfinite_before = self._counts[1:].sum()
        s = self._summary
        for start in range(0, x.size, self.flush_every):
            part = x[start : start + self.flush_every]
            if self._unflushed + part.size > self.flush_every:
                self._flush()
            g = s.grid
            _kernels.fold(
                part, s.ref, g.lo, g.segment_scale, g.cum, self._slope, s.sums, self._extremes, self._counts, self._cells
            )
            self._unflushed += part.size
        if self._counts[1:].sum() == nonfinite_before:
            self._fold_pairs(x, row_length)
        else:  # NaN or Inf poison products; the finite check has already failed
            self._previous = None

    def _fold_pairs(self, x: np.ndarray, row_length: int) -> None:
        """Lag-1 products within the draw and with the previous draw, which is
        kept as a copy: the framework may reuse the draw's memory."""
        previous = self._previous
        if previous is not None and (previous.shape != x.shape or previous.dtype != x.dtype):
            previous = None
        _kernels.pairs(x, previous, row_length, self._summary.ref, self._summary.pairs)
        if previous is None:
            previous = np.empty_like(x)
        np.copyto(previous, x)
        self._previous = previous

    def _flush(self) -> None:
        self._summary.hist += self._cells
        self._cells[:] = 0
        self._unflushed = 0

    def summary(self) -> Summary:
        self._flush()
        s = self._summary
        s.count, s.nan, s.posinf, s.neginf = (int(c) for c in self._counts)
        s.minimum, s.maximum = float(self._extremes[0]), float(self._extremes[1])
        return s


class PatternReducer:
    """Streaming statistics of 16-bit draws: every bit pattern counted exactly
    (see :mod:`initcheck.lowp`), on the host or, for torch tensors on a GPU, on
    the device in batches of draws; lag-1 pairs as for the other reducers."""

    def __init__(self, law: Law, dtype: str, device=None):
        from initcheck import lowp

        self._lowp, self._dtype, self._ref = lowp, dtype, law.mean
        self._patterns = np.zeros(lowp.PATTERNS, dtype=np.int64)
        self._pairs = np.zeros((3, 4))
        self._previous: np.ndarray | None = None
        self._device_counts = self._device_pairs = self._batches = None
        if device is not None:
            import torch

            from initcheck.reducers.backends.torch_reducer import Batches, TorchPairs

            self._device_counts = torch.zeros(lowp.PATTERNS, dtype=torch.int64, device=device)
            self._device_pairs = TorchPairs(device)
            self._batches = Batches(self._fold_device_batch, device)
        #: On a device, ``fold`` only queues work (see TorchReducer).
        self.asynchronous = device is not None

    def fold(self, x) -> None:
        if self._batches is not None:
            self._batches.add(x)
            return
        row_length = lag_of_rows(x.shape)
        patterns = self._lowp.as_patterns(x)
        _kernels.bit_patterns(patterns, self._patterns)
        values = self._lowp.pattern_values(self._dtype)[patterns]
        if np.isfinite(values).all():
            previous = self._previous if self._previous is not None and self._previous.shape == values.shape else None
            _kernels.pairs(values, previous, row_length, self._ref, self._pairs)
            self._previous = values
        else:
            self._previous = None

    def _fold_device_batch(self, x, row_length: int) -> None:
        """K torch draws, shape (K, n): bincount of the bit patterns, pairs in torch."""
        import torch

        self._device_counts += torch.bincount(x.view(torch.int16).reshape(-1).int() & 0xFFFF, minlength=self._lowp.PATTERNS)
        self._device_pairs.fold(x.double() - self._ref, row_length, torch.isfinite(x).all(1))

    def summary(self) -> Summary:
        patterns, pairs = self._patterns, self._pairs
        if self._batches is not None:
            self._batches.flush()
            patterns = patterns + self._device_counts.cpu().numpy()
            pairs = self._device_pairs.numpy()
        return self._lowp.pattern_summary(self._ref, self._dtype, patterns, pairs)
