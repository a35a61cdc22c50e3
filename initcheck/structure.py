"""Structure of a row's draws: where values sit, and which values repeat.

The pooled checks (moments, KS, spikes) see a row's values as one bag.  Bugs
also live in *where* values sit and in *values that come back*: blocks of a
fused parameter scaled apart, a slice left at another initializer, rows tiled
from the first head, a draw that equals an earlier one.  This module folds
three bounded sufficient statistics, all about ``ref`` (the law's mean) with
``d = x - ref``:

**Positions.**  For every axis of the draw's real shape, and for the sequence
of draws itself, each position's count, sum of d and sum of d^2 across every
draw: O(sum of the dimensions) numbers.  Small draws (at most
:data:`ELEMENTS` values) keep those sums per element, so every axis follows
exactly; larger ones keep them per row (first axis) and per element of a row
(the rest of the shape, at most :data:`MAX_COLUMNS` values; the trailing axes
follow from it).  A 1-d draw longer than :data:`ELEMENTS` keeps blocks of
contiguous positions.  More than :data:`MAX_POSITIONS` positions on one axis
are kept as that many contiguous groups.

**Draw sums.**  Per element of the draw's first :data:`ELEMENTS` values, the
sum of d over every draw, and the sum of d^2: with independent draws each
element's sum has variance D sigma^2, whatever correlation the draws share
raises or lowers it (``draws`` check).

**Grams.**  A gram is k consecutive values of the row's stream of draws (k =
16 bytes' worth: 4 float32, 2 float64, 8 16-bit values), read as bits without
their signs and with the signs relative to the first.  Gram i is *selected*
when a hash of its first value is below a threshold tau (rate r = tau /
2^32): equal grams are selected together, so a copied run is seen in both of
its places however small r is.  The selected grams are kept in a bounded
store (:data:`GRAM_STORE` distinct ones; r halves when it fills) with their
stream positions; a gram equal to one seen earlier is a *repeat*.  Repeats of
the selected first values alone estimate how often the law's own values
coincide (:mod:`initcheck.structure_checks` turns both into a p-value).

Everything here is mergeable by addition except the gram store, whose counts
and examples merge while repeats *between* the two merged streams are not
known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from initcheck import kernels
from initcheck._kernels_numpy import mix64

#: Draws of at most this many values keep per-element sums.
ELEMENTS = 1 << 14
#: Per-element sums of a larger draw's rows are kept up to this many values a row.
MAX_COLUMNS = 1 << 20
#: Positions kept per axis (more are grouped into this many contiguous groups).
MAX_POSITIONS = 1 << 16
#: Slots for the sequence of draws (consecutive draws share a slot beyond it).
DRAW_SLOTS = 1 << 12
#: Distinct selected grams the store holds before the selection rate halves.
GRAM_STORE = 1 << 17
#: Example pairs of repeated grams kept to say what repeated.
EXAMPLES = 4096
#: Draws of fewer values are gathered before their grams are selected.
SMALL_FOLD = 4096
#: Bytes of a gram.
GRAM_BYTES = 16


def gram_length(itemsize: int) -> int:
    """Values per gram for a sample of this many bytes per value."""
    return max(1, min(8, GRAM_BYTES // itemsize))


@dataclass
class AxisSums:
    """Per-position sums along one axis: group g covers positions
    ``edges[g]`` to ``edges[g + 1] - 1`` and holds ``count[g]`` values whose
    deviations d sum to ``s1[g]`` and squares to ``s2[g]``."""

    name: str
    size: int
    edges: np.ndarray
    count: np.ndarray
    s1: np.ndarray
    s2: np.ndarray

    def merge(self, other: AxisSums) -> AxisSums:
        if self.name != other.name or not np.array_equal(self.edges, other.edges):
            raise ValueError(f"axis {self.name}: positions grouped differently, cannot merge")
        return AxisSums(self.name, self.size, self.edges, self.count + other.count, self.s1 + other.s1,
                        self.s2 + other.s2)

    def then(self, other: AxisSums) -> AxisSums:
        """The sequence of draws of this fold followed by the other's."""
        edges = np.concatenate([self.edges, other.edges[1:] + self.size])
        return AxisSums(self.name, self.size + other.size, edges, np.concatenate([self.count, other.count]),
                        np.concatenate([self.s1, other.s1]), np.concatenate([self.s2, other.s2]))

    def to_dict(self) -> dict:
        from initcheck.summary import encode_array

        return {"name": self.name, "size": self.size, "edges": encode_array(self.edges, "<i8"),
                "count": encode_array(self.count), "s1": encode_array(self.s1), "s2": encode_array(self.s2)}

    @classmethod
    def from_dict(cls, data: dict) -> AxisSums:
        from initcheck.summary import decode_array

        return cls(str(data["name"]), int(data["size"]), decode_array(data["edges"]).astype(np.int64),
                   decode_array(data["count"]), decode_array(data["s1"]), decode_array(data["s2"]))


