"""Initialization schemes: from a name, fans and options to a closed-form law.

Every named scheme is a specialization of one rule, JAX's ``variance_scaling``:

    variance = scale / n,   n = fan_in | fan_out | (fan_in + fan_out) / 2  (the mode)
    scale    = gain ** 2

and the distribution turns the variance into a law:

* ``normal``            N(0, sqrt(variance))
* ``uniform``           U(+-sqrt(3 variance))
* ``truncated-normal``  N(0, sigma) cut at +-2 sigma, with
                        sigma = sqrt(variance) / 0.87962566103423978, so that the
                        truncated law has exactly ``variance``.

The named schemes fix mode and gain: xavier/glorot (fan_avg, gain 1 or ``gain``),
kaiming/he (fan_in or fan_out, gain of the nonlinearity), lecun (fan_in, gain 1).
Explicit laws (``trunc-normal``, ``normal``, ``uniform``) take their parameters
as given.  Structured schemes (``orthogonal``, ``sparse``, ``eye``, ``dirac``,
``delta-orthogonal``, ``constant`` and its aliases ``zeros``, ``ones``) have a
law that depends on the whole shape, and checks of each whole draw:
:func:`initcheck.structured.expectation` gives both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from initcheck.errors import InputError
from initcheck.laws import TRUNCATION_CORRECTION, Law, Normal, TruncatedNormal, Uniform

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("normal", "uniform", "truncated-normal")
#: Schemes that derive their scale from the fans.
FAN_SCHEMES = ("xavier", "kaiming", "lecun", "variance-scaling")
#: Schemes whose law is given outright.
EXPLICIT_SCHEMES = ("trunc-normal", "normal", "uniform")
#: Schemes whose law depends on the whole shape (initcheck.structured).
STRUCTURED_SCHEMES = ("orthogonal", "sparse", "eye", "dirac", "delta-orthogonal", "constant", "zeros", "ones")
#: The parameters each structured scheme takes (beyond none).
STRUCTURED_PARAMETERS = {
    "orthogonal": ("gain",),
    "sparse": ("sparsity", "std"),
    "eye": ("gain",),
    "dirac": ("groups",),
    "delta-orthogonal": ("gain",),
    "constant": ("value",),
    "zeros": (),
    "ones": (),
}
#: The value of the constant aliases.
CONSTANT_ALIASES = {"zeros": 0.0, "ones": 1.0}
#: torch.nn.init.sparse_'s default std.
SPARSE_STD = 0.01

#: Nonlinearities of ``torch.nn.init.calculate_gain``.
NONLINEARITIES = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
)

#: ``calculate_gain``'s default negative slope when leaky_relu gets none.
DEFAULT_LEAKY_SLOPE = 0.01


def gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain of ``torch.nn.init.calculate_gain``.

    linear, conv*, sigmoid: 1;  tanh: 5/3;  relu: sqrt(2);
    leaky_relu: sqrt(2 / (1 + a^2)) with a = ``param`` (0.01 when None);  selu: 3/4.
    """
    if nonlinearity not in NONLINEARITIES:
        raise InputError(
            f"unknown nonlinearity {nonlinearity!r}; expected one of {', '.join(NONLINEARITIES)}"
        )
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = DEFAULT_LEAKY_SLOPE if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 0.75
    return 1.0


def fan(mode: str, fan_in: int, fan_out: int) -> float:
    """The ``n`` of ``variance = scale / n``."""
    if mode == "fan_in":
        return float(fan_in)
    if mode == "fan_out":
        return float(fan_out)
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2.0
    raise InputError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")


def variance_scaling(scale: float, mode: str, distribution: str, fan_in: int, fan_out: int) -> Law:
    """The law of JAX's ``variance_scaling`` with ``normal`` meaning the plain normal."""
    variance = scale / fan(mode, fan_in, fan_out)
    std = math.sqrt(variance)
    if distribution == "normal":
        return Normal(0.0, std)
    if distribution == "uniform":
        bound = math.sqrt(3.0 * variance)
        return Uniform(-bound, bound)
    if distribution == "truncated-normal":
        sigma = std / TRUNCATION_CORRECTION
        return TruncatedNormal(0.0, sigma, -2.0 * sigma, 2.0 * sigma)
    raise InputError(f"unknown distribution {distribution!r}; expected one of {', '.join(DISTRIBUTIONS)}")


