"""Sufficient statistics of a stream of sampled values.

A :class:`Summary` is what is left of the samples once every draw has been folded
in and dropped: counts, extremes, power sums and a histogram.  Its size does not
depend on N, and two summaries over the same law merge by addition, so a check
can be split over draws, devices or machines and put back together.

Power sums are taken about a fixed reference point ``ref`` (the law's mean), so
the central moments follow without catastrophic cancellation:

    S_k = sum (x - ref)^k,  k = 1..4,  over the finite values only.

The histogram counts values in the cells of a :class:`~initcheck.grid.Grid`
(cells of nearly equal mass under the law, plus an open cell on each side), so
``cumsum(hist)[k]`` counts the values below the k-th cell edge, which is all
the Kolmogorov-Smirnov check needs.
"""

from __future__ import annotations

import base64
import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from initcheck.grid import Grid
from initcheck.structure import Structure


@dataclass
class Summary:
    ref: float
    grid: Grid | None
    count: int = 0
    nan: int = 0
    posinf: int = 0
    neginf: int = 0
    minimum: float = math.inf
    maximum: float = -math.inf
    sums: np.ndarray = field(default_factory=lambda: np.zeros(4))
    hist: np.ndarray | None = None
    #: Lag-1 pairs, one row each for neighbouring values, neighbouring rows
    #: (slices along the first axis) and consecutive draws (same position):
    #: {sum (a - ref)(b - ref), sum (a - ref), sum (b - ref), number of pairs}.
    pairs: np.ndarray = field(default_factory=lambda: np.zeros((3, 4)))
    #: For 16-bit dtypes: the count of every bit pattern (then grid and hist are None).
    patterns: np.ndarray | None = None
    dtype16: str | None = None
    #: Where values sit and which repeat (:mod:`initcheck.structure`), when the reducer keeps it.
    structure: Structure | None = None

    def __post_init__(self):
        if self.hist is None and self.grid is not None:
            self.hist = np.zeros(self.grid.cells + 2, dtype=np.int64)

    @property
    def nonfinite(self) -> int:
        return self.nan + self.posinf + self.neginf

    @property
    def total(self) -> int:
        """Every value drawn, finite or not."""
        return self.count + self.nonfinite

    @property
    def mean(self) -> float:
        return self.ref + self.sums[0] / self.count

    def central_moment(self, k: int) -> float:
        """Biased k-th central moment (k = 2, 3, 4) of the finite values."""
        n = self.count
        m1, m2, m3, m4 = (self.sums[i] / n for i in range(4))
        if k == 2:
            return m2 - m1 * m1
        if k == 3:
            return m3 - 3 * m1 * m2 + 2 * m1**3
        if k == 4:
            return m4 - 4 * m1 * m3 + 6 * m1 * m1 * m2 - 3 * m1**4
        raise ValueError(k)

    @property
    def variance(self) -> float:
        """Unbiased sample variance s^2."""
        n = self.count
        return self.central_moment(2) * n / (n - 1)

    def lag_correlation(self, kind: int) -> tuple[float, int]:
        """(r, pairs): correlation of the pairs of row ``kind`` of :attr:`pairs`
        about the sample mean, scaled by the sample variance."""
        products, sum_a, sum_b, count = self.pairs[kind]
        if count == 0:
            return 0.0, 0
        delta = self.mean - self.ref
        covariance = (products - delta * (sum_a + sum_b) + count * delta * delta) / count
        variance = self.central_moment(2)
        return (covariance / variance if variance > 0 else 0.0), int(count)

    @property
    def std(self) -> float:
        return math.sqrt(max(self.variance, 0.0))

    def counts_below_edges(self) -> np.ndarray:
        """Number of finite values below each of the ``cells + 1`` grid edges."""
        return np.cumsum(self.hist)[: self.grid.cells + 1]

    def merge(self, other: Summary) -> Summary:
        """The summary of both streams together (same law, same grid)."""
        same_grid = (self.grid is None and other.grid is None) or (
            self.grid is not None and other.grid is not None and self.grid.same(other.grid)
        )
        if self.ref != other.ref or not same_grid or self.dtype16 != other.dtype16:
            raise ValueError("summaries over different grids cannot be merged")
        return Summary(
            ref=self.ref,
            grid=self.grid,
            count=self.count + other.count,
            nan=self.nan + other.nan,
            posinf=self.posinf + other.posinf,
            neginf=self.neginf + other.neginf,
            minimum=min(self.minimum, other.minimum),
            maximum=max(self.maximum, other.maximum),
            sums=self.sums + other.sums,
            hist=None if self.hist is None else self.hist + other.hist,
            pairs=self.pairs + other.pairs,
            patterns=None if self.patterns is None else self.patterns + other.patterns,
            dtype16=self.dtype16,
            structure=(self.structure.merge(other.structure)
                       if self.structure is not None and other.structure is not None else None),
        )

    def to_dict(self) -> dict:
        """Plain numbers for reports, the histogram (or the bit-pattern counts)
        included, encoded by :func:`encode_counts`; :meth:`from_dict` reverses it."""
        out = {
            "count": self.count,
            "nan": self.nan,
            "posinf": self.posinf,
            "neginf": self.neginf,
            "min": self.minimum if self.count else None,
            "max": self.maximum if self.count else None,
            "ref": self.ref,
            "power_sums": [float(s) for s in self.sums],
            "lag_pairs": self.pairs.tolist(),
            "grid": self.grid.to_dict() if self.grid is not None else None,
            "hist": encode_counts(self.hist) if self.hist is not None else None,
            "exact_bit_patterns": self.dtype16,
            "patterns": encode_counts(self.patterns) if self.patterns is not None else None,
            "structure": self.structure.to_dict() if self.structure is not None else None,
        }
        if self.count > 1:
            out.update(
                mean=self.mean,
                std=self.std,
                m3=self.central_moment(3),
                m4=self.central_moment(4),
            )
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Summary:
        """The summary a report row stored (see :meth:`to_dict`)."""
        grid = Grid.from_dict(data["grid"]) if data.get("grid") else None
        return cls(
            ref=float(data["ref"]),
            grid=grid,
            count=int(data["count"]),
            nan=int(data["nan"]),
            posinf=int(data["posinf"]),
            neginf=int(data["neginf"]),
            minimum=float(data["min"]) if data.get("min") is not None else math.inf,
            maximum=float(data["max"]) if data.get("max") is not None else -math.inf,
            sums=np.asarray(data["power_sums"], dtype=np.float64),
            hist=decode_counts(data["hist"]) if data.get("hist") else None,
            pairs=np.asarray(data["lag_pairs"], dtype=np.float64),
            patterns=decode_counts(data["patterns"]) if data.get("patterns") else None,
            dtype16=data.get("exact_bit_patterns"),
            structure=Structure.from_dict(data["structure"]) if data.get("structure") else None,
        )


