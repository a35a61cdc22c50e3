"""Closed-form laws an initializer may claim to draw from.

A law knows everything the checks need: its CDF, mean, variance, fourth central
moment, support, a finite interval holding all but a negligible part of its mass
(the histogram grid), and how to print itself.  The three families:

* ``Normal(mu, sigma)``
* ``Uniform(low, high)``
* ``TruncatedNormal(mu, sigma, low, high)``: a normal of scale ``sigma`` (the
  underlying normal's, not the truncated one's) conditioned on ``low < x < high``
  (absolute bounds).

``Constant(value)``, and the laws of structured initializers (one value of the
tensor, pooled over its positions; :mod:`initcheck.structured`):
``OrthogonalEntry(gain, m)`` (an entry of a Haar matrix), ``ZeroInflated(p0,
base)`` (an atom at 0, else ``base``: ``sparse_``) and ``Exact(what, value,
ones, size)`` (a tensor fixed by its shape: ``eye_``, ``dirac_``).

The laws are frozen dataclasses: equal parameters, equal laws.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

import numpy as np

#: Standard deviation of a standard normal truncated to [-2, 2]:
#: sqrt(1 - 4 phi(2) / (Phi(2) - Phi(-2))).  Keras and JAX divide the scale of
#: their truncated "normal" initializers by it so that the truncated law keeps the
#: variance the scheme asks for.
TRUNCATION_CORRECTION = 0.87962566103423978

#: Half-width, in standard deviations, of the histogram grid of an unbounded law.
#: The normal puts 1.2e-15 of its mass beyond 8 sigma; those values land in the
#: grid's two open end bins and are still counted exactly.
GRID_HALF_WIDTH = 8.0


_erfc = np.frompyfunc(math.erfc, 1, 1)


def standard_normal_cdf(z):
    """Phi(z), vectorized, accurate in both tails (math.erfc; SciPy's import
    alone would cost a command a quarter of a second)."""
    z = np.asarray(z, dtype=np.float64)
    return 0.5 * np.asarray(_erfc(-z / math.sqrt(2.0)), dtype=np.float64)


def standard_normal_quantile(p: float) -> float:
    """Phi^-1(p) for 0 < p < 1."""
    return statistics.NormalDist().inv_cdf(p)


def _fmt(value: float) -> str:
    """A number as a person would write it: 4 significant digits, no noise."""
    if value == 0:
        return "0"
    return f"{value:.4g}"


class Law:
    """Interface shared by the three families (see the module docstring)."""

    family: str
    #: True for a tensor fixed by its shape (:class:`Exact`): no statistics,
    #: only finiteness and the per-draw comparison with the expected tensor.
    deterministic: bool = False

    @property
    def atoms(self) -> tuple[float, ...]:
        """Points of positive mass inside the grid; the histogram grid keeps its
        cell edges off the first of them (:meth:`initcheck.grid.Grid.for_law`)."""
        return ()

    @property
    def untested(self) -> dict[str, str]:
        """Checks that do not apply to this law, each with the reason
        (:func:`initcheck.checks.evaluate` leaves them out of the row)."""
        return {}

    @property
    def mean(self) -> float:
        raise NotImplementedError

    @property
    def variance(self) -> float:
        raise NotImplementedError

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    @property
    def fourth_moment(self) -> float:
        """Fourth central moment E[(X - mean)^4]."""
        raise NotImplementedError

    @property
    def support(self) -> tuple[float, float]:
        """Closed interval outside which the law puts no mass (may be infinite)."""
        raise NotImplementedError

    @property
    def bounded(self) -> bool:
        low, high = self.support
        return math.isfinite(low) and math.isfinite(high)

    def cdf(self, x):
        """P(X <= x), vectorized over NumPy arrays."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent float64 draws from the law, with NumPy."""
        raise NotImplementedError

    def grid(self) -> tuple[float, float]:
        """Finite interval of the histogram: the support, cut at mean +- 8 std."""
        low, high = self.support
        half = GRID_HALF_WIDTH * self.std
        return max(low, self.mean - half), min(high, self.mean + half)

    def describe(self) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"family": self.family, **asdict(self), "text": self.describe()}


@dataclass(frozen=True)
class Normal(Law):
    mu: float
    sigma: float
    family = "normal"

    @property
    def mean(self) -> float:
        return self.mu

    @property
    def variance(self) -> float:
        return self.sigma**2

    @property
    def fourth_moment(self) -> float:
        return 3.0 * self.sigma**4

    @property
    def support(self) -> tuple[float, float]:
        return -math.inf, math.inf

    def cdf(self, x):
        return standard_normal_cdf((np.asarray(x, dtype=np.float64) - self.mu) / self.sigma)

    def sample(self, rng, size):
        return rng.normal(self.mu, self.sigma, size)

    def describe(self) -> str:
        return f"N({_fmt(self.mu)}, σ={_fmt(self.sigma)})"


