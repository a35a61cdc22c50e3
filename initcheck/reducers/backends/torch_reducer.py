"""Streaming statistics of torch tensors on their own device.

:class:`TorchReducer` folds tensors that live on an accelerator where they
live, without a host synchronization per draw; JAX and TensorFlow draws on a
GPU come in through DLPack.  :class:`Batches` stacks small draws so that a
fold's fixed launch cost is paid once per batch, :class:`TorchPairs` keeps
the lag-1 pair sums on the device, and :class:`TorchStructure` the structure
statistics (:mod:`initcheck.structure`): their sums stay on the device until
the summary, and of the grams only the few selected ones come to the host,
with a few scalars, once per batch.
"""

from __future__ import annotations

import math

import torch

from initcheck.grid import Grid
from initcheck.laws import Law
from initcheck.reducers.backends.device_structure import (
    DRAW_SLOTS,
    FMIX1,
    FMIX2,
    GRAM_STORE,
    SALT,
    StructureLayout,
)
from initcheck.reducers.shapes import PAIR_PREFIX, batch_shape, lag_of_rows
from initcheck.structure import ELEMENTS, Structure
from initcheck.summary import Summary

#: A draw of more values than this is folded a part of about this many values
#: (whole rows) at a time, so that its float64 temporaries (about 100 bytes a
#: value) stay near 0.4 GB however large the draw: a (100000, 100000) draw is
#: never copied whole.  Batches of smaller draws fold as one.
PART = 1 << 22


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
    at most ``values`` values at a time (a draw of more than :data:`PART`
    values alone, which its reducer folds in parts: :func:`fold_in_parts`).  While ``fold_batch`` runs,
    :attr:`draw_shape` is the shape of each of the batch's draws (a batch holds
    draws of one shape)."""

    #: Values per batch: a fold's float64 temporaries take about 100 bytes a value (~0.8 GB).
    values = 1 << 23

    def __init__(self, fold_batch, device):
        self._fold_batch, self._device = fold_batch, torch.device(device)
        self._stage: torch.Tensor | None = None
        self._staged = 0
        self._row_length = 0
        self._stage_shape: tuple = ()
        #: The shape of each draw of the batch being folded.
        self.draw_shape: tuple = ()

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
            self.draw_shape = draw_shape
            per_batch = max(1, self.values // max(n, 1))
            for start in range(0, count, per_batch):
                self._fold_batch(block[start : start + per_batch], row_length)
            return
        done = 0
        while done < count:
            stage = self._stage
            if stage is None or stage.shape[1] != n or stage.dtype != block.dtype or self._stage_shape != draw_shape:
                self.flush()
                self._stage = stage = torch.empty((self.values // n, n), dtype=block.dtype, device=self._device)
                self._row_length, self._stage_shape = row_length, draw_shape
            take = min(count - done, stage.shape[0] - self._staged)
            stage[self._staged : self._staged + take].copy_(block[done : done + take])
            self._staged += take
            done += take
            if self._staged == stage.shape[0]:
                self.flush()

    def flush(self) -> None:
        """Fold whatever is staged."""
        if self._staged:
            self.draw_shape = self._stage_shape
            self._fold_batch(self._stage[: self._staged], self._row_length)
            self._staged = 0


class TorchPairs:
    """Lag-1 product sums (see :class:`~initcheck.reducers.HostReducer`) of
    centred draws on their device: within each draw, between its rows, and
    between consecutive draws (their first :data:`~initcheck.reducers.shapes.PAIR_PREFIX`
    positions: only that much of the last draw is kept, in float64).  A draw
    holding NaN or Inf adds none and is no one's neighbour; the flags saying so
    stay on the device: no sync per draw."""

    def __init__(self, device):
        self._device = torch.device(device)
        self._sums = torch.zeros((3, 4), dtype=torch.float64, device=self._device)
        self._previous: torch.Tensor | None = None  # the last draw's first positions, (1, min(n, PAIR_PREFIX))
        self._previous_size = 0  # that draw's n
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
        head = d[:, : min(n, PAIR_PREFIX)]  # what consecutive draws pair
        between = zero
        if len(head) > 1:
            between = self._pair_sums(head[:-1], head[1:], clean[:-1] & clean[1:])
        if self._previous is not None and self._previous_size == n:
            between = between + self._pair_sums(self._previous, head[:1], self._previous_clean & clean[:1])
        self._sums += torch.stack([
            self._pair_sums(d[:, :-1], d[:, 1:], clean) if n > 1 else zero,
            self._pair_sums(d[:, :-row_length], d[:, row_length:], clean) if 0 < row_length < n else zero,
            between,
        ])
        self._previous, self._previous_size, self._previous_clean = head[-1:].clone(), n, clean[-1:]

    @staticmethod
    def _flat_sums(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """[sum ab, sum a, sum b, count] of two 1-d tensors."""
        return torch.stack([(a * b).sum(), a.sum(), b.sum(), torch.full_like(a[0], a.shape[0])])

    def fold_part(self, d: torch.Tensor, start: int, n: int, row_length: int, before: torch.Tensor | None) -> None:
        """The pairs of a finite draw of n values that end in its values
        ``start`` to ``start + len(d) - 1`` (``d`` 1-d, minus the law's mean):
        within the part, and with ``before``, the max(row_length, 1) values
        before it (None for the first part); its first PAIR_PREFIX positions
        pair with the previous draw's.  :meth:`end_parts` after the last part."""
        zero = torch.zeros(4, dtype=torch.float64, device=self._device)
        m = d.shape[0]
        if start == 0:
            self._head = []
        within = self._flat_sums(d[:-1], d[1:]) if m > 1 else zero
        if before is not None:
            within = within + self._flat_sums(before[-1:], d[:1])
        rows = zero
        if 0 < row_length < n:
            if m > row_length:
                rows = self._flat_sums(d[:-row_length], d[row_length:])
            if before is not None:
                rows = rows + self._flat_sums(before[-row_length:], d[:row_length])
        between = zero
        prefix = min(n, PAIR_PREFIX)
        if start < prefix:
            head = d[: prefix - start]
            if self._previous is not None and self._previous_size == n:
                previous = self._previous[0, start : start + head.shape[0]]
                between = torch.where(self._previous_clean[0], self._flat_sums(previous, head), 0.0)
            self._head.append(head.clone())
        self._sums += torch.stack([within, rows, between])

    def end_parts(self, n: int) -> None:
        """The draw folded by parts is the next one's neighbour."""
        self._previous = torch.cat(self._head)[None]
        self._previous_size, self._head = n, []
        self._previous_clean = torch.ones(1, dtype=torch.bool, device=self._device)

    def forget(self) -> None:
        """The next draw has no previous one (the last held NaN or Inf)."""
        self._previous, self._previous_size = None, 0

    def numpy(self):
        return self._sums.cpu().numpy().copy()


def run_length(draw_shape) -> int:
    """The runs of values a large draw's parts are made of: its rows (a 1-d
    draw: the structure's blocks of contiguous values), so that no row and no
    block of the structure is cut between two parts."""
    n = math.prod(draw_shape)
    if len(draw_shape) >= 2:
        return max(1, n // draw_shape[0])
    return math.ceil(n / ELEMENTS) if n > ELEMENTS else 1


def fold_in_parts(x: torch.Tensor, row_length: int, draw_shape, pairs: TorchPairs, structure: TorchStructure,
                  fold_part) -> None:
    """Fold one large draw ``x`` (1-d, n values) a part of about PART values
    (whole runs, :func:`run_length`) at a time, with the statistics of the draw
    folded whole.  ``fold_part(part)`` folds a part's values (counts, sums,
    histogram) and returns d, the part minus the law's mean in float64 (NaN
    and Inf anywhere once the draw is known finite), and d^2 (or None).
    Whether the draw holds NaN or Inf is decided first, a part at a time (one
    sync): such a draw adds no pairs and no structure, and is no one's
    neighbour."""
    n = x.shape[0]
    step = max(1, PART // run_length(draw_shape)) * run_length(draw_shape)
    finite = torch.ones((), dtype=torch.bool, device=x.device)
    for a in range(0, n, step):
        finite &= torch.isfinite(x[a : a + step]).all()
    clean = bool(finite)
    structured = clean and structure.begin_draw(x, draw_shape)
    if not clean:
        pairs.forget()
    overlap, before = max(row_length, 1), None
    for a in range(0, n, step):
        b = min(n, a + step)
        d, d2 = fold_part(x[a:b])
        if not clean:
            continue
        pairs.fold_part(d, a, n, row_length, before)
        if structured:
            structure.fold_part(x[a:b], d, d * d if d2 is None else d2, a)
        before = d[-overlap:].clone() if b < n else None
    if clean:
        pairs.end_parts(n)
    if structured:
        structure.end_draw()


_MASK32 = 0xFFFFFFFF


def selection_hash(bits: torch.Tensor, itemsize: int) -> torch.Tensor:
    """The selection hash of ``_kernels.c`` ``grams`` (see
    :data:`~initcheck.reducers.backends.device_structure.SALT`) of integer views
    of 2-, 4- or 8-byte values, as int64 in [0, 2^32).  Every intermediate is
    kept in int64's range: the values in [0, 2^32) stay non-negative, so torch's
    arithmetic right shifts are the C code's logical ones, and each multiplier c
    is applied as c - 2^32 (the same product mod 2^32, of magnitude below 2^63)."""
    if itemsize == 8:
        a = bits & 0x7FFFFFFFFFFFFFFF
        h = (a >> 32).bitwise_xor_(a).bitwise_and_(_MASK32)
    else:
        h = bits.long().bitwise_and_(0x7FFF if itemsize == 2 else 0x7FFFFFFF)
    h.add_(SALT).bitwise_and_(_MASK32)
    h.bitwise_xor_(h >> 16)
    h.mul_(FMIX1 - (1 << 32)).bitwise_and_(_MASK32)
    h.bitwise_xor_(h >> 13)
    h.mul_(FMIX2 - (1 << 32)).bitwise_and_(_MASK32)
    return h.bitwise_xor_(h >> 16)


class TorchStructure:
    """The structure statistics (:mod:`initcheck.structure`) of torch draws, on
    their device: the same :class:`~initcheck.structure.Structure` as
    :class:`~initcheck.structure.StructureFolder` gives for the same draws
    (laid out by :class:`~initcheck.reducers.backends.device_structure.StructureLayout`).

    ``fold(x, draw_shape)`` takes K draws as a (K, n) tensor; draws holding NaN
    or Inf add nothing.  The position and draw sums are float64 tensors on the
    device until :meth:`result`; the grams are selected on the device, and only
    the selected ones' values, with the batch's count of finite draws and a few
    stream values, come to the host (a sync per batch, not per draw).  As on
    the host, a row whose finite draws change shape (or item size) keeps no
    structure.

    ``itemsize`` 2 reads x as 16-bit patterns (the grams of 16-bit rows); by
    default float32 draws are 4-byte values and every other dtype is read as
    float64, as the host reducer reads them."""

    #: Stream positions hashed at a time when selecting grams on an accelerator
    #: (int64 temporaries of 32 MiB; each piece costs a sync)...
    chunk = 1 << 22
    #: ... and on a CPU device, where pieces that stay in cache are several times faster.
    cpu_chunk = 1 << 15

    def __init__(self, ref: float, device, itemsize: int | None = None, expected_values: int | None = None):
        self._ref, self._device = float(ref), torch.device(device)
        self._itemsize, self._expected = itemsize, expected_values
        self._layout: StructureLayout | None = None
        self._mixed = False  # draws of another shape came: no structure
        self._sums: dict[str, torch.Tensor] = {}
        self._edges: torch.Tensor | None = None  # inner group edges of the runs (rows), where runs are grouped

    def _start(self, draw_shape: tuple, itemsize: int) -> StructureLayout:
        layout = StructureLayout(self._ref, draw_shape, itemsize, self._expected)
        f64 = {"dtype": torch.float64, "device": self._device}
        sums = {name: torch.zeros(DRAW_SLOTS + 1, **f64) for name in ("slot_count", "slot_s1", "slot_s2")}
        if layout.elements:
            sums.update(e1=torch.zeros(layout.size, **f64), e2=torch.zeros(layout.size, **f64))
        else:
            sums.update(g1=torch.zeros(layout.groups, **f64), g2=torch.zeros(layout.groups, **f64),
                        p1=torch.zeros(layout.prefix, **f64), p2=torch.zeros((), **f64))
            if layout.columns:
                sums.update(c1=torch.zeros(layout.columns, **f64), c2=torch.zeros(layout.columns, **f64))
            if layout.run_group is not None:
                self._edges = torch.from_numpy(layout.edges[1:-1]).to(self._device)
        self._layout, self._sums = layout, sums
        return layout

    def fold(self, x: torch.Tensor, draw_shape, d: torch.Tensor | None = None, d2: torch.Tensor | None = None,
             clean: torch.Tensor | None = None) -> None:
        """Fold K draws, ``x`` of shape (K, n), each of shape ``draw_shape``.
        ``d`` (x - ref in float64, NaN and Inf at 0), ``d2`` (its square) and
        ``clean`` (K,) (which draws are all finite) are computed when not given."""
        draw_shape = tuple(int(s) for s in draw_shape)
        layout = self._layout
        itemsize = self._itemsize or (4 if x.dtype == torch.float32 else 8)
        if x.numel() == 0 or self._mixed:
            return
        if clean is None:
            clean = torch.isfinite(x).all(1)
        kept = int(clean.sum())  # the one sync the sums need (the draw slots' width)
        if kept == 0:
            return
        if layout is not None and (layout.shape, layout.itemsize) != (draw_shape, itemsize):
            self._mixed, self._layout, self._sums = True, None, {}
            return
        if layout is None:
            layout = self._start(draw_shape, itemsize)
        if d is None:
            d = torch.where(torch.isfinite(x), x.double() - self._ref, 0.0)
        if d2 is None:
            d2 = d * d
        self._positions(d, d2, clean, kept)
        self._grams(x, clean, kept)
        layout.draws += kept

    def begin_draw(self, x: torch.Tensor, draw_shape) -> bool:
        """Start a finite draw folded by parts (:meth:`fold_part`, then
        :meth:`end_draw`); False when the row keeps no structure."""
        draw_shape = tuple(int(s) for s in draw_shape)
        itemsize = self._itemsize or (4 if x.dtype == torch.float32 else 8)
        if x.numel() == 0 or self._mixed:
            return False
        layout = self._layout
        if layout is not None and (layout.shape, layout.itemsize) != (draw_shape, itemsize):
            self._mixed, self._layout, self._sums = True, None, {}
            return False
        if layout is None:
            self._start(draw_shape, itemsize)
        self._draw_sums = torch.zeros(2, dtype=torch.float64, device=self._device)
        return True

    def fold_part(self, x: torch.Tensor, d: torch.Tensor, d2: torch.Tensor, start: int) -> None:
        """The values ``start`` to ``start + len(x) - 1`` of the draw (1-d; whole
        runs of the layout's row length from ``start``, a multiple of it), ``d``
        and ``d2`` as in :meth:`fold`: the same sums and grams as the whole draw's."""
        layout, sums = self._layout, self._sums
        end = start + d.shape[0]
        if layout.elements:
            sums["e1"][start:end] += d
            sums["e2"][start:end] += d2
        else:
            length, whole = layout.row_length, layout.rows * layout.row_length
            runs = (min(end, whole) - start) // length
            if runs > 0:
                g1 = d[: runs * length].reshape(runs, length)
                g2 = d2[: runs * length].reshape(runs, length)
                first = start // length
                if layout.run_group is not None:
                    rows = torch.arange(first, first + runs, device=self._device)
                    group = torch.bucketize(rows, self._edges, right=True)
                    sums["g1"].index_add_(0, group, g1.sum(1))
                    sums["g2"].index_add_(0, group, g2.sum(1))
                else:
                    sums["g1"][first : first + runs] += g1.sum(1)
                    sums["g2"][first : first + runs] += g2.sum(1)
                if layout.columns:
                    sums["c1"] += g1.sum(0)
                    sums["c2"] += g2.sum(0)
            if layout.tail and end > whole:  # a long vector's last, short block
                sums["g1"][layout.rows] += d[whole - start :].sum()
                sums["g2"][layout.rows] += d2[whole - start :].sum()
            if start < layout.prefix:
                e = min(end, layout.prefix) - start
                sums["p1"][start : start + e] += d[:e]
                sums["p2"] += d2[:e].sum()
        self._draw_sums += torch.stack([d.sum(), d2.sum()])
        self._stream_grams(self._bits(x).reshape(-1))

    def end_draw(self) -> None:
        """The draw folded by parts goes to its draw slot."""
        layout, sums = self._layout, self._sums
        for _ in range(layout.doublings(1)):
            for name in ("slot_count", "slot_s1", "slot_s2"):
                pairs = sums[name][:DRAW_SLOTS].reshape(-1, 2).sum(1)
                sums[name].zero_()
                sums[name][: len(pairs)] = pairs
        slot = layout.draws // layout.width
        sums["slot_s1"][slot] += self._draw_sums[0]
        sums["slot_s2"][slot] += self._draw_sums[1]
        sums["slot_count"][slot] += float(layout.size)
        layout.draws += 1

    def _positions(self, d: torch.Tensor, d2: torch.Tensor, clean: torch.Tensor, kept: int) -> None:
        layout, sums = self._layout, self._sums
        w = clean.double()  # finite draws weigh 1, the others 0 (their d is finite: NaN and Inf sit at 0)
        if layout.elements:
            sums["e1"] += w @ d
            sums["e2"] += w @ d2
            r1, r2 = d.sum(1), d2.sum(1)
        else:
            k, rows, length = d.shape[0], layout.rows, layout.row_length
            whole = rows * length
            g1 = d[:, :whole].reshape(k, rows, length).sum(2)
            g2 = d2[:, :whole].reshape(k, rows, length).sum(2)
            if layout.tail:  # a long vector's last, short block
                g1 = torch.cat([g1, d[:, whole:].sum(1, keepdim=True)], 1)
                g2 = torch.cat([g2, d2[:, whole:].sum(1, keepdim=True)], 1)
            r1, r2 = g1.sum(1), g2.sum(1)
            g1, g2 = w @ g1, w @ g2
            if layout.run_group is not None:  # more rows than groups: rows into contiguous groups
                group = torch.bucketize(torch.arange(rows, device=self._device), self._edges, right=True)
                sums["g1"].index_add_(0, group, g1)
                sums["g2"].index_add_(0, group, g2)
            else:
                sums["g1"] += g1
                sums["g2"] += g2
            if layout.columns:
                sums["c1"] += (w @ d).reshape(rows, length).sum(0)
                sums["c2"] += (w @ d2).reshape(rows, length).sum(0)
            sums["p1"] += w @ d[:, : layout.prefix]
            sums["p2"] += w @ d2[:, : layout.prefix].sum(1)
        for _ in range(layout.doublings(kept)):
            for name in ("slot_count", "slot_s1", "slot_s2"):
                pairs = sums[name][:DRAW_SLOTS].reshape(-1, 2).sum(1)
                sums[name].zero_()
                sums[name][: len(pairs)] = pairs
        rank = clean.long().cumsum(0) - 1
        slot = torch.where(clean, (layout.draws + rank) // layout.width, DRAW_SLOTS)  # the others: a slot never read
        sums["slot_s1"].index_add_(0, slot, r1)
        sums["slot_s2"].index_add_(0, slot, r2)
        sums["slot_count"].index_add_(0, slot, w * layout.size)

    def _bits(self, x: torch.Tensor) -> torch.Tensor:
        """Integer views of the values as the gram stream reads them."""
        if self._layout.itemsize == 2:
            return x.view(torch.int16)
        if x.dtype == torch.float32:
            return x.view(torch.int32)
        return (x if x.dtype == torch.float64 else x.double()).view(torch.int64)

    def _grams(self, x: torch.Tensor, clean: torch.Tensor, kept: int) -> None:
        bits = self._bits(x)
        if kept < len(bits):
            bits = bits[clean]
        self._stream_grams(bits.reshape(-1))

    def _stream_grams(self, stream: torch.Tensor) -> None:
        """Select the grams of the next values of the row's stream (flat bits)."""
        layout = self._layout
        total, k = stream.numel(), layout.k
        layout.junction(stream[: k - 1].cpu().numpy())
        first, hashes = self._select(stream, layout)
        if len(first):
            windows = stream[first[:, None] + torch.arange(k, device=self._device)]
            layout.add_grams(first.cpu().numpy(), windows.cpu().numpy(), hashes.cpu().numpy())
        layout.advance(total, stream[max(0, total - (k - 1)) :].cpu().numpy())

    def _select(self, stream: torch.Tensor, layout: StructureLayout) -> tuple[torch.Tensor, torch.Tensor]:
        """Offsets and hashes of the grams that start in ``stream`` and end in it,
        selected at the store's threshold, which halves (as ``GramStore.select``
        does) while they outnumber four times the store."""
        store = layout.store
        last = stream.numel() - layout.k + 1  # grams wholly in the stream
        firsts, hashes, found = [], [], 0
        chunk = self.cpu_chunk if self._device.type == "cpu" else self.chunk
        for start in range(0, max(last, 0), chunk):
            h = selection_hash(stream[start : min(last, start + chunk)], layout.itemsize)
            chosen = torch.nonzero(h < store.threshold).flatten()
            firsts.append(chosen + start)
            hashes.append(h[chosen])
            found += len(chosen)
            while found > 4 * GRAM_STORE:
                store.halve()
                keep = [hh < store.threshold for hh in hashes]
                firsts = [f[m] for f, m in zip(firsts, keep)]
                hashes = [hh[m] for hh, m in zip(hashes, keep)]
                found = sum(len(f) for f in firsts)
        if not firsts:
            empty = torch.zeros(0, dtype=torch.int64, device=self._device)
            return empty, empty
        return torch.cat(firsts), torch.cat(hashes)

    def result(self) -> Structure | None:
        """The Structure of the draws folded so far (None before a finite one,
        or when they changed shape)."""
        if self._layout is None:
            return None
        totals = {name: t.cpu().numpy() for name, t in self._sums.items()}
        if "p2" in totals:
            totals["p2"] = float(totals["p2"])
        return self._layout.result(totals)


class TorchReducer:
    """Streaming statistics of torch tensors, computed on the tensor's device.

    The same quantities as :class:`~initcheck.reducers.HostReducer`, with torch
    ops and float64 accumulators on the device, folded a batch of draws at a
    time (:class:`Batches`).  JAX and TensorFlow draws on a GPU come in through
    DLPack, without a copy.  Non-finite values are masked rather than removed
    (removing them would need a device-to-host sync): they are replaced by the
    reference point, which adds nothing to the power sums, and taken back out of
    the histogram cell the reference point falls in.  The structure statistics
    (:class:`TorchStructure`; ``expected_values``, the values the row will fold,
    sets where its gram selection rate starts) wait for the device once a
    batch, for a few scalars and the selected grams.  A draw of more than
    :data:`PART` values is folded a part at a time (:func:`fold_in_parts`), so
    that no float64 temporary is much larger than a part.
    """

    #: ``fold`` queues device work and returns (on a CPU device it computes);
    #: only the batch being folded is waited for, once, by the structure statistics.
    asynchronous = True

    def __init__(self, law: Law, device, grid: Grid | None = None, expected_values: int | None = None):
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
        self._structure = TorchStructure(law.mean, self._device, expected_values=expected_values)
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
        """Fold K draws of n values, shape (K, n); draws of more than PART
        values one at a time, in parts (:func:`fold_in_parts`)."""
        if x.shape[1] > PART:
            for draw in x:
                fold_in_parts(draw, row_length, self._batches.draw_shape, self._pairs, self._structure,
                              self._fold_part)
            return
        finite, d, d2 = self._fold_values(x)
        clean = x.shape[1] - finite.sum(1) == 0
        self._pairs.fold(d, row_length, clean)
        self._structure.fold(x, self._batches.draw_shape, d, d2, clean)

    def _fold_part(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A part of a large draw (1-d): its counts, sums, extremes, cells; (d, d^2)."""
        _, d, d2 = self._fold_values(x)
        return d, d2

    def _fold_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Counts, power sums, extremes and cells of the values of x; (finite, d, d^2),
        d = x - ref in float64 with NaN and Inf at 0."""
        ref = self._summary.ref
        finite = torch.isfinite(x)
        nonfinite = x.numel() - finite.sum()
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
        return finite, d, d2

    def summary(self) -> Summary:
        self._batches.flush()
        s = self._summary
        s.count, s.nan, s.posinf, s.neginf = (int(v) for v in self._counts.cpu())
        s.sums = self._sums.cpu().numpy().copy()
        s.minimum, s.maximum = (float(v) for v in self._extremes.cpu())
        s.hist = self._hist.cpu().numpy().copy()
        s.pairs = self._pairs.numpy()
        s.structure = self._structure.result()
        return s
