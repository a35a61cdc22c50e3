"""NumPy implementation of :mod:`initcheck._kernels`, for installs without the C kernel.

The same three functions with the same arguments, checks and in-place updates
(see ``initcheck/_kernels.c``); :mod:`initcheck.kernels` picks one of the two.

* ``fold`` gives the C kernel's cells bit for bit: the same float64
  operations in the same order (``t = (x - lo) * scale``, ``j = floor(t)``
  clamped, ``floor(cum[j] + (t - j) * slope[j]) + 1`` clamped, cell 0 below
  and ``cells + 1`` at or above; on a uniform law's exactly linear grid the C
  kernel's table-free rule, which gives the same cells).  Counts and extremes
  are exact too.  The power sums and the lag-1 pair sums are equal to
  rounding only: float64 sums added in another order (NumPy's pairwise sums,
  the C kernel's vector lanes) differ in the last bits.
* Large draws are processed ``CHUNK`` values at a time, so the temporaries
  take O(CHUNK) memory whatever the draw's size.

Speed (float32 normal draws of 256 x 784, one core of a 2-core VM, best of
20): fold + pairs 17 ns a value (fold 14, pairs 3), the C kernel 2.6 (2.3 and
0.3), so about 7 times slower.  A batch of 400,000 draws of (2, 5) folds in
about 0.15 s (C: 0.04 s); a lone tiny draw costs about 150 us of call
overhead (C: 10 us), so tiny shapes want batches on this path.
"""

from __future__ import annotations

import math
import threading

import numpy as np

#: Values processed at a time (a few float64 temporaries of 2 MiB each).
CHUNK = 1 << 18
#: Below this many values, cells are added one by one rather than by a
#: bincount as long as the histogram (65538 cells cost ~50 us to add up).
SMALL = 4096


def _input(x, function: str, name: str = "x") -> np.ndarray:
    """A flat view of a contiguous input buffer."""
    array = np.asarray(x)
    if not array.flags.c_contiguous:
        raise TypeError(f"{function}: {name} must be a contiguous buffer")
    return array.reshape(-1)


def _values(x, function: str, name: str = "x") -> np.ndarray:
    array = _input(x, function, name)
    if array.dtype not in (np.float32, np.float64):
        raise TypeError(f"{function}: {name} must be float32 or float64, got {array.dtype}")
    return array


def _output(a, kind: str, itemsize: int, min_items: int, function: str, name: str) -> np.ndarray:
    """A flat writable view of an output array of this kind, or TypeError (as the C kernel)."""
    if not isinstance(a, np.ndarray) or not a.flags.c_contiguous or not a.flags.writeable:
        raise TypeError(f"{function}: {name} must be a contiguous writable buffer")
    if a.dtype.kind != kind or a.dtype.itemsize != itemsize or a.size < min_items:
        raise TypeError(f"{function}: {name} must hold at least {min_items} items of {kind}{itemsize * 8}")
    return a.reshape(-1)


_steps: dict = {}


def _linear_step(cum: np.ndarray, segments: int) -> float:
    """``step`` when ``cum[j] == j * step`` for every j and step is a power of two, else 0
    (the C kernel's test for its table-free rule); remembered per table."""
    key = cum[: segments + 1].tobytes()
    step = _steps.get(key)
    if step is None:
        step = float(cum[segments]) / segments
        if not step > 0 or math.frexp(step)[0] != 0.5 or not np.array_equal(
            cum[: segments + 1], np.arange(segments + 1) * step
        ):
            step = 0.0
        if len(_steps) > 64:
            _steps.clear()
        _steps[key] = step
    return step


class _Scratch(threading.local):
    """Work arrays of CHUNK values, one set per thread, kept between calls:
    fresh arrays of megabytes cost page faults that took longer than the
    arithmetic done in them."""

    size = 0

    def get(self, size: int):
        if size > self.size:
            self.size = max(size, min(CHUNK, 1 << 12))
            self.f = np.empty((3, self.size))
            self.i = np.empty(self.size, dtype=np.intp)
            self.b = np.empty(self.size, dtype=bool)
        return self.f[0, :size], self.f[1, :size], self.f[2, :size], self.i[:size], self.b[:size]


_scratch = _Scratch()


