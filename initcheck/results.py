"""What a run leaves: each row sampled (:class:`Sampled`), then decided
(:class:`RowResult`, immutable), and the whole run (:class:`Outcome`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from initcheck.checks import CheckResult
from initcheck.laws import Law
from initcheck.summary import Summary


@dataclass
class Sampled:
    """A row once drawn and folded, with its checks' p-values but no verdict
    (or the reason it did not run)."""

    initializer: str
    layer: str
    framework: str
    api: str
    shape: tuple[int, ...]
    device: str
    dtype: str
    law: Law | None = None
    summary: Summary | None = None
    checks: list[CheckResult] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0
    partial: bool = False


@dataclass(frozen=True)
class RowResult:
    """One row, decided: what ran, what it drew, every check, and the verdict.

    ``verdict`` is PASS, WARN, FAIL or SKIP; ``reason`` says why for anything
    but PASS.  ``bool(result)`` is True unless the verdict is FAIL.
    """

    initializer: str
    layer: str
    framework: str
    api: str
    shape: tuple[int, ...]
    device: str
    dtype: str
    law: Law | None = None
    summary: Summary | None = None
    checks: tuple[CheckResult, ...] = ()
    verdict: str = "SKIP"
    reason: str = ""
    seconds: float = 0.0
    partial: bool = False

    def __bool__(self) -> bool:
        return self.verdict != "FAIL"

    @property
    def passed(self) -> bool:
        """No check failed (PASS, WARN, or SKIP)."""
        return self.verdict != "FAIL"

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    @property
    def key(self) -> str:
        """What identifies the row across runs (``initcheck compare`` matches on
        it): framework, initializer, layer, shape, dtype and device; not the API
        text, which may change with the framework's version."""
        initializer = " ".join(self.initializer.split())
        layer = " ".join(self.layer.split())
        shape = "x".join(map(str, self.shape))
        return f"{self.framework} | {initializer} | {layer} | {shape} | {self.dtype} | {self.device}"

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "initializer": self.initializer,
            "layer": self.layer,
            "framework": self.framework,
            "api": self.api,
            "shape": list(self.shape),
            "device": self.device,
            "dtype": self.dtype,
            "law": self.law.to_dict() if self.law else None,
            "verdict": self.verdict,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "partial": self.partial,
            "statistics": self.summary.to_dict() if self.summary else None,
            "checks": [c.to_dict() for c in self.checks],
        }




@dataclass(frozen=True)
class Outcome:
    """Every row's result, and whether Ctrl-C cut the run short."""

    results: tuple[RowResult, ...]
    interrupted: bool = False
