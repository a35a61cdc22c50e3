"""The host side of the structure statistics (:mod:`initcheck.structure`) that
the device reducers (torch, JAX) fold where their draws live.

A device keeps the sums :class:`~initcheck.structure.StructureFolder` keeps on
the host, in float64, laid out as :class:`StructureLayout` says, and selects
the grams of the copies check by the rule of ``initcheck/_kernels.c``
``grams``; only the selected grams' values come to the host, where their keys
are computed and fed to the row's :class:`~initcheck.structure.GramStore`.  At
the end :meth:`StructureLayout.result` puts the device's totals, copied to the
host once, where a StructureFolder of the same draw shape keeps its sums, and
lets it assemble the :class:`~initcheck.structure.Structure`: its layout
(which sums a draw of that shape keeps) and its result are StructureFolder's
own, so the device's Structure is the host's for the same draws (sums to
float64 rounding).  That folder is only a host-side shell: it folds nothing,
and what it holds is bounded as it is for a host row.

NumPy only: the backends import it without importing a framework here.
"""

from __future__ import annotations

import numpy as np

from initcheck._kernels_numpy import mix64
from initcheck.structure import DRAW_SLOTS, ELEMENTS, GRAM_STORE, Structure, StructureFolder

__all__ = ["DRAW_SLOTS", "ELEMENTS", "GRAM_STORE", "StructureLayout", "gram_keys"]

