"""The result of one check of one row: what :mod:`initcheck.checks` and
:mod:`initcheck.structure_checks` compute and :mod:`initcheck.policy` decides."""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Probability with which the power statements promise detection.
POWER = 0.999
@dataclass(frozen=True)
class CheckResult:
    """One check of one row.

    ``pvalue`` is None for deterministic checks.  For statistical checks ``level``
    (the share of alpha Holm's procedure gives this check), ``threshold`` (the
    critical value of ``statistic`` at that level) and ``passed`` are filled in
    by :func:`initcheck.policy.apply_holm`; thresholds and power statements
    by :func:`initcheck.policy.annotate`.  Immutable: policy hands out new ones.
    """

    name: str
    statistic: float | None
    detail: str
    pvalue: float | None = None
    passed: bool | None = None
    level: float | None = None
    threshold: float | None = None
    power: float | None = None
    power_text: str = ""
    #: How far the statistic itself may be off (the histogram's cell mass for KS).
    resolution: float = 0.0
    #: The number of trials a per-draw check counted (the diagonal signs), for
    #: its power statement; None elsewhere.
    sample_size: int | None = None

    @property
    def statistical(self) -> bool:
        return self.pvalue is not None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "statistic": _json_number(self.statistic),
            "pvalue": self.pvalue,
            "level": self.level,
            "threshold": _json_number(self.threshold),
            "passed": self.passed,
            "detail": self.detail,
            "detectable": _json_number(self.power),
            "detectable_text": self.power_text,
        }


def _json_number(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else str(value)


