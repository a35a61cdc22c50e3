"""Streaming statistics of JAX arrays, reduced by XLA on their device."""

from __future__ import annotations

import math

import jax
import numpy as np

from initcheck.reducers.backends.device_structure import DRAW_SLOTS, FMIX1, FMIX2, GRAM_STORE, SALT, StructureLayout
from initcheck.reducers.shapes import PAIR_PREFIX, batch_shape, lag_of_rows
from initcheck.structure import ELEMENTS

#: A draw of more values than this is folded a part of about this many values
#: (whole rows) at a time (:meth:`JaxReducer._fold_large`): its float64
#: temporaries stay near 0.4 GB however large the draw.  Smaller draws are batched.
PART = 1 << 22


def run_length(draw_shape) -> int:
    """The runs a large draw's parts are made of: its rows (a 1-d draw: the
    structure's blocks), so that no row and no structure block is cut."""
    n = math.prod(draw_shape)
    if len(draw_shape) >= 2:
        return max(1, n // draw_shape[0])
    return math.ceil(n / ELEMENTS) if n > ELEMENTS else 1


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

    A draw of more than :data:`PART` values is not batched: it is folded a
    part at a time, each part sliced out of it (:meth:`_fold_large`), so no
    float64 temporary is much larger than a part, whatever the draw's size.
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
        if n > PART:  # one draw at a time, in parts: never a float64 copy of a whole draw
            self._flush()
            with jax.enable_x64(True):
                for i in range(count):
                    self._fold_large(x, i if len(x.shape) > len(draw_shape) else None, draw_shape)
            return
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

    def _fold_large(self, x, index, draw_shape) -> None:
        """Fold draw ``x[index]`` (``x`` itself for None) of more than PART
        values, a part of whole runs (:func:`run_length`) at a time, each part
        sliced out of ``x`` (no copy of the whole draw), with the statistics of
        the draw folded whole.  Whether it holds NaN or Inf is decided first (a
        part at a time, one sync): such a draw adds no pairs and no structure,
        and is no one's neighbour.  Call with jax_enable_x64 on."""
        import jax.numpy as jnp

        n, row_length = math.prod(draw_shape), lag_of_rows(draw_shape)
        step = max(1, PART // run_length(draw_shape)) * run_length(draw_shape)
        part = _slicer(x, index, draw_shape)
        bounds = [(a, min(n, a + step)) for a in range(0, n, step)]
        finite = None
        for a, b in bounds:
            ok = _all_finite(part(a, b))
            finite = ok if finite is None else finite & ok
        clean = bool(finite)  # the one sync: decided before anything is added
        first = part(*bounds[0])
        if self._state is None or self._state_size != n:
            self._state, self._state_size = self._fresh_state(n, first), n
        if self._grid_arrays is None:
            self._grid_arrays = self._arguments(first)
        state, structure = self._state, self._structure
        structured = clean and structure.begin_draw(first, draw_shape)
        layout = structure.layout_for(first, draw_shape)  # sums to pass (a draw with NaN adds nothing to them)
        prefix = min(n, PAIR_PREFIX)
        before = jnp.zeros(max(row_length, 1), jnp.float64)  # the values before a part
        upcoming = jnp.zeros(prefix, jnp.float64)  # the draw's first positions: the next draw's neighbour
        for a, b in bounds:
            p = part(a, b)
            statics = {}
            capacity = 0
            if layout is not None:
                statics.update(structure.part_statics(a, b))
                capacity = _capacity((b - a) * layout.store.threshold / 2.0**32 * 1.5 + 64)
            step_of = _part_step(self._summary.grid.segments, self._summary.grid.cells, row_length, n, prefix,
                                 layout, capacity)
            sums, draw = structure.part_sums() if layout is not None else (None, None)
            threshold = layout.store.threshold if layout is not None else 0
            state, sums, draw, before, upcoming, selected = step_of(
                state, sums, draw, p, before, upcoming, clean, threshold, a, *self._grid_arrays, **statics)
            if structured:
                structure.take_part(p, sums, draw, selected)
        if clean:
            state = dict(state, previous=upcoming, previous_clean=jnp.ones((), bool))
        else:
            state = dict(state, previous_clean=jnp.zeros((), bool))
        if structured:
            structure.end_draw()
        self._state = state

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
    key = (n, row_length, segments, cells, PAIR_PREFIX)
    if key not in _folds:
        _folds[key] = jax.jit(_fold_function(n, row_length, segments, cells))
    return _folds[key]


def _value_sums(x, kept, ref, ref_cell, lo, segment_scale, cum, slope, segments: int, cells: int):
    """Traced: the power sums, extremes and cell counts of the values of x that
    ``kept`` marks (the others sit at ref and are taken back out of its cell);
    with d = x - ref (0 where not kept) and d^2."""
    import jax.numpy as jnp

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
    return sums, low, high, hist, d, d2


def _flat_pairs(a, b):
    """Traced: [sum ab, sum a, sum b, count] of two 1-d arrays."""
    import jax.numpy as jnp

    return jnp.stack([(a * b).sum(), a.sum(), b.sum(), jnp.float64(a.shape[0])])


_part_helpers: dict = {}


def _slicer(x, index, draw_shape):
    """``part(a, b)``: the values a..b-1 of draw ``x[index]`` (``x`` for None),
    flat, sliced out of x by one jitted dynamic slice (one compile per part
    size); a and b are whole rows of a draw of two or more axes."""
    from jax import lax

    import jax.numpy as jnp

    n = math.prod(draw_shape)
    if not isinstance(x, jax.Array):  # a host array: its parts go to the device one at a time
        host = np.asarray(x).reshape((-1, n) if index is not None else (n,))
        return lambda a, b: jnp.asarray(host[a:b] if index is None else host[index, a:b])
    row = n // draw_shape[0] if len(draw_shape) >= 2 else 1
    lead = () if index is None else (index,)

    def part(a, b):
        sizes = (1,) * len(lead) + ((b - a) // row,) + tuple(x.shape[len(lead) + 1 :])
        key = ("slice", tuple(x.shape), sizes)
        if key not in _part_helpers:
            _part_helpers[key] = jax.jit(lambda x, starts: lax.dynamic_slice(x, starts, sizes).reshape(-1))
        starts = (*lead, a // row) + (0,) * (len(sizes) - len(lead) - 1)
        return _part_helpers[key](x, starts)

    return part


def _lead(d, start, size: int):
    """Traced: (the values of the part d, at positions start.. of its draw,
    that fall among the draw's first ``size`` positions, placed there (0
    elsewhere); which of those positions they fill)."""
    import jax.numpy as jnp

    i = jnp.arange(size) - start
    inside = (i >= 0) & (i < d.shape[0])
    return jnp.where(inside, d[jnp.clip(i, 0, d.shape[0] - 1)], 0.0), inside


def _pairs_of(row_length: int, n: int, prefix: int):
    """Traced ``(pairs, previous, previous_clean, d, before, upcoming, clean,
    start) -> (pairs, before, upcoming)``: the pairs of a large draw, when
    ``clean``, that end in the part d, its values start.. (within it, with
    ``before``, the max(row_length, 1) values before it, unless start is 0,
    and where it reaches into the draw's first ``prefix`` positions, those
    with the previous draw's, written into ``upcoming``, the next draw's
    neighbour); and the next part's ``before``.  Every part of a size takes
    the same compiled code (the draw's first positions: a ``lax.cond``)."""
    import jax.numpy as jnp
    from jax import lax

    def head_pairs(previous, d, upcoming, start):
        v, inside = _lead(d, start, prefix)
        a = jnp.where(inside, previous, 0.0)
        return jnp.stack([(a * v).sum(), a.sum(), v.sum(), inside.sum()]), jnp.where(inside, v, upcoming)

    def no_head(previous, d, upcoming, start):
        return jnp.zeros(4, jnp.float64), upcoming

    def pairs_of(pairs, previous, previous_clean, d, before, upcoming, clean, start):
        zero = jnp.zeros(4, jnp.float64)
        m = d.shape[0]
        joined = start > 0  # the part after another: pairs across their boundary
        within = _flat_pairs(d[:-1], d[1:]) if m > 1 else zero
        within = within + jnp.where(joined, _flat_pairs(before[-1:], d[:1]), 0.0)
        rows = zero
        if 0 < row_length < n:
            if m > row_length:
                rows = _flat_pairs(d[:-row_length], d[row_length:])
            rows = rows + jnp.where(joined, _flat_pairs(before[-row_length:], d[:row_length]), 0.0)
        between, upcoming = lax.cond(start < prefix, head_pairs, no_head, previous, d, upcoming, start)
        between = jnp.where(previous_clean, between, 0.0)
        added = jnp.where(clean, jnp.stack([within, rows, between]), 0.0)
        return pairs + added, d[-max(row_length, 1) :], upcoming

    return pairs_of


@jax.jit
def _all_finite(x):
    import jax.numpy as jnp

    return jnp.isfinite(x).all()


def _moments_of(segments: int, cells: int):
    """Traced ``(state, part, ref, ref_cell, lo, segment_scale, cum, slope) ->
    (state, d, d^2)``: a large draw's part (1-d) added to the counts, sums,
    extremes and cells."""
    import jax.numpy as jnp

    def fold(state, x, ref, ref_cell, lo, segment_scale, cum, slope):
        finite = jnp.isfinite(x)
        nonfinite = x.size - finite.sum()
        nan, posinf = jnp.isnan(x).sum(), (x == jnp.inf).sum()
        counts = jnp.stack([x.size - nonfinite, nan, posinf, nonfinite - nan - posinf]).astype(jnp.int64)
        sums, low, high, hist, d, d2 = _value_sums(x, finite, ref, ref_cell, lo, segment_scale, cum, slope,
                                                   segments, cells)
        extremes = jnp.stack([jnp.minimum(state["extremes"][0], low), jnp.maximum(state["extremes"][1], high)])
        return dict(state, sums=state["sums"] + sums, extremes=extremes, counts=state["counts"] + counts,
                    hist=state["hist"] + hist), d, d2

    return fold


def _part_step(segments: int, cells: int, row_length: int, n: int, prefix: int, layout, capacity: int):
    """One jitted call a part of a large draw: ``(state, sums, draw, part,
    before, upcoming, clean, threshold, start, ref, ref_cell, lo,
    segment_scale, cum, slope, *, runs, tail_at) -> (state, sums,
    draw, before, upcoming, selected)``: the counts, sums, extremes and cells
    (:func:`_moments_of`), the pairs (:func:`_pairs_of`), and with a
    ``layout`` the structure's sums (:func:`_positions_of`; ``draw`` the
    draw's sums of d and d^2) and the part's grams selected at ``threshold``
    with its first and last k - 1 stream values (:func:`_select_of`); pairs
    add nothing unless ``clean`` (the sums are then not taken).  A few
    compiles per draw shape: one per part size (the last part's may differ)."""
    key = (segments, cells, row_length, n, prefix, None if layout is None else (layout.shape, layout.itemsize),
           capacity)
    if key not in _part_helpers:
        moments_of, pairs_of = _moments_of(segments, cells), _pairs_of(row_length, n, prefix)
        positions_of = None if layout is None else _positions_of(layout)
        select_of = None if layout is None else _select_of(layout, capacity)

        def step(state, sums, draw, x, before, upcoming, clean, threshold, start, *grid, runs=None, tail_at=None):
            state, d, d2 = moments_of(state, x, *grid)
            pairs, before, upcoming = pairs_of(state["pairs"], state["previous"], state["previous_clean"], d, before,
                                               upcoming, clean, start)
            state = dict(state, pairs=pairs)
            selected = None
            if positions_of is not None:  # taken only when clean
                sums, draw = positions_of(sums, draw, d, d2, start, runs, tail_at)
                selected = select_of(x, threshold)
            return state, sums, draw, before, upcoming, selected

        _part_helpers[key] = jax.jit(step, static_argnames=("runs", "tail_at"))
    return _part_helpers[key]


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
        sums, low, high, hist, d, _ = _value_sums(x, kept, ref, ref_cell, lo, segment_scale, cum, slope,
                                                  segments, cells)
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
        self._draw_sums = None  # a draw folded by parts: its sums of d and d^2

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

    def begin_draw(self, x, draw_shape) -> bool:
        """Start a finite draw folded by parts (:meth:`fold_part`, then
        :meth:`end_draw`; ``x`` its first part); False when the row keeps no structure."""
        import jax.numpy as jnp

        draw_shape = tuple(int(s) for s in draw_shape)
        itemsize = 4 if x.dtype == jnp.float32 else 8
        if self._mixed:
            return False
        layout = self._layout
        if layout is not None and (layout.shape, layout.itemsize) != (draw_shape, itemsize):
            self._mixed, self._layout, self._sums = True, None, None
            return False
        if layout is None:
            self._layout = StructureLayout(self._ref, draw_shape, itemsize, self._expected)
            self._sums = _zero_sums(self._layout, next(iter(x.devices())))
        self._draw_sums = None
        return True

    def layout_for(self, x, draw_shape):
        """The layout a draw of this shape (and x's dtype) folds into, if the
        row has one and keeps its structure; None otherwise (nothing changes)."""
        import jax.numpy as jnp

        layout, itemsize = self._layout, 4 if x.dtype == jnp.float32 else 8
        if self._mixed or layout is None or (layout.shape, layout.itemsize) != (tuple(draw_shape), itemsize):
            return None
        return layout

    def part_statics(self, start: int, end: int) -> dict:
        """Where the draw's values start..end-1 (whole runs from start) go:
        ``runs`` whole runs, the short last block from ``tail_at`` (:func:`_positions_of`)."""
        layout = self._layout
        if layout.elements:
            return {}
        whole = layout.rows * layout.row_length
        statics = {"runs": (min(end, whole) - start) // layout.row_length}
        if layout.tail and end > whole:
            statics["tail_at"] = whole - start
        return statics

    def part_sums(self) -> tuple:
        """(sums, the draw's own sums of d and d^2) as a part's step takes them."""
        if self._draw_sums is None:
            import jax.numpy as jnp

            self._draw_sums = jnp.zeros(2, jnp.float64)
        return self._sums, self._draw_sums

    def take_part(self, x, sums, draw, selected) -> None:
        """A finite draw's part folded on the device: its sums, and the grams
        the device selected in it, those crossing into it from the stream
        before first, as the host selects them."""
        self._sums, self._draw_sums = sums, draw
        layout = self._layout
        store, m = layout.store, x.shape[0]
        found, first, chosen, windows, head, tail = selected
        capacity = len(first)
        layout.junction(np.asarray(head))  # may lower the threshold: selected below is filtered by it
        found = int(found)
        if found > capacity:  # more than the output holds: count again, fewer while they outnumber 4 x the store
            while True:
                found = int(_part_select(layout, 1024)(x, store.threshold)[0])
                if found <= 4 * GRAM_STORE:
                    break
                store.halve()
            first, chosen, windows = _part_select(layout, _capacity(found))(x, store.threshold)[1:4]
        first, chosen, windows = (np.asarray(a)[:found] for a in (first, chosen, windows))
        keep = chosen < store.threshold
        layout.add_grams(first[keep], windows[keep], chosen[keep])
        layout.advance(m, np.asarray(tail))

    def end_draw(self) -> None:
        """The draw folded by parts goes to its draw slot."""
        import jax.numpy as jnp

        layout, sums = self._layout, dict(self._sums)
        for _ in range(layout.doublings(1)):
            for name in ("slot_count", "slot_s1", "slot_s2"):
                pairs = sums[name][:DRAW_SLOTS].reshape(-1, 2).sum(1)
                sums[name] = jnp.zeros_like(sums[name]).at[: len(pairs)].set(pairs)
        slot = layout.draws // layout.width
        sums["slot_s1"] = sums["slot_s1"].at[slot].add(self._draw_sums[0])
        sums["slot_s2"] = sums["slot_s2"].at[slot].add(self._draw_sums[1])
        sums["slot_count"] = sums["slot_count"].at[slot].add(float(layout.size))
        self._sums, self._draw_sums = sums, None
        layout.draws += 1

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


def _positions_of(layout: StructureLayout):
    """Traced ``(sums, draw, d, d2, start, runs, tail_at) -> (sums, draw)``:
    a large draw's part d (values start.. of the draw, whole runs from start)
    added to the structure's sums (see StructureLayout): ``runs`` whole runs,
    the short last block from ``tail_at`` (or None), the sums of those of its
    values among the draw's first ``layout.prefix`` (a ``lax.cond``: only the
    parts that reach there); ``draw`` the draw's sums of d and d^2."""
    import jax.numpy as jnp
    from jax import lax

    length, rows, columns = layout.row_length, layout.rows, layout.columns
    run_group = None if layout.run_group is None else np.asarray(layout.run_group)

    def lead_sums(p1, p2, d, d2, start):
        return p1 + _lead(d, start, layout.prefix)[0], p2 + _lead(d2, start, layout.prefix)[0].sum()

    def no_lead(p1, p2, d, d2, start):
        return p1, p2

    def positions(sums, draw, d, d2, start, runs, tail_at):
        out = dict(sums)
        m = d.shape[0]
        if layout.elements:
            for name, v in (("e1", d), ("e2", d2)):
                out[name] = lax.dynamic_update_slice(sums[name], lax.dynamic_slice(sums[name], (start,), (m,)) + v,
                                                     (start,))
        else:
            if runs:
                g1, g2 = d[: runs * length].reshape(runs, length), d2[: runs * length].reshape(runs, length)
                index = start // length + jnp.arange(runs)
                if run_group is not None:
                    index = jnp.asarray(run_group)[index]
                out["g1"], out["g2"] = sums["g1"].at[index].add(g1.sum(1)), sums["g2"].at[index].add(g2.sum(1))
                if columns:
                    out["c1"], out["c2"] = sums["c1"] + g1.sum(0), sums["c2"] + g2.sum(0)
            if tail_at is not None:  # a long vector's last, short block
                out["g1"] = out["g1"].at[rows].add(d[tail_at:].sum())
                out["g2"] = out["g2"].at[rows].add(d2[tail_at:].sum())
            out["p1"], out["p2"] = lax.cond(start < layout.prefix, lead_sums, no_lead, sums["p1"], sums["p2"], d, d2,
                                            start)
        return out, draw + jnp.stack([d.sum(), d2.sum()])

    return positions


def _select_of(layout: StructureLayout, capacity: int):
    """Traced ``(x, threshold) -> (found, offsets, hashes, values, head, tail)``:
    the grams of a large draw's part x (1-d) selected at ``threshold``
    (:func:`_selected`), and its first and last k - 1 values of the stream."""
    import jax.numpy as jnp

    k, itemsize = layout.k, layout.itemsize

    def select(x, threshold):
        s = _stream(x[None], jnp.ones(1, bool), itemsize)
        m = s.shape[0]
        return (*_selected(s, m, threshold, k, itemsize, capacity), s[: k - 1], s[max(0, m - (k - 1)) :])

    return select


def _part_select(layout: StructureLayout, capacity: int):
    """:func:`_select_of`, jitted: the exact second pass of a part that selects
    more than its step's output holds."""
    key = ("part select", layout.itemsize, layout.k, capacity)
    if key not in _structure_steps:
        _structure_steps[key] = jax.jit(_select_of(layout, capacity))
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