#: The selection hash of ``_kernels.c`` ``grams``: h = fmix32(fold + SALT mod 2^32),
#: fold = the low 32 bits of a ^ (a >> 32), a the value's bits without sign, and
#: fmix32 murmur3's finalizer with these multipliers.
SALT, FMIX1, FMIX2 = 0x9E3779B9, 0x85EBCA6B, 0xC2B2AE35
_GOLDEN = 0x9E3779B97F4A7C15
_UNSIGNED = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def gram_keys(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key, single, first sign) of grams given as their k values, shape (m, k),
    unsigned 16-, 32- or 64-bit: exactly what ``kernels.grams`` computes for a
    selected gram (the chain of mix64 over the values' bits without sign, each
    with its sign relative to the first)."""
    m, k = windows.shape
    sign = np.uint64(1 << (8 * windows.dtype.itemsize - 1))
    w = windows.astype(np.uint64)
    a = w & ~sign
    s = (w & sign) != np.uint64(0)
    s0 = s[:, 0]
    acc = np.full(m, (_GOLDEN * k) & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
    for t in range(k):
        acc = mix64(acc ^ ((a[:, t] << np.uint64(1)) | (s[:, t] ^ s0).astype(np.uint64)))
    return acc, a[:, 0].copy(), s0


class _LastValues:
    """Stands for ``count`` stream values of which only the last ones are on the
    host: what :meth:`GramStore.advance` reads (its length, its last k - 1 values)."""

    def __init__(self, count: int, last: np.ndarray):
        self._count, self._last = count, last

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: slice) -> np.ndarray:
        start, stop, step = index.indices(self._count)
        known = self._count - len(self._last)
        if step != 1 or start < known:
            raise IndexError("only the last values of the device's stream are on the host")
        return self._last[start - known : stop - known]


class StructureLayout:
    """What a device accumulates for the structure of draws of one shape, and
    the host-side state that goes with it (the draw slots' width, the gram
    store), as the StructureFolder ``folder`` keeps them.  Per finite draw,
    with d = x - ref in float64:

    * ``elements`` (at most ELEMENTS values): per element, the sums of d and
      d^2 over draws (``e1``, ``e2``, length ``size``).
    * Otherwise the draw is read as ``rows`` runs of ``row_length`` values
      (rows of its first axis; for a 1-d draw, blocks of contiguous values, then
      the ``tail`` values left over as one more block): ``g1``, ``g2``, the sums
      of d and d^2 of each run, added into ``groups`` groups (run r into group
      ``run_group[r]`` where runs outnumber groups, else its own); ``c1``,
      ``c2``, per element of a row (``columns`` of them, 0 for none); ``p1``,
      per element of the draw's first ``prefix`` values, the sum of d, and
      ``p2`` the sum of their d^2.
    * Each draw's sums of d and d^2 (over all its values) into the draw slots
      ``slot_s1``, ``slot_s2`` (DRAW_SLOTS of them) and its value count into
      ``slot_count``: draw number ``draws + i`` (i counting this batch's finite
      draws) goes to slot ``(draws + i) // width``, after the slots have been
      paired up :meth:`doublings` times.
    """

    def __init__(self, ref: float, shape, itemsize: int, expected_values: int | None = None):
        self.folder = folder = StructureFolder(ref, shape, itemsize, expected_values)
        self.ref, self.shape, self.size = folder.ref, folder.shape, folder.size
        self.itemsize = itemsize
        self.store = folder._grams
        self.k = self.store.k
        self.unsigned = _UNSIGNED[itemsize]
        self.draws = 0
        self.width = 1
        self.elements = folder.elements
        self.prefix = min(self.size, ELEMENTS)
        self.row_length = self.rows = self.columns = 0
        self.tail = False
        self.run_group = None
        if self.elements:
            return
        n = self.size
        self.row_length = folder._row_len
        self.rows = n // self.row_length
        self._axis = folder._rows_axis if folder._rows_axis is not None else folder._block_axis
        self.edges = self._axis.edges
        if folder._rows_axis is not None:  # rows of the first axis, perhaps grouped
            self._group_counts = np.diff(self.edges).astype(np.float64) * self.row_length
            if len(self.edges) - 1 < self.rows:
                self.run_group = np.repeat(np.arange(len(self.edges) - 1), np.diff(self.edges))
        else:  # a long vector's blocks: each its own group, the last one perhaps short
            self.tail = self.rows * self.row_length < n
            self._group_counts = np.diff(self.edges).astype(np.float64)
            if len(self.edges) - 1 != self.rows + self.tail:
                raise AssertionError("device structure: StructureFolder's blocks are not runs of row_length")
        if folder._has_cols:
            self.columns = self.row_length

    @property
    def groups(self) -> int:
        """Groups of runs (large draws), the length of ``g1`` and ``g2``."""
        return len(self.edges) - 1 if not self.elements else 0

    def doublings(self, draws: int) -> int:
        """How many times the device's draw slots must be paired up (slot 2j
        and 2j + 1 into j) before ``draws`` more draws go in; the width follows."""
        times = 0
        while (self.draws + draws + self.width - 1) // self.width > DRAW_SLOTS:
            self.width *= 2
            times += 1
        return times

    # ------------------------------------------------------------------ grams

    def host_bits(self, array) -> np.ndarray:
        """A host copy of stream values (any integer view of their bits) as unsigned bits."""
        return np.ascontiguousarray(np.asarray(array)).view(self.unsigned).reshape(-1)

    def junction(self, head) -> None:
        """The grams that start in the stream's last k - 1 values and end in
        ``head``, the first k - 1 values of the data that comes next (host bits)."""
        self.store.select_junction(self.host_bits(head))

    def add_grams(self, first: np.ndarray, windows: np.ndarray, hashes: np.ndarray) -> None:
        """Grams the device selected in the next data at the store's threshold:
        their offsets in it, their k values (m, k) and selection hashes."""
        if not len(first):
            return
        key, single, s0 = gram_keys(self.host_bits(windows).reshape(len(first), self.k))
        pos = 2 * (self.store.offset + np.asarray(first, dtype=np.int64)) + s0.astype(np.int64)
        self.store.add(pos, key, single, np.asarray(hashes).astype(np.uint32))

    def advance(self, count: int, last) -> None:
        """Move the store past ``count`` values whose grams were selected; ``last``
        holds their last min(count, k - 1) values (host bits)."""
        last = self.host_bits(last)
        self.store.advance(_LastValues(count, last[len(last) - min(len(last), self.k - 1):]))

    # ------------------------------------------------------------------ the result

    def result(self, totals: dict) -> Structure:
        """The Structure from the device's totals (host arrays, named as in the
        class docstring): set where the folder keeps its sums, then its result."""
        folder, n, draws = self.folder, self.size, self.draws
        folder._draws = draws
        if self.elements:
            folder._e1[:n], folder._e2[:n] = totals["e1"][:n], totals["e2"][:n]
        else:
            self._axis.s1[:], self._axis.s2[:] = totals["g1"], totals["g2"]
            self._axis.count[:] = self._group_counts * draws
            if self.columns:
                folder._c1[:], folder._c2[:] = totals["c1"], totals["c2"]
            folder._p1[:], folder._p2 = totals["p1"], float(totals["p2"])
        slots = folder._draw_axis
        slots.width, slots.draws = self.width, draws
        for name in ("count", "s1", "s2"):
            getattr(slots, name)[:] = totals["slot_" + name][:DRAW_SLOTS]
        return folder.result()
