"""Fold draws into a :class:`~initcheck.summary.Summary` where they live.

A reducer owns the running statistics of one row.  ``fold(x)`` adds one draw and
keeps nothing of it; ``summary()`` returns the host-side :class:`Summary`.

* :class:`HostReducer` handles every array that lives in host memory (NumPy,
  CPU tensors of PyTorch/TensorFlow/JAX, seen as NumPy without a copy).  Its
  kernel (``initcheck/_kernels.c``) makes one pass over the draw and releases
  the GIL, so the runner folds draw i on one core while the framework samples
  draw i+1 on the other.  Power sums are accumulated in float64 whatever the
  sample dtype.
* Arrays on an accelerator are reduced on that accelerator by the framework's
  own reducer (``initcheck.frameworks.pytorch.TorchReducer``); only scalars and
  the histogram come back to the host, once, at the end.

:func:`reducer_for` picks the right one from the first draw of a row.
"""

from __future__ import annotations

import math

import numpy as np

from initcheck import _kernels
from initcheck.laws import Law
from initcheck.summary import HIST_BINS, Summary


def as_host_array(x) -> np.ndarray:
    """A flat NumPy view of a host array (no copy where the layout allows)."""
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    return np.ravel(np.asarray(x))


class HostReducer:
    """Streaming statistics of host arrays, one pass of ``_kernels.fold`` per draw.

    The kernel counts cells in an int32 histogram (half the cache footprint of
    int64, which is what the scattered adds cost); it is moved into the int64
    summary before any cell could reach 2^31.
    """

    #: Values the int32 cells may take in before they are moved to the int64 summary.
    flush_every = np.iinfo(np.int32).max

    def __init__(self, law: Law, bins: int = HIST_BINS):
        lo, hi = law.grid()
        self._summary = Summary(ref=law.mean, lo=lo, hi=hi, bins=bins)
        self._scale = bins / (hi - lo)
        self._extremes = np.array([math.inf, -math.inf])
        self._counts = np.zeros(4, dtype=np.int64)  # finite, NaN, +Inf, -Inf
        self._cells = np.zeros(bins + 2, dtype=np.int32)
        self._unflushed = 0

    def fold(self, x) -> None:
        x = as_host_array(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        s = self._summary
        for start in range(0, x.size, self.flush_every):
            part = x[start : start + self.flush_every]
            if self._unflushed + part.size > self.flush_every:
                self._flush()
            _kernels.fold(part, s.ref, s.lo, self._scale, s.bins, s.sums, self._extremes, self._counts, self._cells)
            self._unflushed += part.size

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


def reducer_for(sample, law: Law):
    """The reducer for rows whose draws look like ``sample``."""
    if type(sample).__module__.startswith("torch") and sample.device.type != "cpu":
        from initcheck.frameworks.pytorch import TorchReducer

        return TorchReducer(law, device=sample.device)
    return HostReducer(law)
