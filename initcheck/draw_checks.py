"""Checks made on each whole draw of a structured initializer.

The pooled law of a row's values (:mod:`initcheck.checks`) cannot see that a
matrix is orthogonal, that every column of a sparse matrix has its zeros, or
that an identity is exact: those are facts about one draw as a whole.  A
:class:`DrawCheck` sees every draw as it is folded and gives one
:class:`~initcheck.check_result.CheckResult` at the end:

* ``observe(x, draws)``: ``x`` is a host NumPy array of shape ``(draws,
  *shape)``, one or more consecutive draws of the row (any float dtype; the
  sampler converts framework arrays with :func:`host_batch`);
* ``result()``: the check, deterministic (``pvalue`` None, ``passed`` set)
  or statistical (a ``pvalue``, decided with every other check of the command
  under Holm by :func:`initcheck.policy.decide`).

A row gets fresh checks from its plan's factory (``Plan.draw_checks``).

The checks (docs/design.md section 10), each on a matrix view of the draw:
the draw as 2-d, ``(shape[0], prod(shape[1:]))`` in PyTorch's layout (what
``orthogonal_`` flattens to) and ``(prod(shape[:-1]), shape[-1])`` in Keras'
(``Orthogonal``, JAX's ``orthogonal`` with ``column_axis=-1``), or a slice of
it (``delta_orthogonal``'s kernel centre):

``orthogonal`` (deterministic)
    For the short side s of the r x c view, G = W W^T (r <= c) or W^T W,
    in float64; every draw must have max |G / gain^2 - I| <= tol with
    tol = 2 eps (16 + sqrt(max(r, c))), eps the machine epsilon of the
    narrowest float type that holds every value of the draw exactly
    (:func:`value_dtype`: the draw's own dtype, also when it reaches the
    check as float64).  Householder QR leaves errors of about 0.6 eps
    sqrt(n) on large matrices and at most 9 eps on small ones (measured in
    float32 and float64: 10^5 draws each of 2 x 2 to 4 x 4 from torch and
    JAX, 1,500 from Keras, and draws up to 1024 x 1024; Keras' float16 QR
    0.64 eps sqrt(n)), so the tolerance is 3 x or more above what a correct
    initializer shows, and far below the 4.5 / sqrt(m) a Gaussian
    (non-orthogonal) matrix shows in float32 and float64.  In float16 above m = 1000 or so the two meet: the
    check cannot tell them apart there.
``diagonal signs`` (statistical)
    Over all draws, the signs of W[i, i], i < min(r, c).  Left-multiplying
    a Haar matrix by diag(+-1) keeps its law and flips one diagonal sign
    each, so for a correct initializer the signs are independent fair
    coins: k positive of n is Binomial(n, 1/2).  Two exact two-sided
    binomial tests, all n diagonal entries and the D entries W[0, 0]
    alone, Bonferroni over the two.  A QR without the sign correction
    (q *= sign(diag(r))) gives LAPACK's Householder signs: W[0, 0] < 0 in
    every draw, and about 12% of the other diagonal entries positive.
``zeros per column`` (statistical, with a certain failure)
    ``sparse_``: every column of every draw has at least z = ceil(sparsity
    rows) zeros; a column with fewer is a failure (p-value 0).  Zeros beyond
    z come from the normal itself: torch's float32 ``normal_`` returns an
    exact 0 for about 7e-8 of its values (a 24-bit uniform of 0 into the
    Box-Muller radius), a 16-bit dtype rounds the smallest values to 0.  The
    extra zeros E among the M non-zero places are tested against
    Poisson(M r0), r0 = 2^-22 (4 x the float32 sampler's rate) plus the
    dtype's rounding mass P(|N(0, std)| < its smallest subnormal / 2).
``exact`` (deterministic)
    ``eye_``, ``dirac_``, ``Identity``, ``delta_orthogonal``'s zeros: every
    draw equals the expected tensor, value for value (the expected values
    rounded to the draw's :func:`value_dtype`); the detail says how many
    values differ in how many draws, and the first one.
"""