@dataclass
class DrawSums:
    """Per element e of the first ``positions`` values of every draw, S_e the
    sum of d over ``draws`` draws: ``total`` = sum of S_e, ``squares`` = sum
    of S_e^2, ``s2`` = sum of d^2 over all of them (what the draws check
    needs).  ``s1``, the S_e themselves, stays in memory (it merges two
    folds of the same positions) but a report keeps only the sums."""

    draws: int
    positions: int
    total: float
    squares: float
    s2: float
    s1: np.ndarray | None = None

    @classmethod
    def of(cls, draws: int, s1: np.ndarray, s2: float) -> DrawSums:
        return cls(draws, len(s1), float(s1.sum()), float(np.einsum("i,i->", s1, s1)), float(s2), s1)

    def merge(self, other: DrawSums) -> DrawSums | None:
        """Both folds' sums per element, when both still have them; else None."""
        if self.s1 is None or other.s1 is None or len(self.s1) != len(other.s1):
            return None
        return DrawSums.of(self.draws + other.draws, self.s1 + other.s1, self.s2 + other.s2)

    def to_dict(self) -> dict:
        return {"draws": self.draws, "positions": self.positions, "total": self.total, "squares": self.squares,
                "s2": self.s2}

    @classmethod
    def from_dict(cls, data: dict) -> DrawSums:
        return cls(int(data["draws"]), int(data["positions"]), float(data["total"]), float(data["squares"]),
                   float(data["s2"]))