@dataclass(frozen=True)
class Uniform(Law):
    low: float
    high: float
    family = "uniform"

    @property
    def mean(self) -> float:
        return 0.5 * (self.low + self.high)

    @property
    def variance(self) -> float:
        return (self.high - self.low) ** 2 / 12.0

    @property
    def fourth_moment(self) -> float:
        return (self.high - self.low) ** 4 / 80.0

    @property
    def support(self) -> tuple[float, float]:
        return self.low, self.high

    def cdf(self, x):
        x = np.asarray(x, dtype=np.float64)
        return np.clip((x - self.low) / (self.high - self.low), 0.0, 1.0)

    def sample(self, rng, size):
        return rng.uniform(self.low, self.high, size)

    def describe(self) -> str:
        if self.low == -self.high:
            return f"U(±{_fmt(self.high)})"
        return f"U({_fmt(self.low)}, {_fmt(self.high)})"


@dataclass(frozen=True)
class Constant(Law):
    """Every value equal to ``value`` (a zero-initialized bias, say)."""

    value: float
    family = "constant"

    @property
    def mean(self) -> float:
        return self.value

    @property
    def variance(self) -> float:
        return 0.0

    @property
    def fourth_moment(self) -> float:
        return 0.0

    @property
    def support(self) -> tuple[float, float]:
        return self.value, self.value

    def cdf(self, x):
        return (np.asarray(x, dtype=np.float64) >= self.value).astype(np.float64)

    def sample(self, rng, size):
        return np.full(size, self.value, dtype=np.float64)

    def grid(self) -> tuple[float, float]:
        return self.value - 1.0, self.value + 1.0

    def describe(self) -> str:
        return f"constant {_fmt(self.value)}"