#: How :func:`encode_counts` writes an integer array into a JSON string.
COUNTS_ENCODING = "zlib+base64, int64 little-endian"


def encode_counts(counts: np.ndarray) -> dict:
    """A count array as ``{"encoding", "length", "data"}``: 65538 histogram cells
    take a few tens of kB instead of half a MB of JSON digits."""
    raw = np.ascontiguousarray(counts, dtype="<i8").tobytes()
    return {"encoding": COUNTS_ENCODING, "length": int(len(counts)),
            "data": base64.b64encode(zlib.compress(raw, 6)).decode("ascii")}


def encode_array(values: np.ndarray, dtype: str = "<f8") -> dict:
    """A numeric array as ``{"encoding", "dtype", "length", "data"}`` (zlib +
    base64 of its little-endian bytes), exact and compact."""
    raw = np.ascontiguousarray(values, dtype=dtype).tobytes()
    return {"encoding": "zlib+base64", "dtype": dtype, "length": int(len(values)),
            "data": base64.b64encode(zlib.compress(raw, 6)).decode("ascii")}


def decode_array(encoded: dict) -> np.ndarray:
    """The array :func:`encode_array` wrote (as float64, or int64 for "<i8")."""
    if encoded.get("encoding") != "zlib+base64" or encoded.get("dtype") not in ("<f8", "<i8"):
        raise ValueError(f"unknown array encoding {encoded.get('encoding')!r} / {encoded.get('dtype')!r}")
    values = np.frombuffer(zlib.decompress(base64.b64decode(encoded["data"])), dtype=encoded["dtype"])
    if len(values) != encoded["length"]:
        raise ValueError(f"array of length {len(values)}, expected {encoded['length']}")
    return values.astype(np.int64 if encoded["dtype"] == "<i8" else np.float64)


def decode_counts(encoded: dict) -> np.ndarray:
    if encoded.get("encoding") != COUNTS_ENCODING:
        raise ValueError(f"unknown counts encoding {encoded.get('encoding')!r}")
    counts = np.frombuffer(zlib.decompress(base64.b64decode(encoded["data"])), dtype="<i8").astype(np.int64)
    if len(counts) != encoded["length"]:
        raise ValueError(f"counts of length {len(counts)}, expected {encoded['length']}")
    return counts