@dataclass(frozen=True)
class InitSpec:
    """What the user asked to verify: a scheme and its parameters, framework-free.

    Fields a scheme does not use stay None.  ``law(fan_in, fan_out)`` is the law
    the scheme's paper (or the explicit parameters) define; a framework adapter may
    document a different law for its own API and says so.
    """

    scheme: str
    dist: str | None = None
    gain: float | None = None
    mode: str | None = None
    nonlinearity: str | None = None
    slope: float | None = None
    scale: float | None = None
    mean: float = 0.0
    std: float | None = None
    low: float | None = None
    high: float | None = None
    #: sparse: the fraction of each column set to zero.
    sparsity: float | None = None
    #: constant: the value of every entry.
    value: float | None = None
    #: dirac: the convolution's groups.
    groups: int | None = None

    def __post_init__(self):
        if self.scheme in FAN_SCHEMES:
            if self.dist not in DISTRIBUTIONS:
                raise InputError(
                    f"unknown distribution {self.dist!r}; expected one of {', '.join(DISTRIBUTIONS)}"
                )
        elif self.scheme in STRUCTURED_SCHEMES:
            self._validate_structured()
        elif self.scheme not in EXPLICIT_SCHEMES:
            raise InputError(f"unknown scheme {self.scheme!r}")
        for name in ("sparsity", "value", "groups"):
            if getattr(self, name) is not None and name not in STRUCTURED_PARAMETERS.get(self.scheme, ()):
                raise InputError(f"--{name} does not apply to {self.scheme}")
        if self.mode is not None and self.mode not in MODES:
            raise InputError(f"unknown mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if self.nonlinearity is not None:
            gain(self.nonlinearity, self.slope)  # validates the name
        if self.slope is not None and (self.nonlinearity or "leaky_relu") != "leaky_relu":
            raise InputError(f"--a is the negative slope of leaky_relu; nonlinearity {self.nonlinearity} has none")
        for name in ("gain", "scale", "std"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InputError(f"--{name} must be a positive number, got {value}")
        for name in ("mean", "low", "high", "slope"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise InputError(f"--{name} must be a finite number, got {value}")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise InputError(f"the lower bound {self.low} must be below the upper bound {self.high}")
        if self.scheme in ("trunc-normal", "normal") and self.std is None:
            raise InputError(f"{self.scheme} needs --std")
        if self.scheme in ("trunc-normal", "uniform") and (self.low is None or self.high is None):
            raise InputError(f"{self.scheme} needs both bounds (--low and --high)")
        if self.scheme == "trunc-normal":
            law = self.law(1, 1)
            if not (law.mass > 0.0 and law.variance > 0.0 and math.isfinite(law.fourth_moment)):
                raise InputError(
                    f"trunc-normal: the interval [{self.low}, {self.high}] holds no usable mass of "
                    f"N({self.mean}, {self.std})"
                )

    def _validate_structured(self) -> None:
        """One-line InputErrors for a structured scheme's parameters."""
        takes = STRUCTURED_PARAMETERS[self.scheme]
        for name in ("gain", "std", "scale", "low", "high", "mode", "nonlinearity", "slope", "dist"):
            if getattr(self, name) is not None and name not in takes:
                raise InputError(f"--{name} does not apply to {self.scheme}"
                                 + (f" (it takes {', '.join(f'--{t}' for t in takes)})" if takes else ""))
        if self.mean != 0.0:
            raise InputError(f"--mean does not apply to {self.scheme}")
        if self.scheme == "sparse":
            if self.sparsity is None:
                raise InputError("sparse needs --sparsity (the fraction of each column set to zero)")
            if isinstance(self.sparsity, bool) or not isinstance(self.sparsity, (int, float)) \
                    or not (math.isfinite(self.sparsity) and 0.0 <= self.sparsity <= 1.0):
                raise InputError(f"--sparsity must be between 0 and 1, got {self.sparsity}")
        if self.scheme == "constant":
            if self.value is None:
                raise InputError("constant needs --value")
            if isinstance(self.value, bool) or not isinstance(self.value, (int, float)) or not math.isfinite(self.value):
                raise InputError(f"--value must be a finite number, got {self.value!r}")
        if self.scheme == "dirac" and self.groups is not None:
            if isinstance(self.groups, bool) or not isinstance(self.groups, int) or self.groups < 1:
                raise InputError(f"--groups must be a positive integer, got {self.groups!r}")

    @property
    def uses_fans(self) -> bool:
        return self.scheme in FAN_SCHEMES

    @property
    def structured(self) -> bool:
        """Whether the law depends on the whole shape (:mod:`initcheck.structured`)."""
        return self.scheme in STRUCTURED_SCHEMES

    @property
    def deterministic(self) -> bool:
        """Whether the scheme draws nothing: every call gives the same tensor."""
        return self.scheme in ("eye", "dirac", "constant", "zeros", "ones")

    @property
    def constant_value(self) -> float | None:
        """The value of ``constant``, ``zeros`` or ``ones``; None for other schemes."""
        if self.scheme == "constant":
            return float(self.value)
        return CONSTANT_ALIASES.get(self.scheme)

    @property
    def effective_std(self) -> float:
        """sparse: the std of the non-zero values (0.01 unless given)."""
        return SPARSE_STD if self.std is None else self.std

    @property
    def effective_groups(self) -> int:
        return 1 if self.groups is None else self.groups

    @property
    def effective_mode(self) -> str:
        if self.scheme == "xavier":
            return "fan_avg"
        if self.scheme == "lecun":
            return "fan_in"
        return self.mode or "fan_in"

    @property
    def effective_gain(self) -> float:
        """gain; for kaiming from the nonlinearity (leaky_relu with slope 0 by default)."""
        if self.scheme == "kaiming":
            nonlinearity = self.nonlinearity or "leaky_relu"
            slope = 0.0 if self.slope is None else self.slope
            return gain(nonlinearity, slope)
        if self.scheme == "variance-scaling":
            return math.sqrt(self.scale if self.scale is not None else 1.0)
        return 1.0 if self.gain is None else self.gain

    def law(self, fan_in: int, fan_out: int) -> Law:
        """The law from the fans (fan schemes) or the parameters (explicit laws,
        constants).  A structured law needs the shape:
        :func:`initcheck.structured.expectation`."""
        if self.constant_value is not None:
            from initcheck.laws import Constant

            return Constant(self.constant_value)
        if self.structured:
            raise InputError(f"the law of {self.scheme} depends on the weight's shape, not only its fans "
                             "(initcheck.structured.expectation(spec, shape))")
        if self.uses_fans:
            scale = self.effective_gain**2
            return variance_scaling(scale, self.effective_mode, self.dist, fan_in, fan_out)
        if self.scheme == "normal":
            return Normal(self.mean, self.std)
        if self.scheme == "uniform":
            return Uniform(self.low, self.high)
        return TruncatedNormal(self.mean, self.std, self.low, self.high)

    def with_dist(self, dist: str) -> InitSpec:
        return replace(self, dist=dist)

    def describe(self) -> str:
        """A short name for tables: ``xavier normal``, ``kaiming uniform (relu, fan_in)``."""
        if self.scheme == "xavier":
            extra = "" if self.gain in (None, 1.0) else f" (gain {self.gain:g})"
            return f"xavier {self.dist}{extra}"
        if self.scheme == "kaiming":
            nl = self.nonlinearity or "leaky_relu"
            if nl == "leaky_relu":
                nl = f"leaky_relu a={0.0 if self.slope is None else self.slope:g}"
            return f"kaiming {self.dist} ({nl}, {self.effective_mode})"
        if self.scheme == "lecun":
            return f"lecun {self.dist}"
        if self.scheme == "variance-scaling":
            return f"variance-scaling {self.dist} (scale {self.scale:g}, {self.effective_mode})"
        if self.scheme in ("orthogonal", "eye", "delta-orthogonal"):
            return self.scheme + ("" if self.gain in (None, 1.0) else f" (gain {self.gain:g})")
        if self.scheme == "sparse":
            return f"sparse (sparsity {self.sparsity:g}, std {self.effective_std:g})"
        if self.scheme == "dirac":
            return "dirac" + ("" if self.effective_groups == 1 else f" (groups {self.groups})")
        if self.scheme == "constant":
            return f"constant {self.value:g}"
        return self.scheme