def _normal_mass(a, b):
    """P(a < Z < b) for a standard normal Z, accurate in either tail."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    right = a > 0
    Phi = standard_normal_cdf
    return np.where(right, Phi(-a) - Phi(-b), Phi(b) - Phi(a))


@dataclass(frozen=True)
class TruncatedNormal(Law):
    """N(mu, sigma) conditioned on low < x < high (bounds absolute, not in sigmas)."""

    mu: float
    sigma: float
    low: float
    high: float
    family = "truncated_normal"

    @property
    def _alpha(self) -> float:
        return (self.low - self.mu) / self.sigma

    @property
    def _beta(self) -> float:
        return (self.high - self.mu) / self.sigma

    def _standard_raw_moments(self) -> list[float]:
        """E[Z^k], k = 0..4, for Z the standard normal truncated to [alpha, beta].

        Integration by parts gives m_k = (k-1) m_{k-2} - [b^{k-1} phi(b) - a^{k-1} phi(a)] / Z.
        """
        a, b = self._alpha, self._beta
        mass = self.mass
        if not mass > 0.0:
            raise ValueError(f"{self.describe()} keeps no mass of its normal")

        def edge(t: float, power: int) -> float:
            if math.isinf(t):
                return 0.0
            return t**power * math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)

        moments = [1.0, -(edge(b, 0) - edge(a, 0)) / mass]
        for k in range(2, 5):
            moments.append((k - 1) * moments[k - 2] - (edge(b, k - 1) - edge(a, k - 1)) / mass)
        return moments

    @property
    def mean(self) -> float:
        return self.mu + self.sigma * self._standard_raw_moments()[1]

    @property
    def variance(self) -> float:
        _, m1, m2, _, _ = self._standard_raw_moments()
        return self.sigma**2 * (m2 - m1 * m1)

    @property
    def fourth_moment(self) -> float:
        _, m1, m2, m3, m4 = self._standard_raw_moments()
        central = m4 - 4 * m1 * m3 + 6 * m1 * m1 * m2 - 3 * m1**4
        return self.sigma**4 * central

    @property
    def support(self) -> tuple[float, float]:
        return self.low, self.high

    def grid(self) -> tuple[float, float]:
        """The bounds, cut 8 underlying sigmas beyond the mass: past mu +- 8 sigma,
        or past the far side of an interval that lies in one tail."""
        a, b, w = self._alpha, self._beta, GRID_HALF_WIDTH
        return (
            max(self.low, self.mu + self.sigma * (min(b, 0.0) - w)),
            min(self.high, self.mu + self.sigma * (max(a, 0.0) + w)),
        )

    @property
    def mass(self) -> float:
        """P(low < Y < high) for Y ~ N(mu, sigma): the mass the truncation keeps."""
        return float(_normal_mass(self._alpha, self._beta))

    def cdf(self, x):
        z = (np.asarray(x, dtype=np.float64) - self.mu) / self.sigma
        z = np.clip(z, self._alpha, self._beta)
        return np.clip(_normal_mass(self._alpha, z) / _normal_mass(self._alpha, self._beta), 0.0, 1.0)

    def sample(self, rng, size):
        from scipy import stats  # heavy import, only the reference row needs it

        law = stats.truncnorm(self._alpha, self._beta, loc=self.mu, scale=self.sigma)
        return law.rvs(size=size, random_state=rng)

    def describe(self) -> str:
        a, b = self._alpha, self._beta
        if math.isclose(-a, b, rel_tol=1e-9):
            return f"TN({_fmt(self.mu)}, σ={_fmt(self.sigma)}, cut at ±{_fmt(b)}σ)"
        return f"TN({_fmt(self.mu)}, σ={_fmt(self.sigma)}, [{_fmt(self.low)}, {_fmt(self.high)}])"


# Laws of structured initializers (orthogonal, sparse, eye, dirac): the law of
# one value of the tensor, pooled over its positions.  The values of one draw
# are dependent (a row of an orthogonal matrix has norm exactly gain); the
# per-draw facts are checked by :mod:`initcheck.draw_checks`.


@dataclass(frozen=True)
class OrthogonalEntry(Law):
    """One entry of gain x a Haar-random matrix with orthonormal rows or
    columns, of long side ``m`` (docs/design.md section 10).

    A row (or column) of the orthonormal side is a uniform unit vector in R^m,
    and one of its coordinates is 2B - 1 with B ~ Beta((m - 1) / 2, (m - 1) / 2):

        X = gain (2B - 1),   support [-gain, gain],   mean 0,
        E X^2 = gain^2 / m,  E X^4 = 3 gain^4 / (m (m + 2)),
        P(X <= x) = I_{(1 + x / gain) / 2}((m - 1) / 2, (m - 1) / 2)

    (I the regularized incomplete beta function).  For m = 1 the entry is
    +-gain with probability 1/2 each; for m = 2, gain cos(theta) with theta
    uniform (the arcsine law).

    For m = 1 the atoms are the grid's ends, and the histogram puts a value on
    an edge in the cell above it, so :meth:`cdf` is P(X < x) at the atoms.
    """

    gain: float
    m: int
    family = "orthogonal_entry"

    @property
    def mean(self) -> float:
        return 0.0

    @property
    def variance(self) -> float:
        return self.gain**2 / self.m

    @property
    def fourth_moment(self) -> float:
        return 3.0 * self.gain**4 / (self.m * (self.m + 2))

    @property
    def support(self) -> tuple[float, float]:
        return -self.gain, self.gain

    def cdf(self, x):
        x = np.asarray(x, dtype=np.float64)
        u = np.clip((1.0 + x / self.gain) / 2.0, 0.0, 1.0)
        if self.m == 1:  # +-gain, each with probability 1/2
            return np.where(x > self.gain, 1.0, np.where(x > -self.gain, 0.5, 0.0))
        from scipy import special  # the checks import it anyway; laws.py stays light

        a = (self.m - 1) / 2.0
        return special.betainc(a, a, u)

    @property
    def untested(self) -> dict[str, str]:
        if self.m > 1:
            return {}
        reason = "a 1 x 1 orthogonal matrix is +-gain: every square equals gain^2 and runs of equal values are chance"
        return {"variance": reason, "copies": reason}

    def sample(self, rng, size):
        if self.m == 1:
            return self.gain * rng.choice([-1.0, 1.0], size)
        a = (self.m - 1) / 2.0
        return self.gain * (2.0 * rng.beta(a, a, size) - 1.0)

    def describe(self) -> str:
        scale = "" if self.gain == 1.0 else f"{_fmt(self.gain)}·"
        if self.m == 1:
            return f"±{_fmt(self.gain)} (orthogonal, m=1)"
        a = _fmt((self.m - 1) / 2)
        return f"{scale}(2B−1), B~Beta({a}, {a}) (orthogonal, m={self.m})"


@dataclass(frozen=True)
class ZeroInflated(Law):
    """An atom at 0 of mass ``zero_mass``, else ``base`` (a law of mean 0):

        P(X <= x) = p0 [x >= 0] + (1 - p0) F_base(x),
        mean 0,  E X^2 = (1 - p0) E B^2,  E X^4 = (1 - p0) E B^4.

    ``torch.nn.init.sparse_`` (p0 = ceil(sparsity rows) / rows, base the
    normal of std ``std``) and JAX's ``delta_orthogonal`` (every position but
    the kernel's centre is 0; the centre an orthogonal matrix: ``fixed_zeros``).

    Its histogram grid keeps every cell edge off the atom (:attr:`atoms`).  The
    copies check does not apply: its bound on chance repeats assumes that two
    values rarely coincide, and runs of zeros repeat by chance (measured: it
    fails on independent zero-inflated values at p0 = 0.5).  With
    ``fixed_zeros`` the positions, independence and draws checks do not apply
    either: they assume that every position follows the pooled law."""

    zero_mass: float
    base: Law
    #: Whether the zeros sit at positions fixed by the shape (delta_orthogonal)
    #: rather than at random ones (sparse_).
    fixed_zeros: bool = False
    family = "zero_inflated"

    def __post_init__(self):
        if self.base.mean != 0.0:
            raise ValueError("ZeroInflated takes a base law of mean 0")

    @property
    def mean(self) -> float:
        return 0.0

    @property
    def variance(self) -> float:
        return (1.0 - self.zero_mass) * self.base.variance

    @property
    def fourth_moment(self) -> float:
        return (1.0 - self.zero_mass) * self.base.fourth_moment

    @property
    def support(self) -> tuple[float, float]:
        low, high = self.base.support
        return min(low, 0.0), max(high, 0.0)

    def cdf(self, x):
        x = np.asarray(x, dtype=np.float64)
        return self.zero_mass * (x >= 0.0) + (1.0 - self.zero_mass) * self.base.cdf(x)

    @property
    def untested(self) -> dict[str, str]:
        if self.zero_mass == 0.0:
            return {}
        skipped = {"copies": "runs of zeros repeat by chance; the zeros are checked per draw"}
        if self.fixed_zeros:
            reason = ("the zeros sit at fixed positions, so positions differ by design and values at one "
                      "position are not the pooled law's; the zeros are checked exactly per draw")
            skipped.update(positions=reason, independence=reason, draws=reason)
        return skipped

    @property
    def atoms(self) -> tuple[float, ...]:
        return (0.0,) if self.zero_mass > 0.0 else ()

    def grid(self) -> tuple[float, float]:
        return self.base.grid()

    def sample(self, rng, size):
        values = self.base.sample(rng, size)
        values[rng.random(size) < self.zero_mass] = 0.0
        return values

    def describe(self) -> str:
        return f"{self.zero_mass:.4g}·δ0 + {1.0 - self.zero_mass:.4g}·{self.base.describe()}"

    def to_dict(self) -> dict:
        return {"family": self.family, "zero_mass": self.zero_mass, "base": self.base.to_dict(),
                "fixed_zeros": self.fixed_zeros, "text": self.describe()}


@dataclass(frozen=True)
class Exact(Law):
    """A tensor fixed by its shape, not drawn (``eye_``, ``dirac_``,
    ``Identity``): ``ones`` of its ``size`` values equal ``value``, the others 0.

    The pooled law is the two-point law (mass f = ones / size at ``value``),
    with mean f value and variance f (1 - f) value^2, but nothing is random:
    :func:`initcheck.checks.evaluate` checks only that the values are finite,
    and the row's per-draw check (:class:`initcheck.draw_checks.ExactTensor`)
    compares every draw with the expected tensor, value for value."""

    what: str
    value: float
    ones: int
    size: int
    family = "exact"
    deterministic = True

    @property
    def _f(self) -> float:
        return self.ones / self.size

    @property
    def mean(self) -> float:
        return self._f * self.value

    @property
    def variance(self) -> float:
        return self._f * (1.0 - self._f) * self.value**2

    @property
    def fourth_moment(self) -> float:
        f = self._f
        return f * (1.0 - f) * ((1.0 - f) ** 3 + f**3) * self.value**4

    @property
    def support(self) -> tuple[float, float]:
        return min(0.0, self.value), max(0.0, self.value)

    def cdf(self, x):
        x = np.asarray(x, dtype=np.float64)
        low, high = self.support
        at_low = 1.0 - self._f if self.value > 0 else self._f
        return np.where(x >= high, 1.0, np.where(x >= low, at_low, 0.0))

    def sample(self, rng, size):
        values = np.zeros(size)
        values[rng.random(size) < self._f] = self.value
        return values

    def grid(self) -> tuple[float, float]:
        low, high = self.support
        return low - 1.0, high + 1.0

    def describe(self) -> str:
        return f"exact: {self.what}"