from __future__ import annotations

import math
import sys
from typing import Callable, Protocol

import numpy as np

from initcheck.check_result import POWER, CheckResult

#: Names of the per-draw checks, for the reports' lists of other checks.
NAMES = ("orthogonal", "diagonal signs", "zeros per column", "exact")


class DrawCheck(Protocol):
    """A check of each whole draw (module docstring)."""

    name: str

    def observe(self, x: np.ndarray, draws: int) -> None:
        """Take ``draws`` consecutive draws, ``x`` of shape ``(draws, *shape)``."""

    def result(self) -> CheckResult:
        """The check over every draw observed."""


def host_batch(x, draws: int, shape: tuple[int, ...]) -> np.ndarray:
    """``x`` (a NumPy, PyTorch, TensorFlow or JAX array, on any device) as a
    host NumPy array of shape ``(draws, *shape)``; 16-bit floats come as
    float32 (exactly), others in their own dtype (no copy where possible)."""
    module = type(x).__module__
    if module.startswith("torch"):
        import torch

        x = x.detach()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()
        x = x.cpu().numpy()
    else:
        x = np.asarray(x)
        if x.dtype.itemsize == 2 and x.dtype.kind in "fV":  # float16, ml_dtypes' bfloat16
            x = x.astype(np.float32)
    return x.reshape((draws, *shape))


#: (name, machine epsilon, smallest positive subnormal), narrowest first.
_FLOATS = (
    ("bfloat16", 2.0**-7, 2.0**-133),
    ("float16", 2.0**-10, 2.0**-24),
    ("float32", 2.0**-23, 2.0**-149),
    ("float64", 2.0**-52, 2.0**-1074),
)


def _exactly_in(values: np.ndarray, name: str) -> bool:
    """Whether every value is exactly representable in the float type ``name``."""
    v = np.asarray(values, dtype=np.float64)
    if name == "float64":
        return True
    if name == "float32":
        return bool(np.array_equal(v.astype(np.float32).astype(np.float64), v, equal_nan=True))
    if name == "float16":
        with np.errstate(over="ignore"):
            return bool(np.array_equal(v.astype(np.float16).astype(np.float64), v, equal_nan=True))
    # bfloat16: float32 with its low 16 bits zero
    f = v.astype(np.float32)
    if not np.array_equal(f.astype(np.float64), v, equal_nan=True):
        return False
    return not np.any(f.view(np.uint32) & np.uint32(0xFFFF))


def value_dtype(values: np.ndarray) -> tuple[str, float, float]:
    """(name, eps, smallest subnormal) of the narrowest float type holding
    every value exactly: a draw's own dtype, also when it was converted to
    float64 on the way (a float64 QR output is, but for a chance of about
    2^-29 a value, not all in float32)."""
    for name, eps, tiny in _FLOATS:
        if _exactly_in(values, name):
            return name, eps, tiny
    return _FLOATS[-1]


def matrix_view(shape: tuple[int, ...], layout: str) -> Callable[[np.ndarray], np.ndarray]:
    """The 2-d view of draws (``(draws, *shape)`` -> ``(draws, r, c)``) an
    orthogonal initializer makes orthonormal: ``(shape[0], prod(shape[1:]))``
    in PyTorch's layout, ``(prod(shape[:-1]), shape[-1])`` in Keras'."""
    if layout == "torch":
        rows, cols = shape[0], math.prod(shape[1:])
    else:
        rows, cols = math.prod(shape[:-1]), shape[-1]
    return lambda x: x.reshape((x.shape[0], rows, cols))


def centre_view(shape: tuple[int, ...]) -> Callable[[np.ndarray], np.ndarray]:
    """The (in, out) matrix at the centre of a Keras-layout kernel ``(*k, in,
    out)``: index (k - 1) // 2 on each spatial axis (JAX's ``delta_orthogonal``)."""
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    return lambda x: x[(slice(None), *centre)]


def orthogonality_tolerance(eps: float, long_side: int) -> float:
    """tol = 2 eps (16 + sqrt(long side)) (module docstring)."""
    return 2.0 * eps * (16.0 + math.sqrt(long_side))


