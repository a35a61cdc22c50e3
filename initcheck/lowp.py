"""Low precision (float16, bfloat16): exact counts per bit pattern.

A 16-bit draw has at most 65536 distinct values, so instead of a histogram the
reducer counts every bit pattern.  Moments, extremes, support and KS are then
exact, and the reference law is the continuous law *rounded to the nearest
representable value* (:class:`RoundedLaw`): a discrete law on the representable
values, each carrying the continuous mass of the interval that rounds to it.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from initcheck.errors import InputError
from initcheck.laws import Law
from initcheck.summary import Summary

DTYPES16 = ("float16", "bfloat16")
PATTERNS = 65536


def numpy_dtype(name: str) -> np.dtype:
    """NumPy dtype of a 16-bit float name (bfloat16 through ml_dtypes)."""
    if name == "float16":
        return np.dtype(np.float16)
    try:
        import ml_dtypes
    except ImportError:
        raise InputError("bfloat16 needs the ml_dtypes package (installed with jax or tensorflow)") from None
    return np.dtype(ml_dtypes.bfloat16)


def sample_dtype(name: str) -> np.dtype:
    """NumPy dtype for any sample dtype name initcheck uses."""
    return numpy_dtype(name) if name in DTYPES16 else np.dtype(name)


@functools.lru_cache(maxsize=None)
def pattern_values(name: str) -> np.ndarray:
    """The float64 value of each of the 65536 bit patterns of a 16-bit dtype."""
    with np.errstate(invalid="ignore"):  # the NaN patterns
        values = np.arange(PATTERNS, dtype=np.uint16).view(numpy_dtype(name)).astype(np.float64)
    values.setflags(write=False)
    return values


@functools.lru_cache(maxsize=None)
def pattern_values32(name: str) -> np.ndarray:
    """:func:`pattern_values` as float32 (every 16-bit value is exact in it):
    a 16-bit draw seen as float32 takes twice its memory, not four times."""
    with np.errstate(invalid="ignore"):  # the NaN patterns
        values = pattern_values(name).astype(np.float32)
    values.setflags(write=False)
    return values


@functools.lru_cache(maxsize=None)
def nonfinite_patterns(name: str) -> np.ndarray:
    """Indices of the bit patterns of a 16-bit dtype that are NaN or Inf."""
    indices = np.flatnonzero(~np.isfinite(pattern_values(name)))
    indices.setflags(write=False)
    return indices


class RoundedLaw(Law):
    """``law`` rounded to the nearest value representable in a 16-bit dtype."""

    family = "rounded"

    def __init__(self, law: Law, dtype: str):
        self.law, self.dtype = law, dtype
        values = pattern_values(dtype)
        self.values = np.unique(values[np.isfinite(values)] + 0.0)  # +0 and -0 are one value, +0
        middles = 0.5 * (self.values[:-1] + self.values[1:])
        cdf = np.concatenate([[0.0], law.cdf(middles), [1.0]])
        self.masses = np.diff(cdf)

    @functools.cached_property
    def mean(self) -> float:
        return float(np.dot(self.masses, self.values))

    @functools.cached_property
    def variance(self) -> float:
        return float(np.dot(self.masses, (self.values - self.mean) ** 2))

    @functools.cached_property
    def fourth_moment(self) -> float:
        return float(np.dot(self.masses, (self.values - self.mean) ** 4))

    @property
    def support(self) -> tuple[float, float]:
        return self.law.support

    def cdf(self, x):
        cumulative = np.cumsum(self.masses)
        index = np.searchsorted(self.values, np.asarray(x, dtype=np.float64), side="right") - 1
        return np.where(index >= 0, cumulative[np.clip(index, 0, None)], 0.0)

    def bound_atoms(self) -> tuple[int, int] | None:
        """Indices (in :attr:`values`) of the atoms at a bounded law's bounds."""
        if not self.law.bounded:
            return None
        low, high = self.law.support
        return int(np.argmin(np.abs(self.values - low))), int(np.argmin(np.abs(self.values - high)))

    def describe(self) -> str:
        return f"{self.law.describe()} rounded to {self.dtype}"


def as_rounded(law: Law, dtype: str) -> RoundedLaw:
    """``law`` rounded to the dtype, unless it already is a rounded (discrete) law."""
    return law if isinstance(law, RoundedLaw) else RoundedLaw(law, dtype)


def round_to(dtype: str, x) -> np.ndarray:
    """``x`` rounded to the nearest value of a 16-bit dtype, as float64."""
    return np.asarray(x, dtype=np.float64).astype(numpy_dtype(dtype)).astype(np.float64)


