"""Streaming statistics of JAX arrays, reduced by XLA on their device."""

from __future__ import annotations

import math

import jax
import numpy as np

from initcheck.reducers.backends.device_structure import DRAW_SLOTS, FMIX1, FMIX2, GRAM_STORE, SALT, StructureLayout
from initcheck.reducers.shapes import PAIR_PREFIX, batch_shape, lag_of_rows


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
    the host, at the end, but for the structure statistics' few numbers a batch
    (:class:`JaxStructure`).  JAX GPU rows need no other framework.

    Compiles are what a JAX row waits for, so there is one per draw shape and
    dtype, shared by every row: the law and its grid are arguments of the fold,
    not constants, and a shorter batch (the row's last) is padded with rows of
    zeros that a count of valid draws masks out, so it reuses the same
    compiled fold.
    """

    #: ``fold`` queues device work; only the batch being folded is waited for,
    #: once, by the structure statistics (:class:`JaxStructure`).
    asynchronous = True
    #: Values per batch (a fold's float64 temporaries take about 100 bytes a value).
    batch_values = 1 << 23

    def __init__(self, law, grid=None, expected_values: int | None = None):
        from initcheck.grid import Grid
        from initcheck.summary import Summary

        grid = grid or Grid.for_law(law)
        self._summary = Summary(ref=law.mean, grid=grid)
        self._ref_cell = int(grid.cell_of(law.mean))
        self._pending: list = []  # (k, n) blocks of draws of one shape and dtype
        self._pending_draws = 0
        self._pending_kind = None  # (draw shape, dtype) of the pending draws
        self._state = None
        self._state_size = 0  # the draw size n the state's previous draw has
        self._grid_arrays = None
        self._structure = JaxStructure(law.mean, expected_values)

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
        if self._state is None or self._state_size != n:
            self._state, self._state_size = self._fresh_state(n, batch), n
        if self._grid_arrays is None:
            self._grid_arrays = self._arguments(batch)
        fold = _batch_fold(n, lag_of_rows(draw_shape), self._summary.grid.segments, self._summary.grid.cells)
        self._state, clean = fold(self._state, batch, count, *self._grid_arrays)  # an int: placed with the batch
        self._structure.fold(batch, clean, draw_shape, self._grid_arrays[0])

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
                "previous": jnp.zeros(min(n, PAIR_PREFIX), jnp.float64),  # what consecutive draws pair
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
        s.structure = self._structure.result()
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
    quantities; the cell rule is the grid's, in float64).  It returns the new
    state and which rows are draws holding no NaN or Inf."""
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
        head = d[:, : min(n, PAIR_PREFIX)]  # consecutive draws pair their first PAIR_PREFIX positions
        between = pair_sums(state["previous"][None], head[:1], state["previous_clean"][None] & clean[:1])
        if x.shape[0] > 1:
            between = between + pair_sums(head[:-1], head[1:], clean[:-1] & clean[1:])
        pairs = jnp.stack([
            pair_sums(d[:, :-1], d[:, 1:], clean) if n > 1 else zero,
            pair_sums(d[:, :-row_length], d[:, row_length:], clean) if 0 < row_length < n else zero,
            between,
        ])
        last = valid - 1
        return {
            "sums": state["sums"] + sums,
            "extremes": jnp.stack([jnp.minimum(state["extremes"][0], low), jnp.maximum(state["extremes"][1], high)]),
            "counts": state["counts"] + counts,
            "hist": state["hist"] + hist,
            "pairs": state["pairs"] + pairs,
            "previous": head[last],
            "previous_clean": clean[last],
        }, clean

    return fold


class JaxStructure:
    """The structure statistics (:mod:`initcheck.structure`) of JAX draws, by
    XLA on their device: the same :class:`~initcheck.structure.Structure` as
    :class:`~initcheck.structure.StructureFolder` gives for the same draws
    (laid out by :class:`~initcheck.reducers.backends.device_structure.StructureLayout`).

    Its sums are float64 arrays on the device until :meth:`result`; the grams
    are selected on the device, and only the selected ones' values, with the
    batch's count of finite draws and a few stream values, come to the host
    (a sync per batch).  A batch is one jitted call (sums and selection, one
    compile per draw shape and per size of the selection's output, which
    follows the selection rate); a batch that selects more than that output
    holds takes a second, exact pass.  As on the host, a row whose finite
    draws change shape (or item size) keeps no structure.  Float32 draws are 4-byte values of the gram stream, every other dtype
    is read as float64 (as the host reducer reads them).  Call it with
    jax_enable_x64 on."""

    def __init__(self, ref: float, expected_values: int | None = None):
        self._ref, self._expected = float(ref), expected_values
        self._layout: StructureLayout | None = None
        self._mixed = False  # draws of another shape came: no structure
        self._sums: dict | None = None

    def fold(self, x, clean, draw_shape, ref) -> None:
        """Fold the rows of the (K, n) batch ``x`` that ``clean`` (K,) marks
        (draws of shape ``draw_shape`` holding no NaN or Inf; padding rows are
        not clean); ``ref``, the law's mean, as a device scalar."""
        import jax.numpy as jnp

        draw_shape = tuple(int(s) for s in draw_shape)
        itemsize = 4 if x.dtype == jnp.float32 else 8
        layout = self._layout
        if self._mixed:
            return
        kept = int(clean.sum())  # the sync the sums need (the draw slots' width, the stream's length)
        if kept == 0:
            return
        if layout is not None and (layout.shape, layout.itemsize) != (draw_shape, itemsize):
            self._mixed, self._layout, self._sums = True, None, None
            return
        if layout is None:
            layout = self._layout = StructureLayout(self._ref, draw_shape, itemsize, self._expected)
            self._sums = _zero_sums(layout, next(iter(x.devices())))
        sums = self._sums
        for _ in range(layout.doublings(kept)):
            for name in ("slot_count", "slot_s1", "slot_s2"):
                pairs = sums[name][:DRAW_SLOTS].reshape(-1, 2).sum(1)
                sums[name] = jnp.zeros_like(sums[name]).at[: len(pairs)].set(pairs)
        store, k, valid = layout.store, layout.k, kept * layout.size
        capacity = _capacity(valid * store.threshold / 2.0**32 * 1.5 + 64)
        self._sums, found, *selected, head, tail = _structure_step(layout, capacity)(
            sums, x, clean, ref, layout.draws, layout.width, valid, store.threshold)
        known = min(valid, k - 1)
        layout.junction(np.asarray(head)[:known])  # may lower the threshold: selected below is filtered by it
        found = int(found)
        if found > capacity:  # more than the output holds: count again, fewer while they outnumber 4 x the store
            while True:
                found = int(_gram_select(layout, 1024)(x, clean, valid, store.threshold)[0])
                if found <= 4 * GRAM_STORE:
                    break
                store.halve()
            selected = _gram_select(layout, _capacity(found))(x, clean, valid, store.threshold)[1:]
        first, chosen, windows = (np.asarray(a)[:found] for a in selected)
        keep = chosen < store.threshold
        layout.add_grams(first[keep], windows[keep], chosen[keep])
        layout.advance(valid, np.asarray(tail)[k - 1 - known :])
        layout.draws += kept

    def result(self):
        """The Structure of the draws folded so far (None before a finite one,
        or when they changed shape)."""
        if self._layout is None:
            return None
        totals = {name: np.asarray(v) for name, v in self._sums.items()}
        return self._layout.result(totals)


def _capacity(expected: float) -> int:
    """The selection's output size for about ``expected`` grams: a power of two
    (few sizes, few compiles), at least 1024, at most 4 x the store (a batch
    that selects more halves the rate first)."""
    wanted = max(1024, int(expected))
    return min(1 << (wanted - 1).bit_length(), 1 << max(10, (4 * GRAM_STORE - 1).bit_length()))


def _zero_sums(layout: StructureLayout, device) -> dict:
    import jax.numpy as jnp

    with jax.default_device(device):
        zeros = lambda size: jnp.zeros(size, jnp.float64)  # noqa: E731
        sums = {name: zeros(DRAW_SLOTS + 1) for name in ("slot_count", "slot_s1", "slot_s2")}
        if layout.elements:
            sums.update(e1=zeros(layout.size), e2=zeros(layout.size))
        else:
            sums.update(g1=zeros(layout.groups), g2=zeros(layout.groups), p1=zeros(layout.prefix), p2=zeros(()))
            if layout.columns:
                sums.update(c1=zeros(layout.columns), c2=zeros(layout.columns))
    return sums


def _sums_of(layout: StructureLayout):
    """``(sums, x, clean, ref, draws, width) -> sums``, traced: the batch's
    finite draws added to the structure's sums (see StructureLayout), ``draws``
    the finite draws before this batch and ``width`` the draw slots' width."""
    import jax.numpy as jnp

    n, rows, length, prefix = layout.size, layout.rows, layout.row_length, layout.prefix
    elements, tail, columns, run_group = layout.elements, layout.tail, layout.columns, layout.run_group

    def fold(sums, x, clean, ref, draws, width):
        w = clean.astype(jnp.float64)  # finite draws weigh 1, the others (and padding) 0
        d = jnp.where(jnp.isfinite(x), x.astype(jnp.float64) - ref, 0.0)
        d2 = d * d
        out = dict(sums)
        if elements:
            out["e1"], out["e2"] = sums["e1"] + w @ d, sums["e2"] + w @ d2
            r1, r2 = d.sum(1), d2.sum(1)
        else:
            k, whole = x.shape[0], rows * length
            g1 = d[:, :whole].reshape(k, rows, length).sum(2)
            g2 = d2[:, :whole].reshape(k, rows, length).sum(2)
            if tail:  # a long vector's last, short block
                g1 = jnp.concatenate([g1, d[:, whole:].sum(1, keepdims=True)], 1)
                g2 = jnp.concatenate([g2, d2[:, whole:].sum(1, keepdims=True)], 1)
            r1, r2 = g1.sum(1), g2.sum(1)
            g1, g2 = w @ g1, w @ g2
            if run_group is not None:  # more rows than groups: rows into contiguous groups
                group = jnp.asarray(run_group)
                out["g1"], out["g2"] = sums["g1"].at[group].add(g1), sums["g2"].at[group].add(g2)
            else:
                out["g1"], out["g2"] = sums["g1"] + g1, sums["g2"] + g2
            if columns:
                out["c1"] = sums["c1"] + (w @ d).reshape(rows, length).sum(0)
                out["c2"] = sums["c2"] + (w @ d2).reshape(rows, length).sum(0)
            out["p1"] = sums["p1"] + w @ d[:, :prefix]
            out["p2"] = sums["p2"] + w @ d2[:, :prefix].sum(1)
        rank = jnp.cumsum(clean.astype(jnp.int64)) - 1
        slot = jnp.where(clean, (draws + rank) // width, DRAW_SLOTS)  # the others: a slot never read
        out["slot_s1"] = sums["slot_s1"].at[slot].add(r1)
        out["slot_s2"] = sums["slot_s2"].at[slot].add(r2)
        out["slot_count"] = sums["slot_count"].at[slot].add(w * n)
        return out

    return fold


def _stream(x, clean, itemsize: int):
    """The gram stream of a batch, traced: the bits of its clean rows, in
    order, flat (the other rows' places at the end, beyond the valid length)."""
    import jax.numpy as jnp

    values = x if x.dtype == (jnp.float32 if itemsize == 4 else jnp.float64) else x.astype(jnp.float64)
    bits = jax.lax.bitcast_convert_type(values, jnp.uint32 if itemsize == 4 else jnp.uint64)
    order = jnp.nonzero(clean, size=clean.shape[0], fill_value=0)[0]
    return bits[order].reshape(-1)


def _selected(s, valid, threshold, k: int, itemsize: int, capacity: int):
    """Traced: (how many, offsets, hashes, values (capacity, k)) of the grams
    of the stream's first ``valid`` values that the selection hash of
    ``_kernels.c`` ``grams`` puts below ``threshold``; the first ``capacity``."""
    import jax.numpy as jnp

    a = s & jnp.asarray((1 << (8 * itemsize - 1)) - 1, s.dtype)  # the bits without sign
    folded = (a ^ (a >> 32)) if itemsize == 8 else a
    h = (folded & 0xFFFFFFFF).astype(jnp.uint32) + jnp.uint32(SALT)  # uint32: wraps as in C
    h = h ^ (h >> 16)
    h = h * jnp.uint32(FMIX1)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(FMIX2)
    h = (h ^ (h >> 16)).astype(jnp.int64)
    chosen = (h < threshold) & (jnp.arange(s.shape[0]) <= valid - k)  # grams wholly in the valid values
    first = jnp.nonzero(chosen, size=capacity, fill_value=0)[0]
    window = jnp.minimum(first[:, None] + jnp.arange(k), s.shape[0] - 1)
    return chosen.sum(), first, h[first], s[window]


_structure_steps: dict = {}


def _structure_step(layout: StructureLayout, capacity: int):
    """One jitted call a batch: ``(sums, x, clean, ref, draws, width, valid,
    threshold) -> (sums, found, offsets, hashes, values, head, tail)``: the
    sums (:func:`_sums_of`), the grams selected at ``threshold`` among the
    stream's first ``valid`` values (:func:`_selected`), and the stream's first
    and last k - 1 values."""
    key = (layout.shape, layout.itemsize, capacity)
    if key not in _structure_steps:
        import jax.numpy as jnp

        sums_of, k, itemsize = _sums_of(layout), layout.k, layout.itemsize

        def step(sums, x, clean, ref, draws, width, valid, threshold):
            s = _stream(x, clean, itemsize)
            size = s.shape[0]
            head = s[jnp.minimum(jnp.arange(k - 1), size - 1)]
            tail = s[jnp.clip(valid - (k - 1) + jnp.arange(k - 1), 0, size - 1)]
            return (sums_of(sums, x, clean, ref, draws, width), *_selected(s, valid, threshold, k, itemsize, capacity),
                    head, tail)

        _structure_steps[key] = jax.jit(step)
    return _structure_steps[key]


def _gram_select(layout: StructureLayout, capacity: int):
    """Jitted ``(x, clean, valid, threshold) -> (found, offsets, hashes,
    values)`` (:func:`_selected`), for a batch that selects more than its step's output holds."""
    key = ("select", layout.itemsize, layout.k, capacity)
    if key not in _structure_steps:
        k, itemsize = layout.k, layout.itemsize

        def select(x, clean, valid, threshold):
            return _selected(_stream(x, clean, itemsize), valid, threshold, k, itemsize, capacity)

        _structure_steps[key] = jax.jit(select)
    return _structure_steps[key]