def short_side_gram(w: np.ndarray) -> np.ndarray:
    """W Wᵀ (r <= c) or Wᵀ W of each matrix of ``w`` (draws, r, c), float64.

    With torch loaded in the process, by torch's matmul, the thread pool its
    initializers use: NumPy's BLAS pool beside torch's on a 2-core machine
    made torch's orthogonal_ rows 3 to 5 times slower (both pools spin
    between calls).  Otherwise by NumPy's."""
    torch = sys.modules.get("torch")
    if torch is not None and w.flags.writeable:
        t = torch.from_numpy(w)
        return (t @ t.transpose(1, 2) if w.shape[1] <= w.shape[2] else t.transpose(1, 2) @ t).numpy()
    return w @ np.swapaxes(w, 1, 2) if w.shape[1] <= w.shape[2] else np.swapaxes(w, 1, 2) @ w


class Orthogonal:
    """Every draw's view is gain times a matrix with orthonormal rows (r <= c) or columns."""

    name = "orthogonal"

    def __init__(self, gain: float, view: Callable[[np.ndarray], np.ndarray]):
        self.gain, self.view = float(gain), view
        self.draws = 0
        self.worst = 0.0
        self.worst_at: tuple[int, int, int] | None = None
        self.bad = 0
        self.first_bad: tuple[int, float] | None = None
        self.tolerance: float | None = None
        self.dtype = ""
        self.side = (0, 0)

    def observe(self, x: np.ndarray, draws: int) -> None:
        w = self.view(np.asarray(x))
        if self.tolerance is None:
            self.dtype, eps, _ = value_dtype(w[0])
            self.side = w.shape[1:]
            self.tolerance = orthogonality_tolerance(eps, max(self.side))
        gram = short_side_gram(w.astype(np.float64))
        gram /= self.gain**2
        index = np.arange(gram.shape[1])
        gram[:, index, index] -= 1.0
        deviation = np.abs(gram).reshape(len(w), -1)
        per_draw = deviation.max(axis=1) if deviation.shape[1] else np.zeros(len(w))
        per_draw = np.where(np.isfinite(per_draw), per_draw, np.inf)  # a NaN or Inf: as far off as can be
        k = int(np.argmax(per_draw))
        if self.worst_at is None or per_draw[k] > self.worst:
            entry = np.nan_to_num(deviation[k], nan=np.inf)
            i, j = np.unravel_index(int(np.argmax(entry)), gram.shape[1:])
            self.worst, self.worst_at = float(per_draw[k]), (self.draws + k, int(i), int(j))
        beyond = np.flatnonzero(~(per_draw <= self.tolerance))
        if len(beyond) and self.first_bad is None:
            self.first_bad = (self.draws + int(beyond[0]), float(per_draw[beyond[0]]))
        self.bad += len(beyond)
        self.draws += len(w)

    def result(self) -> CheckResult:
        r, c = self.side
        short = "W Wᵀ" if r <= c else "Wᵀ W"
        gram = f"{short}/gain²" if self.gain != 1.0 else short
        tolerance = self.tolerance if self.tolerance is not None else math.nan
        where = f"tolerance {tolerance:.2g} = 2 eps (16 + √{max(r, c)}) of {self.dtype}"
        if not self.bad:
            detail = f"max |{gram} − I| = {self.worst:.2g} over {self.draws:,} draws ({where})"
            return CheckResult(self.name, self.worst, detail, passed=self.draws > 0)
        draw, value = self.first_bad
        _, i, j = self.worst_at
        detail = (f"not orthogonal: max |{gram} − I| beyond the {where} in {self.bad:,} of {self.draws:,} draws "
                  f"(first: draw {draw}, {value:.3g}; worst {self.worst:.3g} at [{i}, {j}])")
        return CheckResult(self.name, self.worst, detail, passed=False)


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of k successes in n fair coin flips."""
    from scipy import special

    if n == 0:
        return 1.0
    low = min(k, n - k)
    return float(min(1.0, 2.0 * special.bdtr(low, n, 0.5)))


class DiagonalSigns:
    """The signs of W[i, i] over all draws: fair and independent for a Haar matrix."""

    name = "diagonal signs"

    def __init__(self, view: Callable[[np.ndarray], np.ndarray]):
        self.view = view
        self.positive = self.negative = 0
        self.first_positive = self.first_negative = 0

    def observe(self, x: np.ndarray, draws: int) -> None:
        w = self.view(np.asarray(x))
        diagonal = np.diagonal(w, axis1=1, axis2=2)
        self.positive += int(np.count_nonzero(diagonal > 0))
        self.negative += int(np.count_nonzero(diagonal < 0))
        self.first_positive += int(np.count_nonzero(diagonal[:, 0] > 0))
        self.first_negative += int(np.count_nonzero(diagonal[:, 0] < 0))

    def result(self) -> CheckResult:
        n, k = self.positive + self.negative, self.positive
        d, k0 = self.first_positive + self.first_negative, self.first_positive
        p_all, p_first = binomial_two_sided(k, n), binomial_two_sided(k0, d)
        pvalue = min(1.0, 2.0 * min(p_all, p_first))
        z = (k - n / 2) / math.sqrt(n / 4) if n else 0.0
        z0 = (k0 - d / 2) / math.sqrt(d / 4) if d else 0.0
        detail = (f"W[i,i] > 0 in {k / max(n, 1):.1%} of {n:,} diagonal entries (z = {z:+.1f}), "
                  f"W[0,0] > 0 in {k0:,} of {d:,} draws (z = {z0:+.1f})")
        if pvalue < 1e-3:  # what it means, only where chance does not explain it
            detail = f"diagonal signs biased (a QR without its sign correction?): {detail}"
        statistic = z if p_all <= p_first else z0
        return CheckResult(self.name, statistic, detail, pvalue=pvalue, sample_size=n)


def signs_power(check: CheckResult, level: float) -> tuple[float, str, float] | None:
    """The bias |P(W[i,i] > 0) - 1/2| over all diagonal entries detected with
    probability POWER at ``level`` (normal approximation), and the critical |z|
    at the check's own level."""
    from initcheck.laws import standard_normal_quantile

    n = check.sample_size or 0
    if n < 1:
        return None
    z_level = -standard_normal_quantile(level / 4.0)  # two-sided, Bonferroni over the two tests
    bias = (z_level + standard_normal_quantile(POWER)) / (2.0 * math.sqrt(n))
    threshold = -standard_normal_quantile((check.level or level) / 4.0)
    return bias, f"a diagonal sign bias ≥ {bias:.2g}", threshold