class ScaledIn16Bits(RoundedLaw):
    """The law of a sampler that computes in the 16-bit dtype: a standard draw
    S (N(0, 1), or the normal truncated at the law's bounds in sigmas) rounded
    to the dtype, then multiplied by sigma rounded to the dtype, and the product
    rounded again:  X = round(round(sigma) * round(S)).

    The product of two 16-bit values is exact in float32, so this is what
    Keras' TensorFlow backend does in bfloat16 (``stateless_truncated_normal``
    then ``* stddev``).  Each value is within one step of the dtype of a
    correctly rounded draw, but the std moves by the rounding of sigma and the
    atoms' masses move by the double rounding.  Only for laws with mean 0."""

    def __init__(self, law: Law, dtype: str):
        from initcheck.laws import Normal, TruncatedNormal

        if isinstance(law, TruncatedNormal):
            standard = TruncatedNormal(0.0, 1.0, law.low / law.sigma, law.high / law.sigma)
        elif isinstance(law, Normal):
            standard = Normal(0.0, 1.0)
        else:
            raise ValueError(f"no 16-bit scaling model for {law.describe()}")
        self.law, self.dtype = law, dtype
        self.sigma = float(round_to(dtype, law.sigma))
        unit = RoundedLaw(standard, dtype)
        self.values = unit.values
        scaled = round_to(dtype, self.sigma * unit.values)
        self.masses = np.zeros(len(self.values))
        np.add.at(self.masses, np.searchsorted(self.values, scaled + 0.0), unit.masses)

    @property
    def support(self) -> tuple[float, float]:
        if not self.law.bounded:
            return self.law.support
        held = self.values[self.masses > 0]
        return float(held.min()), float(held.max())

    def describe(self) -> str:
        return f"{self.law.describe()} computed in {self.dtype} (sigma {self.sigma:.6g})"


def as_patterns(x) -> np.ndarray:
    """A flat uint16 view of a 16-bit host array (NumPy, PyTorch, JAX, TensorFlow)."""
    if type(x).__module__.startswith("torch"):
        import torch

        return x.detach().cpu().contiguous().view(torch.int16).numpy().view(np.uint16).ravel()
    array = np.asarray(x)
    return np.ascontiguousarray(array).view(np.uint16).ravel()


def sixteen_bit_name(x) -> str | None:
    """"float16" or "bfloat16" when the array holds 16-bit floats, else None."""
    name = str(getattr(x.dtype, "name", x.dtype)).removeprefix("torch.")
    return name if name in DTYPES16 else None


def counts_by_value(patterns: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, counts) of the finite values seen, +0 and -0 merged, ascending."""
    values = pattern_values(dtype)
    finite = np.isfinite(values) & (patterns > 0)
    unique, inverse = np.unique(values[finite] + 0.0, return_inverse=True)
    return unique, np.bincount(inverse, weights=patterns[finite]).astype(np.int64)


def pattern_summary(ref: float, dtype: str, patterns: np.ndarray, pairs: np.ndarray) -> Summary:
    """The exact :class:`Summary` of a draw stream known by its bit-pattern counts."""
    values = pattern_values(dtype)
    finite = np.isfinite(values) & (patterns > 0)
    weights = patterns[finite].astype(np.float64)
    d = values[finite] - ref
    return Summary(
        ref=ref,
        grid=None,
        count=int(patterns[finite].sum()),
        nan=int(patterns[np.isnan(values)].sum()),
        posinf=int(patterns[values == math.inf].sum()),
        neginf=int(patterns[values == -math.inf].sum()),
        minimum=float(values[finite].min()) if finite.any() else math.inf,
        maximum=float(values[finite].max()) if finite.any() else -math.inf,
        sums=np.array([np.dot(weights, d**k) for k in range(1, 5)]),
        pairs=pairs.copy(),
        patterns=patterns.copy(),
        dtype16=dtype,
    )


def rebalanced(summary: Summary, law: RoundedLaw) -> tuple[Summary, dict] | None:
    """The summary with the two bound atoms' pooled count split in the law's
    proportions (the WARN rule, docs/design.md section 4), and what was moved; None
    when the law has no bound atoms."""
    atoms = law.bound_atoms()
    if atoms is None or summary.patterns is None:
        return None
    values = pattern_values(summary.dtype16)
    (low_index, high_index) = atoms
    low_value, high_value = law.values[low_index], law.values[high_index]
    low_patterns, high_patterns = np.flatnonzero(values == low_value), np.flatnonzero(values == high_value)
    low_count, high_count = int(summary.patterns[low_patterns].sum()), int(summary.patterns[high_patterns].sum())
    low_mass, high_mass = float(law.masses[low_index]), float(law.masses[high_index])
    if low_mass + high_mass <= 0:
        return None
    pooled = low_count + high_count
    new_low = int(round(pooled * low_mass / (low_mass + high_mass)))
    patterns = summary.patterns.copy()
    patterns[low_patterns], patterns[high_patterns] = 0, 0
    patterns[low_patterns[0]], patterns[high_patterns[0]] = new_low, pooled - new_low
    moved = {
        "low": (low_value, low_count, low_mass),
        "high": (high_value, high_count, high_mass),
        "pooled": pooled,
    }
    return pattern_summary(summary.ref, summary.dtype16, patterns, summary.pairs), moved