def fold(x, ref, lo, segment_scale, cum, slope, sums, extremes, counts, hist) -> None:
    """Fold one draw (any float32 or float64 buffer) into the running statistics:
    ``sums`` += the power sums of the finite values about ``ref``, ``extremes``
    their min and max, ``counts`` += finite, NaN, +Inf, -Inf, ``hist`` += the
    cells of the finite values (see ``initcheck/_kernels.c``)."""
    x = _values(x, "fold")
    slope = _table(slope, "fold", "slope", 1)
    segments = slope.size
    cum = _table(cum, "fold", "cum", segments + 1)
    sums = _output(sums, "f", 8, 4, "fold", "sums")
    extremes = _output(extremes, "f", 8, 2, "fold", "extremes")
    counts = _output(counts, "i", 8, 4, "fold", "counts")
    cells = int(cum[segments])
    hist = _output(hist, "i", 4, cells + 2, "fold", "hist")[: cells + 2]
    grid = (float(lo), float(segment_scale), cum, slope, segments, cells, _linear_step(cum, segments))
    ref = float(ref)
    s = np.zeros(4)
    low, high = float(extremes[0]), float(extremes[1])
    found = np.zeros(4, dtype=np.int64)  # finite, NaN, +Inf, -Inf
    with np.errstate(all="ignore"):
        for start in range(0, x.size, CHUNK):
            part = x[start : start + CHUNK]
            part_sums = _power_sums(part, ref)
            if not math.isfinite(part_sums.sum()):  # NaN or Inf (or an overflow): the careful path
                finite = np.isfinite(part)
                if not finite.all():
                    nan = int(np.count_nonzero(np.isnan(part)))
                    posinf = int(np.count_nonzero(part == np.inf))
                    found[1:] += nan, posinf, part.size - int(np.count_nonzero(finite)) - nan - posinf
                    part = part[finite]
                    part_sums = _power_sums(part, ref)
            found[0] += part.size
            if part.size == 0:
                continue
            s += part_sums
            low, high = min(low, float(part.min())), max(high, float(part.max()))
            index = _cells(part, *grid)
            if part.size < SMALL:
                np.add.at(hist, index, 1)
            else:
                hist += np.bincount(index, minlength=cells + 2)
    sums[:4] += s
    extremes[0], extremes[1] = low, high
    counts[:4] += found


def _table(a, function: str, name: str, min_items: int) -> np.ndarray:
    array = _input(a, function, name)
    if array.dtype != np.float64 or array.size < min_items:
        raise TypeError(f"{function}: {name} must hold at least {min_items} items of float64")
    return array


def _power_sums(part: np.ndarray, ref: float) -> np.ndarray:
    d, d2, _, _, _ = _scratch.get(part.size)
    np.subtract(part, ref, out=d, dtype=np.float64)  # (double)x - ref, as the C kernel
    np.multiply(d, d, out=d2)
    s1, s2 = d.sum(), d2.sum()
    d *= d2  # no BLAS dot: its threads fight the framework's for the cores
    s3 = d.sum()
    d2 *= d2
    return np.array([s1, s2, s3, d2.sum()])


def _cells(part, lo, scale, cum, slope, segments, cells, step) -> np.ndarray:
    """The cell of every (finite) value: the grid's rule, as the C kernel rounds it."""
    t, u, v, index, mask = _scratch.get(part.size)
    np.subtract(part, lo, out=t, dtype=np.float64)
    if step > 0:  # linear grid: cum[j] + (t - j) * step == t * step exactly
        t *= scale * step
        np.clip(t, -1.0, float(cells), out=t)
        np.floor(t, out=t)
        np.copyto(index, t, casting="unsafe")
        index += 1
        return index
    t *= scale
    j = np.floor(t, out=u)
    np.clip(j, 0, segments - 1, out=j)
    np.copyto(index, j, casting="unsafe")
    np.subtract(t, j, out=u)  # t - j
    u *= slope.take(index, out=v)
    u += cum.take(index, out=v)  # cum[j] + (t - j) * slope[j]: addition commutes exactly
    np.floor(u, out=u)
    np.minimum(u, cells - 1, out=u)
    u += 1
    np.less(t, 0, out=mask)
    np.copyto(u, 0, where=mask)
    np.greater_equal(t, segments, out=mask)
    np.copyto(u, cells + 1, where=mask)
    np.copyto(index, u, casting="unsafe")
    return index