#: A float32 normal sampler's exact zeros, bounded: torch's ``normal_`` (a
#: 24-bit uniform of exactly 0 into the Box-Muller radius) returns about 2^-24
#: of its values as 0 (measured 7e-8); 2^-22 leaves a factor 4.
SAMPLER_ZERO_RATE = 2.0**-22


class ZerosPerColumn:
    """``sparse_``: at least ``zeros`` zeros in every column of every draw, and
    no more beyond the normal's own exact zeros (module docstring)."""

    name = "zeros per column"

    def __init__(self, zeros: int, std: float, axis: int):
        """``axis``: the axis of a 2-d draw along which a column's values lie
        (0 in PyTorch's layout (out, in), 1 in Keras' (in, out))."""
        self.zeros, self.std, self.axis = int(zeros), float(std), axis
        self.columns = 0
        self.short = 0
        self.first_short: tuple[int, int, int] | None = None
        self.extra = 0
        self.extra_columns = 0
        self.slots = 0
        self.draws = 0
        self.rate: float | None = None
        self.dtype = ""

    def observe(self, x: np.ndarray, draws: int) -> None:
        x = np.asarray(x)
        if self.rate is None:
            self.dtype, _, tiny = value_dtype(x[0])
            rounding = math.erf(tiny / 2.0 / (self.std * math.sqrt(2.0))) if tiny < self.std else 1.0
            self.rate = SAMPLER_ZERO_RATE + rounding
        counts = np.count_nonzero(x == 0, axis=1 + self.axis)  # (draws, columns)
        length = x.shape[1 + self.axis]
        short = counts < self.zeros
        if short.any() and self.first_short is None:
            d, c = (int(i) for i in np.argwhere(short)[0])
            self.first_short = (self.draws + d, c, int(counts[d, c]))
        self.short += int(np.count_nonzero(short))
        beyond = np.maximum(counts - self.zeros, 0)
        self.extra += int(beyond.sum())
        self.extra_columns += int(np.count_nonzero(beyond))
        self.columns += counts.size
        self.slots += counts.size * (length - self.zeros)
        self.draws += len(x)

    def result(self) -> CheckResult:
        from scipy import special

        expected = self.slots * (self.rate or 0.0)
        if self.short:
            draw, column, count = self.first_short
            detail = (f"{self.short:,} of {self.columns:,} columns have fewer than {self.zeros} zeros "
                      f"(first: draw {draw}, column {column}: {count})")
            return CheckResult(self.name, float(self.short), detail, pvalue=0.0)
        pvalue = 1.0 if self.extra == 0 else float(special.gammainc(self.extra, expected))
        detail = f"every one of {self.columns:,} columns has its {self.zeros} zeros"
        if self.extra:
            detail += (f"; {self.extra:,} more in {self.extra_columns:,} columns (the normal's own exact "
                       f"zeros explain {expected:.2g})")
            if pvalue < 1e-3:
                detail = f"too many zeros: {detail}"
        return CheckResult(self.name, float(self.extra), detail, pvalue=pvalue)


