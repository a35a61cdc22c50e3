"""Streaming statistics of torch tensors on their own device.

:class:`TorchReducer` folds tensors that live on an accelerator where they
live, without a host synchronization per draw; JAX and TensorFlow draws on a
GPU come in through DLPack.  :class:`Batches` stacks small draws so that a
fold's fixed launch cost is paid once per batch, and :class:`TorchPairs` keeps
the lag-1 pair sums on the device.
"""

from __future__ import annotations

import math

import torch

from initcheck.grid import Grid
from initcheck.laws import Law
from initcheck.reducers.shapes import batch_shape, lag_of_rows
from initcheck.summary import Summary


def as_torch(x) -> torch.Tensor:
    """A torch view of a PyTorch, JAX or TensorFlow array, on its own device (DLPack)."""
    if isinstance(x, torch.Tensor):
        return x
    if type(x).__module__.startswith("tensorflow"):
        import tensorflow as tf

        return torch.from_dlpack(tf.experimental.dlpack.to_dlpack(x))
    return torch.from_dlpack(x)


class Batches:
    """Stacks small draws of one shape into ``(K, n)`` device tensors.

    A fold costs a few dozen kernel launches whatever its size, so folding a
    200,000-value draw at a time leaves a GPU idle behind the launch queue.
    Draws are copied into a staging tensor of about ``values`` values and handed
    to ``fold_batch(batch, row_length)`` when it is full, when the draw shape
    changes, or at :meth:`flush`.  Draws that fill half a batch or more, alone
    or as a batch of their own (``add(x, draws=K)``), are folded without a copy,
    at most ``values`` values at a time."""

    #: Values per batch: a fold's float64 temporaries take about 100 bytes a value (~0.8 GB).
    values = 1 << 23

    def __init__(self, fold_batch, device):
        self._fold_batch, self._device = fold_batch, torch.device(device)
        self._stage: torch.Tensor | None = None
        self._staged = 0
        self._row_length = 0

    def add(self, x, draws: int | None = None) -> None:
        """Add one draw, or with ``draws=K`` the K draws stacked along x's first
        axis: torch tensors, or JAX or TensorFlow arrays (DLPack)."""
        x = as_torch(x)
        count, draw_shape = batch_shape(x.shape, draws)
        n = math.prod(draw_shape)
        if count == 0 or n == 0:  # no values: nothing to add
            return
        row_length = lag_of_rows(draw_shape)
        block = x.detach().reshape(count, n).to(self._device)
        if 2 * count * n >= self.values:
            self.flush()
            per_batch = max(1, self.values // max(n, 1))
            for start in range(0, count, per_batch):
                self._fold_batch(block[start : start + per_batch], row_length)
            return
        done = 0
        while done < count:
            stage = self._stage
            if stage is None or stage.shape[1] != n or stage.dtype != block.dtype or self._row_length != row_length:
                self.flush()
                self._stage = stage = torch.empty((self.values // n, n), dtype=block.dtype, device=self._device)
                self._row_length = row_length
            take = min(count - done, stage.shape[0] - self._staged)
            stage[self._staged : self._staged + take].copy_(block[done : done + take])
            self._staged += take
            done += take
            if self._staged == stage.shape[0]:
                self.flush()

    def flush(self) -> None:
        """Fold whatever is staged."""
        if self._staged:
            self._fold_batch(self._stage[: self._staged], self._row_length)
            self._staged = 0


class TorchPairs:
    """Lag-1 product sums (see :class:`~initcheck.reducers.HostReducer`) of
    centred draws on their device: within each draw, between its rows, and
    between consecutive draws.  A draw holding NaN or Inf adds none and is no
    one's neighbour; the flags saying so stay on the device: no sync per draw."""

    def __init__(self, device):
        self._device = torch.device(device)
        self._sums = torch.zeros((3, 4), dtype=torch.float64, device=self._device)
        self._previous: torch.Tensor | None = None  # the last draw folded, (1, n)
        self._previous_clean = torch.zeros(1, dtype=torch.bool, device=self._device)

    @staticmethod
    def _pair_sums(a: torch.Tensor, b: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        """[sum ab, sum a, sum b, count] over the rows of a and b where ``clean``."""
        per_draw = torch.stack([(a * b).sum(1), a.sum(1), b.sum(1), torch.full_like(a[:, 0], a.shape[1])], dim=1)
        return torch.where(clean[:, None], per_draw, 0.0).sum(0)

    def fold(self, d: torch.Tensor, row_length: int, clean: torch.Tensor) -> None:
        """Add the pairs of ``d``, K draws of n values minus the law's mean, shape
        (K, n); ``clean``, shape (K,), says which draws are all finite."""
        n = d.shape[1]
        zero = torch.zeros(4, dtype=torch.float64, device=self._device)
        chain, chain_clean = d, clean
        if self._previous is not None and self._previous.shape[1] == n:
            chain, chain_clean = torch.cat([self._previous, d]), torch.cat([self._previous_clean, clean])
        self._sums += torch.stack([
            self._pair_sums(d[:, :-1], d[:, 1:], clean) if n > 1 else zero,
            self._pair_sums(d[:, :-row_length], d[:, row_length:], clean) if 0 < row_length < n else zero,
            self._pair_sums(chain[:-1], chain[1:], chain_clean[:-1] & chain_clean[1:]) if len(chain) > 1 else zero,
        ])
        self._previous, self._previous_clean = d[-1:].clone(), clean[-1:]

    def numpy(self):
        return self._sums.cpu().numpy().copy()


class TorchReducer:
    """Streaming statistics of torch tensors, computed on the tensor's device.

    The same quantities as :class:`~initcheck.reducers.HostReducer`, with torch
    ops and float64 accumulators on the device, folded a batch of draws at a
    time (:class:`Batches`).  JAX and TensorFlow draws on a GPU come in through
    DLPack, without a copy.  Non-finite values are masked rather than removed
    (removing them would need a device-to-host sync): they are replaced by the
    reference point, which adds nothing to the power sums, and taken back out of
    the histogram cell the reference point falls in.
    """

    #: ``fold`` only queues device work and returns (on a CPU device it computes).
    asynchronous = True

    def __init__(self, law: Law, device, grid: Grid | None = None):
        grid = grid or Grid.for_law(law)
        self._summary = Summary(ref=law.mean, grid=grid)
        self._device = torch.device(device)
        f64 = {"dtype": torch.float64, "device": self._device}
        self._cum = torch.tensor(grid.cum, **f64)
        self._slope = torch.tensor(grid.slope, **f64)
        self._ref_cell = int(grid.cell_of(law.mean))
        self._sums = torch.zeros(4, **f64)
        self._extremes = torch.tensor([math.inf, -math.inf], **f64)
        self._counts = torch.zeros(4, dtype=torch.int64, device=self._device)  # finite, nan, +inf, -inf
        self._hist = torch.zeros(grid.cells + 2, dtype=torch.int64, device=self._device)
        self._pairs = TorchPairs(self._device)
        self._batches = Batches(self._fold_batch, self._device)

    def _cells(self, values: torch.Tensor) -> torch.Tensor:
        """The grid's cell rule (initcheck/grid.py), with the same float64 rounding."""
        grid = self._summary.grid
        t = (values - grid.lo) * grid.segment_scale
        j = t.floor().clamp_(0, grid.segments - 1)
        index = j.long()
        inner = (self._cum[index] + (t - j) * self._slope[index]).floor_().clamp_(max=grid.cells - 1) + 1
        below, above = t < 0, t >= grid.segments
        return torch.where(below, 0.0, torch.where(above, float(grid.cells + 1), inner)).long()

    def fold(self, x, draws: int | None = None) -> None:
        """Queue one draw, or with ``draws=K`` the K draws stacked along x's first axis."""
        self._batches.add(x, draws)

    def _fold_batch(self, x: torch.Tensor, row_length: int) -> None:
        """Fold K draws of n values, shape (K, n)."""
        ref = self._summary.ref
        finite = torch.isfinite(x)
        nonfinite_per_draw = x.shape[1] - finite.sum(1)
        nonfinite = nonfinite_per_draw.sum()
        nan = torch.isnan(x).sum()
        posinf = (x == math.inf).sum()
        self._counts += torch.stack([x.numel() - nonfinite, nan, posinf, nonfinite - nan - posinf])
        values = torch.where(finite, x.double(), ref)
        d = values - ref
        d2 = d * d
        self._sums += torch.stack([d.sum(), d2.sum(), (d2 * d).sum(), (d2 * d2).sum()])
        low = torch.where(finite, values, math.inf).min()
        high = torch.where(finite, values, -math.inf).max()
        self._extremes = torch.stack([torch.minimum(self._extremes[0], low), torch.maximum(self._extremes[1], high)])
        self._hist += torch.bincount(self._cells(values).reshape(-1), minlength=self._summary.grid.cells + 2)
        self._hist[self._ref_cell] -= nonfinite
        self._pairs.fold(d, row_length, nonfinite_per_draw == 0)

    def summary(self) -> Summary:
        self._batches.flush()
        s = self._summary
        s.count, s.nan, s.posinf, s.neginf = (int(v) for v in self._counts.cpu())
        s.sums = self._sums.cpu().numpy().copy()
        s.minimum, s.maximum = (float(v) for v in self._extremes.cpu())
        s.hist = self._hist.cpu().numpy().copy()
        s.pairs = self._pairs.numpy()
        return s