def pairs(x, previous, row_length, ref, out, draw_length=0) -> None:
    """Lag-1 pair sums of one draw or of a batch of draws (see ``initcheck/_kernels.c``):
    ``out[0]`` neighbouring values within a draw, ``out[1]`` values ``row_length``
    apart within a draw, ``out[2]`` the same position in consecutive draws
    (``previous``, the draw before the first, may be None); each row += {sum of
    products of deviations from ref, the two sums of deviations, the pair count}."""
    x = _values(x, "pairs")
    o = _output(out, "f", 8, 12, "pairs", "out")
    n = x.size
    draw_length = int(draw_length)
    if draw_length < 0 or (draw_length > 0 and n % draw_length != 0):
        raise ValueError(f"pairs: x holds {n} values, not a whole number of draws of {draw_length}")
    m = draw_length or n
    draws = n // m if m else 0
    if previous is not None:
        previous = _input(previous, "pairs", "previous")
        if previous.size != m or previous.dtype != x.dtype:
            raise ValueError("pairs: previous must match one draw of x in size and dtype")
    lag = int(row_length) if int(row_length) >= 1 else m
    ref = float(ref)
    acc = np.zeros((3, 4))
    if m <= CHUNK:
        _small_draws(x, previous, draws, m, lag, ref, acc)
    else:
        for k in range(draws):
            draw = x[k * m : (k + 1) * m]
            before = previous if k == 0 else x[(k - 1) * m : k * m]
            _large_draw(draw, before, m, lag, ref, acc)
    o[:12] += acc.reshape(-1)


def _add(acc_row: np.ndarray, a: np.ndarray, b: np.ndarray, work: np.ndarray) -> None:
    """acc_row += {sum ab, sum a, sum b, count} for float64 arrays of one shape;
    ``work`` holds at least a.size values."""
    if a.size == 0:
        return
    product = np.multiply(a, b, out=work[: a.size].reshape(a.shape))
    acc_row += product.sum(), a.sum(), b.sum(), a.size