@dataclass
class Grams:
    """What the gram store saw: ``grams`` grams in the stream, ``selected`` of
    them at the final rate ``threshold / 2^32``, ``repeats`` equal to an
    earlier selected one, ``single_repeats`` the pairs of selected grams
    whose first values alone are equal; ``examples`` (earlier, later) stream
    positions of repeated grams, each 2 * position + sign of its first value."""

    k: int
    threshold: int
    grams: int
    selected: int
    repeats: int
    single_repeats: int
    draw_size: int
    examples: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))

    @property
    def rate(self) -> float:
        return self.threshold / 2.0**32

    def merge(self, other: Grams) -> Grams:
        if self.k != other.k:
            raise ValueError("grams of different lengths cannot be merged")
        return Grams(self.k, min(self.threshold, other.threshold), self.grams + other.grams,
                     self.selected + other.selected, self.repeats + other.repeats,
                     self.single_repeats + other.single_repeats, self.draw_size,
                     np.concatenate([self.examples, other.examples])[:EXAMPLES])

    def to_dict(self) -> dict:
        return {"k": self.k, "threshold": self.threshold, "grams": self.grams, "selected": self.selected,
                "repeats": self.repeats, "single_repeats": self.single_repeats, "draw_size": self.draw_size,
                "examples": self.examples[:64].tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> Grams:
        examples = np.asarray(data.get("examples") or np.zeros((0, 2)), dtype=np.int64).reshape(-1, 2)
        return cls(int(data["k"]), int(data["threshold"]), int(data["grams"]), int(data["selected"]),
                   int(data["repeats"]), int(data["single_repeats"]), int(data["draw_size"]), examples)


@dataclass
class Structure:
    """The structure statistics of one row (see the module docstring)."""

    shape: tuple
    axes: list[AxisSums]
    draws: DrawSums | None
    grams: Grams | None

    def merge(self, other: Structure) -> Structure:
        """Both folds together: position sums add, and the other's draws follow
        this one's in the sequence of draws."""
        if tuple(self.shape) != tuple(other.shape) or len(self.axes) != len(other.axes):
            raise ValueError("structures of different shapes cannot be merged")
        axes = [a.then(b) if a.name == "draws" else a.merge(b) for a, b in zip(self.axes, other.axes)]
        return Structure(self.shape, axes,
                         self.draws.merge(other.draws) if self.draws and other.draws else None,
                         self.grams.merge(other.grams) if self.grams and other.grams else None)

    def to_dict(self) -> dict:
        """For a report: each axis as the groups its check tests (at least
        MIN_GROUP values each; see structure_checks.merged), the draw sums
        reduced to their sums, the gram store's counts and a few examples."""
        from initcheck.structure_checks import merged

        return {"shape": list(self.shape), "axes": [merged(a).to_dict() for a in self.axes],
                "draw_sums": self.draws.to_dict() if self.draws else None,
                "grams": self.grams.to_dict() if self.grams else None}

    @classmethod
    def from_dict(cls, data: dict) -> Structure:
        return cls(tuple(data["shape"]), [AxisSums.from_dict(a) for a in data["axes"]],
                   DrawSums.from_dict(data["draw_sums"]) if data.get("draw_sums") else None,
                   Grams.from_dict(data["grams"]) if data.get("grams") else None)


def _groups(size: int) -> np.ndarray:
    """Edges of at most MAX_POSITIONS contiguous groups of ``size`` positions."""
    groups = min(size, MAX_POSITIONS)
    return (np.arange(groups + 1, dtype=np.int64) * size) // groups


class _Axis:
    """Running sums of one axis, in groups of contiguous positions."""

    def __init__(self, name: str, size: int, edges: np.ndarray | None = None):
        self.name, self.size = name, size
        self.edges = _groups(size) if edges is None else edges
        groups = len(self.edges) - 1
        self.count, self.s1, self.s2 = np.zeros(groups), np.zeros(groups), np.zeros(groups)

    def add(self, s1: np.ndarray, s2: np.ndarray, count: float) -> None:
        """Sums per position (length ``size``), each from ``count`` values."""
        if len(self.edges) - 1 == self.size:
            self.s1 += s1
            self.s2 += s2
            self.count += count
        else:
            starts = self.edges[:-1]
            self.s1 += np.add.reduceat(s1, starts)
            self.s2 += np.add.reduceat(s2, starts)
            self.count += np.diff(self.edges) * count

    def add_groups(self, s1: np.ndarray, s2: np.ndarray, count: np.ndarray) -> None:
        """Sums per group."""
        self.s1 += s1
        self.s2 += s2
        self.count += count

    def result(self) -> AxisSums:
        return AxisSums(self.name, self.size, self.edges.copy(), self.count.copy(), self.s1.copy(), self.s2.copy())


class _DrawAxis:
    """Sums per draw, consecutive draws sharing one of DRAW_SLOTS slots once
    there are more (the slot width doubles each time they fill)."""

    def __init__(self):
        self.width, self.draws = 1, 0
        self.count, self.s1, self.s2 = np.zeros(DRAW_SLOTS), np.zeros(DRAW_SLOTS), np.zeros(DRAW_SLOTS)

    def add(self, s1: np.ndarray, s2: np.ndarray, count: float) -> None:
        """Sums of consecutive draws (one entry each), each over ``count`` values."""
        while (self.draws + len(s1) + self.width - 1) // self.width > DRAW_SLOTS:
            for a in (self.count, self.s1, self.s2):
                pairs = a.reshape(-1, 2).sum(axis=1)
                a[:] = 0
                a[: len(pairs)] = pairs
            self.width *= 2
        if len(s1) == 1:
            slot = self.draws // self.width
            self.s1[slot] += s1[0]
            self.s2[slot] += s2[0]
            self.count[slot] += count
        else:
            slots = (self.draws + np.arange(len(s1))) // self.width
            self.s1 += np.bincount(slots, weights=s1, minlength=DRAW_SLOTS)
            self.s2 += np.bincount(slots, weights=s2, minlength=DRAW_SLOTS)
            self.count += np.bincount(slots, minlength=DRAW_SLOTS) * float(count)
        self.draws += len(s1)

    def result(self) -> AxisSums:
        used = (self.draws + self.width - 1) // self.width
        edges = np.minimum(np.arange(used + 1, dtype=np.int64) * self.width, self.draws)
        return AxisSums("draws", self.draws, edges, self.count[:used].copy(), self.s1[:used].copy(),
                        self.s2[:used].copy())


class GramStore:
    """The bounded store of selected grams (see the module docstring).

    A repeat is remembered by the number of halvings of the threshold it
    survives, so its count at the final rate is exact."""

    def __init__(self, k: int, expected_values: int | None = None):
        self.k = k
        full = 1 << 32
        if expected_values and expected_values > GRAM_STORE:
            # start where the store will end: about GRAM_STORE / 2 to GRAM_STORE selected
            self.threshold = max(1, full >> max(0, math.ceil(math.log2(expected_values / GRAM_STORE))))
        else:
            self.threshold = full
        self.start_threshold = self.threshold
        self._keys = np.zeros(0, dtype=np.uint64)
        self._key_hash = np.zeros(0, dtype=np.uint32)
        self._key_pos = np.zeros(0, dtype=np.int64)
        self._singles = np.zeros(0, dtype=np.uint64)
        self._single_hash = np.zeros(0, dtype=np.uint32)
        self._single_counts = np.zeros(0, dtype=np.int64)
        self._pending: list[tuple[np.ndarray, ...]] = []
        self._pending_size = 0
        self._repeat_levels = np.zeros(34, dtype=np.int64)  # by halvings survived
        self._examples: list[np.ndarray] = []
        self._example_hash: list[np.ndarray] = []
        self._examples_kept = 0
        self._tail: np.ndarray | None = None  # last k - 1 values of the stream, as bits
        self._small: list[np.ndarray] = []  # small draws not selected yet
        self._small_size = 0
        self._offset = 0
        self._buffers = None

    def fold(self, bits: np.ndarray) -> None:
        """The next values of the stream (raw 2-, 4- or 8-byte values on the
        host).  Small draws are gathered first and selected together: the
        grams of a stream do not depend on how it was cut."""
        if len(bits) < SMALL_FOLD:
            self._small.append(np.array(bits, copy=True))
            self._small_size += len(bits)
            if self._small_size >= 16 * SMALL_FOLD:
                self._flush_small()
            return
        self._flush_small()
        self._fold_now(bits)

    def _fold_now(self, bits: np.ndarray) -> None:
        self.select_junction(bits[: self.k - 1])
        self.select(bits, self._offset)
        self.advance(bits)

    def _flush_small(self) -> None:
        if self._small:
            gathered = np.concatenate(self._small)
            self._small, self._small_size = [], 0
            self._fold_now(gathered)

    @property
    def offset(self) -> int:
        """Values in the stream so far."""
        self._flush_small()
        return self._offset

    @property
    def grams(self) -> int:
        """Grams in the stream so far."""
        return max(0, self.offset - self.k + 1)

    def select_junction(self, head: np.ndarray) -> None:
        """Select the grams that start in the last k - 1 values of the stream
        and end in ``head``, the first k - 1 values of what comes next."""
        self._flush_small()
        if self.k > 1 and self._tail is not None:
            self.select(np.concatenate([self._tail, head]), self._offset - len(self._tail))

    def advance(self, bits: np.ndarray) -> None:
        """Move past ``bits`` (whose grams have been selected); only their last
        k - 1 values are kept, as the next junction's start (a host array, or
        any array of those last values)."""
        self._flush_small()
        self._offset += len(bits)
        if self.k > 1:
            last = np.asarray(bits[-(self.k - 1):])
            before = self._tail if self._tail is not None else last[:0]
            self._tail = np.concatenate([before, last])[-(self.k - 1):]

    def select(self, bits: np.ndarray, start: int) -> None:
        """Select the grams of the host values ``bits``, ``bits[0]`` at stream offset ``start``."""
        if len(bits) < self.k:
            return
        while len(bits) * (self.threshold / 2.0**32) > 2 * GRAM_STORE and self.threshold > 1:
            self.halve()  # more than the store holds in this one array alone: select fewer first
        needed = 0
        while True:
            capacity = max(1024, needed, int(len(bits) * self.threshold / 2.0**32 * 1.5) + 64)
            if self._buffers is None or len(self._buffers[0]) < capacity:
                self._buffers = (np.empty(capacity, np.int64), np.empty(capacity, np.uint64),
                                 np.empty(capacity, np.uint64), np.empty(capacity, np.uint32))
            pos, key, single, hashes = self._buffers
            found = kernels.grams(bits, self.k, self.threshold, start, pos, key, single, hashes)
            if found <= len(pos):
                break
            if found > 4 * GRAM_STORE and self.threshold > 1:
                self.halve()  # far more than the store holds: select fewer before keeping any
                needed = 0
            else:
                needed = found
        if found:
            self.add(*(a[:found].copy() for a in (pos, key, single, hashes)))

    def add(self, pos: np.ndarray, key: np.ndarray, single: np.ndarray, hashes: np.ndarray) -> None:
        """Grams selected elsewhere (on a device, by the same rule at the
        current ``threshold``): int64 positions, uint64 keys and first values,
        uint32 hashes, as ``kernels.grams`` writes them."""
        self._pending.append((pos, key, single, hashes))
        self._pending_size += len(pos)
        if self._pending_size >= GRAM_STORE:
            self._compact()

    def _level(self, hashes: np.ndarray) -> np.ndarray:
        """How many halvings of the starting threshold each hash survives (at most 33)."""
        levels = np.zeros(len(hashes), dtype=np.int64)
        t = np.uint64(self.start_threshold)
        h = hashes.astype(np.uint64)
        for j in range(1, 34):
            t = t >> np.uint64(1)
            levels += h < t
        return levels

    def _compact(self) -> None:
        if not self._pending:
            return
        pos, key, single, hashes = (np.concatenate(parts) for parts in zip(*self._pending))
        self._pending, self._pending_size = [], 0
        # grams: the earliest of each key stays, later ones are repeats
        all_keys = np.concatenate([self._keys, key])
        all_pos = np.concatenate([self._key_pos, pos])
        all_hash = np.concatenate([self._key_hash, hashes])
        order = _grouped_order(all_keys)
        sorted_keys = all_keys[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = sorted_keys[1:] != sorted_keys[:-1]
        repeat = order[~first]
        if len(repeat):
            np.add.at(self._repeat_levels, self._level(all_hash[repeat]), 1)
            if self._examples_kept < EXAMPLES:
                group_first = order[np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))]
                earlier = group_first[~first]
                take = slice(0, EXAMPLES - self._examples_kept)
                self._examples.append(np.stack([all_pos[earlier], all_pos[repeat]], axis=1)[take])
                self._example_hash.append(all_hash[repeat][take])
                self._examples_kept += len(self._examples[-1])
        keep = order[first]
        self._keys, self._key_pos, self._key_hash = sorted_keys[first], all_pos[keep], all_hash[keep]
        # first values alone: each distinct one with how often it was selected
        all_singles = np.concatenate([self._singles, single])
        all_single_hash = np.concatenate([self._single_hash, hashes])
        all_counts = np.concatenate([self._single_counts, np.ones(len(single), dtype=np.int64)])
        order = _grouped_order(mix64(all_singles))
        sorted_singles = all_singles[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = sorted_singles[1:] != sorted_singles[:-1]
        starts = np.flatnonzero(first)
        # (equal values are adjacent; a value split around another one that
        # shares its 44-bit hash prefix, about one compaction in 10^3, only
        # counts as two distinct values: fewer repeats, a larger bound)
        self._singles, self._single_hash = sorted_singles[starts], all_single_hash[order[starts]]
        self._single_counts = np.add.reduceat(all_counts[order], starts) if len(starts) else all_counts[:0]
        while len(self._keys) > GRAM_STORE or len(self._singles) > GRAM_STORE:
            self.halve()

    def halve(self) -> None:
        """Halve the selection rate, dropping what the lower threshold does not select."""
        self.threshold = max(1, self.threshold // 2)
        t = np.uint64(self.threshold)
        for name in ("_keys", "_key_pos"):
            setattr(self, name, getattr(self, name)[self._key_hash.astype(np.uint64) < t])
        self._key_hash = self._key_hash[self._key_hash.astype(np.uint64) < t]
        kept = self._single_hash.astype(np.uint64) < t
        self._singles, self._single_hash = self._singles[kept], self._single_hash[kept]
        self._single_counts = self._single_counts[kept]
        self._pending = [tuple(a[h.astype(np.uint64) < t] for a in (p, k, s, h)) for p, k, s, h in self._pending]
        self._pending_size = sum(len(p[0]) for p in self._pending)

    def result(self, draw_size: int) -> Grams:
        self._flush_small()
        self._compact()
        halvings = round(math.log2(self.start_threshold / self.threshold)) if self.threshold else 33
        repeats = int(self._repeat_levels[halvings:].sum())
        counts = self._single_counts
        singles = int((counts * (counts - 1) // 2).sum())
        examples = np.zeros((0, 2), dtype=np.int64)
        if self._examples:
            hashes = np.concatenate(self._example_hash).astype(np.uint64)
            examples = np.concatenate(self._examples)[hashes < np.uint64(self.threshold)]
        return Grams(self.k, int(self.threshold), int(self.grams), len(self._keys) + repeats, repeats, singles,
                     draw_size, examples)


def _grouped_order(keys: np.ndarray) -> np.ndarray:
    """A permutation that puts equal keys (uint64 hashes) next to each other,
    each group in its original order: one plain sort of the keys with their
    index in the low bits (``kernels.sort_uint64``, a radix sort; an argsort
    is 20 times slower).  Keys sharing their top 64 - b bits (b the index bits)
    but not the rest may interleave, one pair in about 2^(64 - b) / n^2: a
    repeat missed, never one made up."""
    n = len(keys)
    bits = max(1, (n - 1).bit_length())
    if bits > 32:
        return np.argsort(keys, kind="stable")
    low = np.uint64((1 << bits) - 1)
    packed = (keys & ~low) | np.arange(n, dtype=np.uint64)
    kernels.sort_uint64(packed)
    return (packed & low).astype(np.int64)


class StructureFolder:
    """Folds host draws of one shape into a :class:`Structure`.

    ``fold(values, draws, bits)``: ``values`` the flat float32/float64 values
    of ``draws`` consecutive draws, ``bits`` the same values as stored (the
    16-bit patterns of a 16-bit row; ``values`` itself otherwise)."""

    def __init__(self, ref: float, shape, itemsize: int, expected_values: int | None = None):
        self.ref = float(ref)
        self.shape = tuple(int(d) for d in shape)
        self.size = math.prod(self.shape)
        n = self.size
        self.elements = n <= ELEMENTS
        self._draw_axis = _DrawAxis()
        self._grams = GramStore(gram_length(itemsize), expected_values)
        self._draws = 0
        if self.elements:
            self._e1, self._e2 = np.zeros(max(n, 1)), np.zeros(max(n, 1))
            self._rows = self._cols = None
        else:
            if len(self.shape) >= 2:
                self._row_len = n // self.shape[0]
                self._rows_axis = _Axis(_axis_name(self.shape, 0), self.shape[0])
            else:  # a long vector: blocks of contiguous positions
                self._row_len = math.ceil(n / ELEMENTS)
                self._rows_axis = None
                blocks = n // self._row_len
                edges = np.append(np.arange(blocks + 1, dtype=np.int64) * self._row_len, n)
                self._block_axis = _Axis(_axis_name(self.shape, 0), n, np.unique(edges))
            self._has_cols = len(self.shape) >= 2 and self._row_len <= MAX_COLUMNS
            cols = self._row_len if self._has_cols else 1
            self._c1, self._c2 = np.zeros(cols), np.zeros(cols)
            # the draw sums' first ELEMENTS positions: per-position sums of d
            # (and of d^2, which only the kernel's interface needs) and one sum of d^2
            self._p1, self._p1_squares, self._p2 = np.zeros(ELEMENTS), np.zeros(ELEMENTS), 0.0
            self._head_sums = np.empty(2)

    def fold(self, values: np.ndarray, draws: int, bits: np.ndarray | None = None) -> None:
        if draws == 0 or self.size == 0:
            return
        self._grams.fold(values if bits is None else bits)
        n = self.size
        if self.elements:
            r1, r2 = np.empty(draws), np.empty(draws)
            kernels.positions(values, n, self.ref, r1, r2, self._e1, self._e2)
            self._draw_axis.add(r1, r2, n)
        else:
            for k in range(draws):
                draw = values[k * n : (k + 1) * n]
                self._fold_large(lambda a, b: draw[a:b], n)
        self._draws += draws

    def fold_in_parts(self, values_of, bits: np.ndarray, part: int) -> None:
        """One large draw given piecewise: ``values_of(a, b)`` returns its
        values a..b-1 (float32/float64), at most about ``part`` values at a
        time, so no full copy of the draw is ever made (16-bit draws seen as
        float32); ``bits`` is the draw as stored, for the grams."""
        if self.elements:  # small enough to see whole
            self.fold(values_of(0, self.size), 1, bits)
            return
        self._grams.fold(bits)
        self._fold_large(values_of, part)
        self._draws += 1

    def _fold_large(self, values_of, part: int) -> None:
        """A draw of more than ELEMENTS values, whole rows of ``_row_len`` at a time."""
        n, length = self.size, self._row_len
        rows = n // length
        r1, r2 = np.empty(rows), np.empty(rows)
        step = max(1, part // length)
        for r0 in range(0, rows, step):
            r_end = min(rows, r0 + step)
            chunk = values_of(r0 * length, r_end * length)
            if self._has_cols:
                kernels.positions(chunk, length, self.ref, r1[r0:r_end], r2[r0:r_end], self._c1, self._c2)
            elif self._rows_axis is None:  # a long vector's blocks (short: ceil(n / ELEMENTS) values)
                kernels.positions(chunk, length, self.ref, r1[r0:r_end], r2[r0:r_end], np.zeros(length),
                                  np.zeros(length))
            else:  # rows too long to keep per-element sums of: row sums alone, a chunk at a time
                for r in range(r0, r_end):
                    r1[r], r2[r] = _sums(chunk[(r - r0) * length : (r - r0 + 1) * length], self.ref)
        s1, s2 = float(r1.sum()), float(r2.sum())
        if self._rows_axis is not None:
            self._rows_axis.add(r1, r2, length)
        else:  # blocks of `length` positions, the last one short
            counts = np.diff(self._block_axis.edges).astype(np.float64)
            if rows * length < n:
                t1, t2 = _sums(values_of(rows * length, n), self.ref)
                r1, r2 = np.append(r1, t1), np.append(r2, t2)
                s1, s2 = s1 + t1, s2 + t2
            self._block_axis.add_groups(r1, r2, counts)
        self._draw_axis.add(np.array([s1]), np.array([s2]), n)
        head = self._head_sums
        kernels.positions(values_of(0, ELEMENTS), ELEMENTS, self.ref, head[:1], head[1:], self._p1,
                          self._p1_squares)
        self._p2 += float(head[1])

    def result(self) -> Structure:
        shape, n, draws = self.shape, self.size, self._draws
        axes = []
        if draws and n:
            if self.elements:
                e1, e2 = self._e1[:n].reshape(shape), self._e2[:n].reshape(shape)
                for a in range(len(shape)):
                    other = tuple(i for i in range(len(shape)) if i != a)
                    axis = _Axis(_axis_name(shape, a), shape[a])
                    axis.add(e1.sum(axis=other), e2.sum(axis=other), draws * n / shape[a])
                    axes.append(axis.result())
                draw_sums = DrawSums.of(draws, self._e1[:n].copy(), float(self._e2[:n].sum()))
            else:
                if self._rows_axis is not None:
                    axes.append(self._rows_axis.result())
                else:
                    axes.append(self._block_axis.result())
                if self._has_cols:
                    rest = shape[1:]
                    c1, c2 = self._c1.reshape(rest), self._c2.reshape(rest)
                    for a in range(len(rest)):
                        other = tuple(i for i in range(len(rest)) if i != a)
                        axis = _Axis(_axis_name(shape, a + 1), rest[a])
                        axis.add(c1.sum(axis=other), c2.sum(axis=other), draws * n / rest[a])
                        axes.append(axis.result())
                draw_sums = DrawSums.of(draws, self._p1.copy(), self._p2)
            axes.append(self._draw_axis.result())
        else:
            draw_sums = None
        return Structure(shape, axes, draw_sums, self._grams.result(n))


def _sums(x: np.ndarray, ref: float) -> tuple[float, float]:
    """(sum of d, sum of d^2) of x, a bounded chunk at a time."""
    s1 = s2 = 0.0
    for start in range(0, len(x), 1 << 18):
        d = np.subtract(x[start : start + (1 << 18)], ref, dtype=np.float64)
        s1 += float(d.sum())
        s2 += float(np.einsum("i,i->", d, d))
    return s1, s2


def _axis_name(shape: tuple, axis: int) -> str:
    """How a report names an axis: rows and columns of a matrix, else its index."""
    if len(shape) == 2:
        return ("rows", "columns")[axis]
    if len(shape) == 1:
        return "positions"
    return f"axis {axis}"