class Exact:
    """Every draw equals ``expected`` (a tensor of the draw's shape), value for
    value, where ``mask`` (same shape, or None: everywhere) is True."""

    name = "exact"

    def __init__(self, expected: np.ndarray, what: str, mask: np.ndarray | None = None):
        self.expected, self.what = np.asarray(expected, dtype=np.float64), what
        self.mask = None if mask is None else np.asarray(mask, dtype=bool)
        self.rounded: np.ndarray | None = None
        self.draws = 0
        self.bad_draws = 0
        self.bad_values = 0
        self.first: tuple[int, tuple[int, ...], float, float] | None = None

    def observe(self, x: np.ndarray, draws: int) -> None:
        x = np.asarray(x)
        if self.rounded is None:
            name, _, _ = value_dtype(x[0])
            dtype = np.float32 if name == "bfloat16" else np.dtype(name)
            self.rounded = self.expected.astype(dtype).astype(np.float64)
            if name == "bfloat16":  # round to nearest even in the upper 16 bits of float32
                bits = self.expected.astype(np.float32).view(np.uint32).astype(np.uint64)
                bits = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
                self.rounded = bits.astype(np.uint32).view(np.float32).astype(np.float64)
        differ = x != self.rounded
        if self.mask is not None:
            differ &= self.mask
        per_draw = np.count_nonzero(differ.reshape(len(x), -1), axis=1)
        bad = np.flatnonzero(per_draw)
        if len(bad) and self.first is None:
            d = int(bad[0])
            position = tuple(int(i) for i in np.argwhere(differ[d])[0])
            self.first = (self.draws + d, position, float(x[(d, *position)]), float(self.rounded[position]))
        self.bad_draws += len(bad)
        self.bad_values += int(per_draw.sum())
        self.draws += len(x)

    def result(self) -> CheckResult:
        if not self.bad_draws:
            detail = f"all {self.draws:,} draws equal {self.what}"
            return CheckResult(self.name, 0.0, detail, passed=self.draws > 0)
        draw, position, got, want = self.first
        index = ", ".join(map(str, position))
        detail = (f"{self.bad_values:,} values differ from {self.what} in {self.bad_draws:,} of {self.draws:,} "
                  f"draws (first: draw {draw} [{index}] = {got:.6g}, expected {want:g})")
        return CheckResult(self.name, float(self.bad_values), detail, passed=False)