def _small_draws(x, previous, draws, m, lag, ref, acc) -> None:
    """Draws of at most CHUNK values: whole draws at a time, as a 2-D array."""
    if draws == 0:
        return
    per_chunk = max(1, CHUNK // max(m, 1))
    d_all, work, keep, _, _ = _scratch.get(min(draws, per_chunk) * m)
    before = None  # the draw before the chunk's first, as deviations, in keep
    if previous is not None:
        before = np.subtract(previous, ref, out=keep[:m], dtype=np.float64)
    for k0 in range(0, draws, per_chunk):
        k1 = min(draws, k0 + per_chunk)
        part = x[k0 * m : k1 * m]
        d = np.subtract(part, ref, out=d_all[: part.size], dtype=np.float64)
        block = d.reshape(k1 - k0, m)
        if m > 1:
            _add(acc[0], block[:, :-1], block[:, 1:], work)
        if 0 < lag < m:
            _add(acc[1], block[:, :-lag], block[:, lag:], work)
        if before is not None:
            _add(acc[2], before, block[0], work)
        _add(acc[2], d[:-m], d[m:], work)
        before = keep[:m]
        np.copyto(before, block[-1])


def _large_draw(draw, before, m, lag, ref, acc) -> None:
    """One draw of more than CHUNK values, CHUNK pairs at a time."""
    lags = [(0, 1)] + ([(1, lag)] if 0 < lag < m else [])
    for row, step in lags:
        for start in range(0, m - step, CHUNK):
            end = min(start + CHUNK, m - step)
            a, b, work, _, _ = _scratch.get(end - start)
            np.subtract(draw[start:end], ref, out=a, dtype=np.float64)
            np.subtract(draw[start + step : end + step], ref, out=b, dtype=np.float64)
            _add(acc[row], a, b, work)
    if before is not None:
        for start in range(0, m, CHUNK):
            end = min(start + CHUNK, m)
            a, b, work, _, _ = _scratch.get(end - start)
            np.subtract(before[start:end], ref, out=a, dtype=np.float64)
            np.subtract(draw[start:end], ref, out=b, dtype=np.float64)
            _add(acc[2], a, b, work)


def bit_patterns(x, counts) -> None:
    """``counts[pattern] += 1`` for every 16-bit value of x (float16 or bfloat16
    seen as uint16); counts int64[65536]."""
    array = _input(x, "bit_patterns")
    if array.dtype.itemsize != 2 or array.nbytes % 2 != 0:
        raise TypeError("bit_patterns: x must hold 16-bit values")
    c = _output(counts, "i", 8, 65536, "bit_patterns", "counts")[:65536]
    patterns = array.view(np.uint16)
    for start in range(0, patterns.size, CHUNK):
        c += np.bincount(patterns[start : start + CHUNK], minlength=65536)


def positions(x, cols, ref, row_s1, row_s2, col_s1, col_s2) -> None:
    """x read as a (rows, cols) matrix: ``row_s1``/``row_s2`` set to each row's
    sum of d = x - ref and of d^2, ``col_s1``/``col_s2`` += each column's."""
    x = _values(x, "positions")
    cols = int(cols)
    if cols < 1 or x.size % cols != 0:
        raise ValueError(f"positions: {x.size} values are not whole rows of {cols}")
    rows = x.size // cols
    out = [_output(a, "f", 8, size, "positions", name) for a, size, name in (
        (row_s1, rows, "row_s1"), (row_s2, rows, "row_s2"), (col_s1, cols, "col_s1"), (col_s2, cols, "col_s2"))]
    matrix = x.reshape(rows, cols)
    per_chunk = max(1, CHUNK // cols)
    for r0 in range(0, rows, per_chunk):
        d = np.subtract(matrix[r0 : r0 + per_chunk], ref, dtype=np.float64)
        e = d * d
        out[0][r0 : r0 + len(d)] = d.sum(axis=1)
        out[1][r0 : r0 + len(d)] = e.sum(axis=1)
        out[2][:cols] += d.sum(axis=0)
        out[3][:cols] += e.sum(axis=0)


_SIGN = {2: np.uint16(0x8000), 4: np.uint32(0x80000000), 8: np.uint64(0x8000000000000000)}
_UNSIGNED = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _select_hash(a: np.ndarray) -> np.ndarray:
    """The murmur3 32-bit finalizer of a (uint64) folded to 32 bits plus 0x9E3779B9."""
    h = ((a ^ (a >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    with np.errstate(over="ignore"):
        h += np.uint32(0x9E3779B9)
        h ^= h >> np.uint32(16)
        h *= np.uint32(0x85EBCA6B)
        h ^= h >> np.uint32(13)
        h *= np.uint32(0xC2B2AE35)
        h ^= h >> np.uint32(16)
    return h


def mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, a bijection of uint64 (the C kernel's mix64)."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def grams(x, k, threshold, start, pos, key, single, hash) -> int:
    """The selected k-grams of x (see ``initcheck/_kernels.c``): gram i (values
    i..i+k-1) is selected when the hash of x[i]'s bits without sign is below
    ``threshold``; writes up to the outputs' capacity, returns how many."""
    array = _input(x, "grams")
    k, threshold, start = int(k), int(threshold), int(start)
    if not 1 <= k <= 8 or threshold > 1 << 32 or threshold < 0:
        raise ValueError("grams: k must be 1..8 and threshold at most 2^32")
    size = array.dtype.itemsize
    if size not in _SIGN:
        raise TypeError("grams: x must hold 2-, 4- or 8-byte values")
    outputs = [_output(a, kind, 8 if name != "hash" else 4, 0, "grams", name) for a, kind, name in (
        (pos, "i", "pos"), (key, "u", "key"), (single, "u", "single"), (hash, "u", "hash"))]
    capacity = min(len(a) for a in outputs)
    bits = array.view(_UNSIGNED[size])
    sign = _SIGN[size]
    n = bits.size
    found = 0
    for c0 in range(0, max(n - k + 1, 0), CHUNK):
        c1 = min(n - k + 1, c0 + CHUNK)
        a = (bits[c0:c1] & ~sign).astype(np.uint64)
        h = _select_hash(a)
        chosen = np.flatnonzero(h.astype(np.uint64) < np.uint64(threshold)) if threshold < 1 << 32 else np.arange(c1 - c0)
        room = max(0, min(len(chosen), capacity - found))
        take = chosen[:room]
        if room:
            first = take + c0
            s0 = (bits[first] & sign) != 0
            acc = np.full(room, (0x9E3779B97F4A7C15 * k) & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
            for t in range(k):
                v = bits[first + t]
                s = ((v & sign) != 0) ^ s0
                acc = mix64(acc ^ (((v & ~sign).astype(np.uint64) << np.uint64(1)) | s.astype(np.uint64)))
            outputs[0][found : found + room] = 2 * (start + first) + s0
            outputs[1][found : found + room] = acc
            outputs[2][found : found + room] = a[take]
            outputs[3][found : found + room] = h[take]
        found += len(chosen)
    return found


def sort_uint64(x) -> None:
    """Sorts x, a contiguous writable uint64 array, in place (the C kernel's
    radix sort gives the same array: a sort has one result)."""
    if (not isinstance(x, np.ndarray) or x.dtype != np.uint64 or not x.flags.c_contiguous
            or not x.flags.writeable):
        raise TypeError("sort_uint64: x must be a contiguous writable uint64 array")
    x.sort()
