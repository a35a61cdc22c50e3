"""What a run leaves: each row sampled (:class:`Sampled`), then decided
(:class:`RowResult`, immutable), and the whole run (:class:`Outcome`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

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
    name: str = ""
    samples: int = 0

    def decided(self, checks, verdict: str, reason: str) -> RowResult:
        """The immutable result of this row: every field it shares with
        :class:`RowResult`, with the decided checks, verdict and reason."""
        shared = {f.name: getattr(self, f.name) for f in fields(RowResult) if hasattr(self, f.name)}
        return RowResult(**{**shared, "checks": tuple(checks), "verdict": verdict, "reason": reason})


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
    #: The suite check's name, when the row came from one.
    name: str = ""
    #: Values asked for (the row draws whole tensors, so ``summary.total`` may be a little more).
    samples: int = 0

    def __bool__(self) -> bool:
        return self.verdict != "FAIL"

    @property
    def passed(self) -> bool:
        """No check failed (PASS, WARN, or SKIP)."""
        return self.verdict != "FAIL"

    def __str__(self) -> str:
        from initcheck.text import row_text

        return row_text(self)

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
            "name": self.name,
            "samples": self.samples,
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
class Verification:
    """The result of one command or one :func:`initcheck.verify_all` call:
    every row decided under one Holm family.

    It is a sequence of :class:`RowResult` (``len``, iteration, indexing).
    ``bool(verification)`` is :attr:`passed`: no row FAIL, the run was not cut
    short, and at least one row was checked (all SKIP checks nothing).
    ``str()`` is the table in plain text, one block per row.
    """

    results: tuple[RowResult, ...]
    samples: int
    seed: int
    alpha: float
    strict: bool = False
    interrupted: bool = False

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self):
        return iter(self.results)

    def __getitem__(self, index):
        return self.results[index]

    @property
    def passed(self) -> bool:
        return (not self.interrupted and any(r.verdict != "SKIP" for r in self.results)
                and not any(r.verdict == "FAIL" for r in self.results))

    def __bool__(self) -> bool:
        return self.passed

    @property
    def verdict(self) -> str:
        """FAIL if any row failed, else WARN if any warned, else PASS if any
        passed, else SKIP."""
        verdicts = {r.verdict for r in self.results}
        return next((v for v in ("FAIL", "WARN", "PASS") if v in verdicts), "SKIP")

    @property
    def failures(self) -> tuple[RowResult, ...]:
        return tuple(r for r in self.results if r.verdict == "FAIL")

    def _single(self) -> RowResult:
        if len(self.results) != 1:
            raise ValueError(f"this verification has {len(self.results)} rows; index it (result[i])")
        return self.results[0]

    @property
    def result(self) -> RowResult:
        """The one row of a one-row verification (ValueError otherwise)."""
        return self._single()

    @property
    def checks(self) -> tuple[CheckResult, ...]:
        """The checks of the one row."""
        return self._single().checks

    @property
    def summary(self) -> Summary | None:
        """The sufficient statistics of the one row."""
        return self._single().summary

    @property
    def law(self) -> Law | None:
        """The law of the one row."""
        return self._single().law

    def __str__(self) -> str:
        head = (f"initcheck: {self.verdict}, {len(self.results)} row(s), N = {self.samples:,} a row, "
                f"seed {self.seed}, family-wise alpha {self.alpha:g}"
                + (" (interrupted)" if self.interrupted else ""))
        return "\n".join([head, *(str(r) for r in self.results)])

    def to_dict(self, env: dict | None = None) -> dict:
        """The JSON report (schema initcheck-report/2) of these rows."""
        from initcheck.report import json_report

        settings = {"samples": self.samples, "seed": self.seed, "alpha": self.alpha, "strict": self.strict,
                    "interrupted": self.interrupted}
        return json_report(list(self.results), settings, env or {})
