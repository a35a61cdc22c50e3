"""How Keras and JAX spell a fan-based scheme, and the law each spelling documents.

Keras 3 and JAX build every fan-based initializer on ``variance_scaling``
(``scale``, ``mode``, ``distribution``) and name a few fixed settings:

    glorot_{normal,uniform}  scale 1, fan_avg
    he_{normal,uniform}      scale 2, fan_in
    lecun_{normal,uniform}   scale 1, fan_in

Their named ``*_normal`` initializers draw from the *truncated* normal (cut at
two sigma, sigma divided by 0.87962566103423978 so the variance is kept).  A
request the named initializers cannot express (a gain other than the fixed one,
kaiming in fan_out mode) goes to the general ``variance_scaling`` API with the
same distribution the named ones use; that API is printed in the row, so nothing
is substituted silently.

For the ``variance-scaling`` scheme the user's ``--distribution`` is passed
literally, and the frameworks disagree on ``normal``: Keras treats it as an alias
of ``truncated_normal``, JAX as the plain normal.  :func:`resolve` takes that
difference as ``normal_means``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from initcheck.laws import Law
from initcheck.schemes import variance_scaling

_NAMED = {
    ("xavier", 1.0, "fan_avg"): "glorot",
    ("kaiming", 2.0, "fan_in"): "he",
    ("lecun", 1.0, "fan_in"): "lecun",
}


@dataclass(frozen=True)
class ScalingCall:
    """One call of a framework's variance-scaling family."""

    named: str | None  # "glorot", "he", "lecun" (then `uniform` picks the flavour), or None
    scale: float
    mode: str
    distribution: str  # the framework's own distribution string for the general API
    law_dist: str  # what is drawn, in initcheck's names: normal | truncated-normal | uniform

    def law(self, fan_in: int, fan_out: int) -> Law:
        return variance_scaling(self.scale, self.mode, self.law_dist, fan_in, fan_out)

    @property
    def uniform(self) -> bool:
        return self.law_dist == "uniform"


def resolve(spec, normal_means: str) -> ScalingCall:
    """The call for a fan-based spec; ``normal_means`` is what the framework's
    general API does with ``distribution="normal"`` ("truncated-normal" in Keras,
    "normal" in JAX)."""
    scale = round(spec.effective_gain**2, 12)  # sqrt(2)**2 prints as 2.0, as the user would write it
    mode = spec.effective_mode
    if spec.scheme == "variance-scaling":
        literal = spec.dist.replace("-", "_")
        law_dist = normal_means if spec.dist == "normal" else spec.dist
        return ScalingCall(None, spec.scale, mode, literal, law_dist)
    # named schemes: "normal" means the truncated normal in both frameworks
    law_dist = "uniform" if spec.dist == "uniform" else "truncated-normal"
    named = next(
        (name for (scheme, s, m), name in _NAMED.items()
         if scheme == spec.scheme and m == mode and math.isclose(s, scale, rel_tol=1e-12)),
        None,
    )
    return ScalingCall(named, scale, mode, law_dist.replace("-", "_"), law_dist)
