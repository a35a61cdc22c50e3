"""Streaming statistics of JAX arrays, reduced by XLA on their device."""

from __future__ import annotations

import math

import jax
import numpy as np

from initcheck.reducers.shapes import batch_shape, lag_of_rows


class JaxReducer:
    """Streaming statistics of JAX arrays, computed by XLA on their device.

    The same quantities as :class:`~initcheck.reducers.HostReducer` (power sums
    about the law's mean, extremes, counts, the grid's histogram, lag-1 pair
    sums), in float64 on the device, folded a batch of draws at a time by one
    jitted function: draws (one per ``fold(x)``, or K at once with
    ``fold(x, draws=K)``) are stacked until a batch holds about
    ``batch_values`` values, so a 200,000-value draw costs one list append, not
    a dozen dispatches.  Non-finite values are masked as in the torch reducer:
    replaced by the reference point (nothing added to the power sums) and taken
    back out of the histogram cell it falls in.  Only the summary comes back to
    the host, at the end.  JAX GPU rows need no other framework.

    Compiles are what a JAX row waits for, so there is one per draw shape and
    dtype, shared by every row: the law and its grid are arguments of the fold,
    not constants, and a shorter batch (the row's last) is padded with rows of
    zeros that a count of valid draws masks out, so it reuses the same
    compiled fold.
    """

    #: ``fold`` only queues device work.
    asynchronous = True
    #: Values per batch (a fold's float64 temporaries take about 100 bytes a value).
    batch_values = 1 << 23

    def __init__(self, law, grid=None):
        from initcheck.grid import Grid
        from initcheck.summary import Summary

        grid = grid or Grid.for_law(law)
        self._summary = Summary(ref=law.mean, grid=grid)
        self._ref_cell = int(grid.cell_of(law.mean))
        self._pending: list = []  # (k, n) blocks of draws of one shape and dtype
        self._pending_draws = 0
        self._pending_kind = None  # (draw shape, dtype) of the pending draws
        self._state = None
        self._grid_arrays = None

    def fold(self, x, draws: int | None = None) -> None:
        """Queue one draw, or with ``draws=K`` the K draws stacked along x's
        first axis; a batch is split across device batches as it fills them."""
        count, draw_shape = batch_shape(x.shape, draws)
        n = math.prod(draw_shape)
        if count == 0 or n == 0:  # no values: nothing to add
            return
        kind = (draw_shape, x.dtype)
        if self._pending and self._pending_kind != kind:
            self._flush()
        self._pending_kind = kind
        block = x.reshape(count, n)
        capacity = self._draws_per_batch(n)
        done = 0
        while done < count:
            take = min(count - done, capacity - self._pending_draws)
            self._pending.append(block if take == count else block[done : done + take])
            self._pending_draws += take
            done += take
            if self._pending_draws >= capacity:
                self._flush()

    def _draws_per_batch(self, size: int) -> int:
        return max(1, -(-self.batch_values // max(size, 1)))

    def _flush(self) -> None:
        # float64 accumulators, without turning jax_enable_x64 on for the caller's process
        with jax.enable_x64(True):
            self._flush_x64()

    def _flush_x64(self) -> None:
        if not self._pending:
            return
        import jax.numpy as jnp

        blocks, count, (draw_shape, _) = self._pending, self._pending_draws, self._pending_kind
        self._pending, self._pending_draws = [], 0
        capacity = self._draws_per_batch(math.prod(draw_shape))
        batch = jnp.asarray(blocks[0]) if len(blocks) == 1 else jnp.concatenate(blocks)
        if count < capacity:
            batch = jnp.pad(batch, ((0, capacity - count), (0, 0)))  # rows of zeros, on the batch's device
        n = batch.shape[1]
        if self._state is None or self._state["previous"].shape[0] != n:
            self._state = self._fresh_state(n, batch)
        if self._grid_arrays is None:
            self._grid_arrays = self._arguments(batch)
        fold = _batch_fold(n, lag_of_rows(draw_shape), self._summary.grid.segments, self._summary.grid.cells)
        self._state = fold(self._state, batch, count, *self._grid_arrays)  # an int: placed with the batch

    def _arguments(self, like) -> tuple:
        """The law and grid as device arrays: ref, ref_cell, lo, segment_scale, cum, slope."""
        import jax.numpy as jnp

        grid = self._summary.grid
        with jax.default_device(next(iter(like.devices()))):
            return (jnp.float64(self._summary.ref), jnp.int32(self._ref_cell), jnp.float64(grid.lo),
                    jnp.float64(grid.segment_scale), jnp.asarray(grid.cum, jnp.float64),
                    jnp.asarray(grid.slope, jnp.float64))

    def _fresh_state(self, n: int, like) -> dict:
        """Zero accumulators on ``like``'s device, keeping those of an earlier
        draw shape (only the previous draw is dropped when the shape changes)."""
        import jax.numpy as jnp

        device = next(iter(like.devices()))
        old = self._state
        with jax.default_device(device):
            state = {
                "sums": jnp.zeros(4, jnp.float64),
                "extremes": jnp.array([math.inf, -math.inf], jnp.float64),
                "counts": jnp.zeros(4, jnp.int64),
                "hist": jnp.zeros(self._summary.grid.cells + 2, jnp.int64),
                "pairs": jnp.zeros((3, 4), jnp.float64),
                "previous": jnp.zeros(n, jnp.float64),
                "previous_clean": jnp.zeros((), bool),
            }
        if old is not None:
            state.update({k: old[k] for k in ("sums", "extremes", "counts", "hist", "pairs")})
        return state

    def summary(self):
        self._flush()
        with jax.enable_x64(True):
            return self._summary_x64()

    def _summary_x64(self):
        s = self._summary
        if self._state is None:
            return s
        state = {k: np.asarray(v) for k, v in self._state.items()}
        s.count, s.nan, s.posinf, s.neginf = (int(v) for v in state["counts"])
        s.sums = state["sums"].astype(np.float64)
        s.minimum, s.maximum = (float(v) for v in state["extremes"])
        s.hist = state["hist"].astype(np.int64)
        s.pairs = state["pairs"].astype(np.float64)
        return s


_folds: dict = {}


def _batch_fold(n: int, row_length: int, segments: int, cells: int):
    """The jitted fold of a (K, n) batch whose first ``valid`` rows are draws
    (the rest padding) into the state; one per draw shape, shared by every row
    and law, compiled once per K and dtype (see HostReducer for the
    quantities; the cell rule is the grid's, in float64)."""
    key = (n, row_length, segments, cells)
    if key not in _folds:
        _folds[key] = jax.jit(_fold_function(n, row_length, segments, cells))
    return _folds[key]


def _fold_function(n: int, row_length: int, segments: int, cells: int):
    import jax.numpy as jnp

    def pair_sums(a, b, clean):
        per_draw = jnp.stack([(a * b).sum(1), a.sum(1), b.sum(1), jnp.full(a.shape[0], float(a.shape[1]))], 1)
        return jnp.where(clean[:, None], per_draw, 0.0).sum(0)

    def fold(state, x, valid, ref, ref_cell, lo, segment_scale, cum, slope):
        real = jnp.arange(x.shape[0]) < valid  # the draws; the rest is padding
        finite = jnp.isfinite(x)  # padding is zeros: finite, and no NaN or Inf to count
        nonfinite_per_draw = n - finite.sum(1)
        nonfinite = nonfinite_per_draw.sum()
        nan, posinf = jnp.isnan(x).sum(), (x == jnp.inf).sum()
        counts = jnp.stack([valid.astype(jnp.int64) * n - nonfinite, nan, posinf, nonfinite - nan - posinf])
        kept = finite & real[:, None]
        values = jnp.where(kept, x.astype(jnp.float64), ref)
        d = values - ref
        d2 = d * d
        sums = jnp.stack([d.sum(), d2.sum(), (d2 * d).sum(), (d2 * d2).sum()])
        low = jnp.where(kept, values, jnp.inf).min()
        high = jnp.where(kept, values, -jnp.inf).max()
        t = (values - lo) * segment_scale
        j = jnp.clip(jnp.floor(t), 0, segments - 1)
        index = j.astype(jnp.int32)
        inner = jnp.minimum(jnp.floor(cum[index] + (t - j) * slope[index]), cells - 1) + 1
        cell = jnp.where(t < 0, 0, jnp.where(t >= segments, cells + 1, inner)).astype(jnp.int32)
        hist = jnp.bincount(cell.ravel(), length=cells + 2).astype(jnp.int64)
        # masked values (non-finite, padding) all sit at ref: take them back out
        hist = hist.at[ref_cell].add(-(x.size - kept.sum()))
        clean = (nonfinite_per_draw == 0) & real
        zero = jnp.zeros(4, jnp.float64)
        chain = jnp.concatenate([state["previous"][None], d])
        chain_clean = jnp.concatenate([state["previous_clean"][None], clean])
        pairs = jnp.stack([
            pair_sums(d[:, :-1], d[:, 1:], clean) if n > 1 else zero,
            pair_sums(d[:, :-row_length], d[:, row_length:], clean) if 0 < row_length < n else zero,
            pair_sums(chain[:-1], chain[1:], chain_clean[:-1] & chain_clean[1:]),
        ])
        last = valid - 1
        return {
            "sums": state["sums"] + sums,
            "extremes": jnp.stack([jnp.minimum(state["extremes"][0], low), jnp.maximum(state["extremes"][1], high)]),
            "counts": state["counts"] + counts,
            "hist": state["hist"] + hist,
            "pairs": state["pairs"] + pairs,
            "previous": d[last],
            "previous_clean": clean[last],
        }

    return fold
