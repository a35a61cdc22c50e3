"""Run planned rows: draw, fold, check, and decide.

For each row the runner draws tensors of the layer's real shape with the
framework's real initializer until it has at least ``samples`` values.  Draw i of
a row uses the seed derived from (``seed``, the row's key, i), so the same
command gives the same numbers, and a row's numbers do not depend on which other
rows run beside it.

Drawing and folding overlap: while a worker thread folds draw i (the C kernel and torch
release the GIL), the main thread asks the framework for draw i+1.  Only one draw
is ever waiting, so memory stays O(draw + bins) whatever N is.

Once every row is sampled, all statistical checks of the command go through
Holm's procedure together (see :mod:`initcheck.checks`).
"""

from __future__ import annotations

import math
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

from initcheck.checks import CheckResult, annotate, apply_holm, evaluate
from initcheck.frameworks.base import Plan, Skip
from initcheck.laws import Law
from initcheck.lowp import sample_dtype
from initcheck.reducers import reducer_for
from initcheck.summary import Summary


def draw_seed(seed: int, row_key: str, index: int) -> int:
    """A 63-bit seed for draw ``index`` of the row ``row_key``."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(row_key.encode()), index])
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1))


@dataclass
class Row:
    """A row to run: what it checks (for people) and how (the plan or the skip)."""

    initializer: str
    layer: str
    plan: Plan | Skip
    #: Values to draw for this row, when not the command's (a suite check's ``samples``).
    samples: int | None = None


@dataclass
class RowResult:
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
    verdict: str = "SKIP"
    reason: str = ""
    seconds: float = 0.0
    partial: bool = False

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


def _array_info(x) -> tuple[str, str]:
    """(dtype, device) of a draw whose plan could not know them (custom functions)."""
    dtype = getattr(x.dtype, "name", None) or str(x.dtype).removeprefix("torch.")
    device = str(getattr(x, "device", "cpu"))
    return dtype, ("cpu" if "cpu" in device.lower() else device)


class _RateColumn(ProgressColumn):
    """Samples per second, in millions."""

    def render(self, task) -> Text:
        return Text(f"{task.speed / 1e6:,.1f} M/s" if task.speed else "")


class _Progress:
    """A rich progress bar on stderr, shown only once the work has taken a second."""

    def __init__(self, total: int, enabled: bool):
        self.total = total
        self.enabled = enabled
        self.started = time.perf_counter()
        self.bar = None
        self.task = None
        self.done = 0

    def advance(self, count: int, description: str) -> None:
        self.done += count
        if not self.enabled:
            return
        if self.bar is None:
            if time.perf_counter() - self.started < 1.0:
                return
            console = Console(stderr=True)
            if not console.is_terminal:  # logs get the table, not a bar's leftovers
                self.enabled = False
                return
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(description, total=self.total, completed=self.done)
        self.bar.update(self.task, completed=self.done, description=description)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _draw_count(plan: Plan, samples: int) -> int:
    wanted = samples if plan.samples is None else min(samples, plan.samples)
    return max(1, math.ceil(wanted / math.prod(plan.shape)))


class Interrupted(Exception):
    """Ctrl-C during a row; carries the summary of what was folded so far."""

    def __init__(self, summary: Summary | None):
        super().__init__("interrupted")
        self.summary = summary


def sample_row(plan: Plan, samples: int, seed: int, progress: _Progress, label: str) -> Summary:
    """Draw and fold until at least ``samples`` values; returns the row's summary.

    On Ctrl-C the draw being folded is finished and :class:`Interrupted` carries
    the summary so far."""
    size = math.prod(plan.shape)
    draws = _draw_count(plan, samples)
    reducer = None
    pending = None
    with ThreadPoolExecutor(max_workers=1) as folder:
        try:
            for index in range(draws):
                x = plan.draw(draw_seed(seed, plan.key, index))
                if reducer is None:
                    if plan.dtype == "?":
                        plan.dtype, plan.device = _array_info(x)
                    reducer = reducer_for(x, plan.law)
                if reducer.asynchronous:  # it only queues device work: a thread would only add latency
                    reducer.fold(x)
                else:
                    if pending is not None:
                        pending.result()
                    pending = folder.submit(reducer.fold, x)
                progress.advance(size, label)
            if pending is not None:
                pending.result()
        except KeyboardInterrupt:
            if pending is not None:
                pending.result()
            raise Interrupted(reducer.summary() if reducer is not None else None) from None
    return reducer.summary()


@dataclass
class Outcome:
    """Every row's result, and whether Ctrl-C cut the run short."""

    results: list[RowResult]
    interrupted: bool = False


def run(
    rows: list[Row], samples: int, seed: int, alpha: float, show_progress: bool = True, strict: bool = False
) -> Outcome:
    """Sample every runnable row, then check all of them under one Holm family.

    Ctrl-C stops the sampling: the row in progress is checked on what it drew
    (marked partial) and the rows not reached are skipped."""
    total = sum(_draw_count(r.plan, r.samples or samples) * math.prod(r.plan.shape)
                for r in rows if isinstance(r.plan, Plan))
    progress = _Progress(total, show_progress)
    outcome = Outcome([])
    try:
        for row in rows:
            plan = row.plan
            result = RowResult(
                row.initializer, row.layer, plan.framework, plan.api, plan.shape, plan.device, plan.dtype
            )
            outcome.results.append(result)
            if isinstance(plan, Skip):
                result.reason = plan.reason
                continue
            if outcome.interrupted:
                result.reason = "not run: interrupted"
                continue
            started = time.perf_counter()
            try:
                summary = sample_row(plan, row.samples or samples, seed, progress, f"{plan.framework} {row.initializer}")
            except Interrupted as stop:
                outcome.interrupted, summary = True, stop.summary
                result.partial = True
            result.seconds = time.perf_counter() - started
            result.device, result.dtype = plan.device, plan.dtype
            if summary is None or summary.total == 0:
                result.reason = "not run: interrupted"
                continue
            result.law, result.summary = plan.law, summary
            result.checks = evaluate(plan.law, summary, sample_dtype(plan.dtype))
    finally:
        progress.close()
    decide(outcome.results, alpha, strict)
    for result in outcome.results:
        if result.partial:
            result.reason = "partial (interrupted). " + result.reason
    return outcome


def decide(results: list[RowResult], alpha: float, strict: bool = False) -> None:
    """Holm over every statistical check of every row, then each row's verdict.

    A failing 16-bit row gets the WARN rule of DESIGN section 4, widened to
    every rounding within the dtype's resolution (:func:`_rounding_candidates`):
    when one of them explains every failure (mass moved between the bound
    atoms with the pooled count agreeing with the law, bounds rounded to the
    dtype, or a normal computed in the dtype), the verdict is WARN with that
    cause, or FAIL under ``strict``."""
    every_check = [c for r in results for c in r.checks]
    apply_holm(every_check, alpha)
    tested = sum(1 for c in every_check if c.statistical)
    for result in results:
        if result.summary is None:
            continue
        annotate(result.checks, result.law, result.summary, alpha / max(tested, 1))
        failed = [c for c in result.checks if not c.passed]
        result.verdict = "FAIL" if failed else "PASS"
        result.reason = "; ".join(c.detail for c in failed)
        if failed and result.summary.patterns is not None:
            cause = _rounding_cause(result)
            if cause:
                result.verdict = "FAIL" if strict else "WARN"
                result.reason = cause + ("" if not strict else " (--strict)")


def _rounding_candidates(law: Law, dtype: str) -> list[tuple[Law, str]]:
    """The laws the WARN rule may compare a 16-bit row with, each with the
    rounding it stands for: the documented law; for a uniform law whose bounds
    the dtype cannot hold, the law with its bounds rounded to the dtype
    (PyTorch's CUDA ``uniform_`` casts ``a`` and ``b`` first); for a normal or
    truncated normal of mean 0, the law of a sampler that computes in the dtype
    (:class:`~initcheck.lowp.ScaledIn16Bits`, Keras' TensorFlow backend)."""
    from initcheck.laws import Normal, TruncatedNormal, Uniform
    from initcheck.lowp import ScaledIn16Bits, round_to

    candidates = [(law, "")]
    if isinstance(law, Uniform):
        low, high = (float(round_to(dtype, b)) for b in (law.low, law.high))
        if (low, high) != (law.low, law.high) and low < high:
            candidates.append((
                Uniform(low, high),
                f"the sampler rounds the bounds to {dtype} first ({low:.6g}, {high:.6g} instead of "
                f"{law.low:.6g}, {law.high:.6g}), within {dtype}'s resolution",
            ))
    if isinstance(law, (Normal, TruncatedNormal)) and law.mean == 0.0:
        scaled = ScaledIn16Bits(law, dtype)
        candidates.append((
            scaled,
            f"the sampler computes in {dtype}: a standard draw rounded to {dtype}, times the std rounded to "
            f"{dtype} ({scaled.sigma:.6g} for {law.sigma:.6g}), rounded again; every value is within one "
            f"{dtype} step of a correctly rounded draw",
        ))
    return candidates


def _rounding_cause(result: RowResult) -> str | None:
    """The WARN cause, when 16-bit rounding explains every failure: mass moved
    between the bound atoms, parameters rounded to the dtype, or both."""
    for law, rounding in _rounding_candidates(result.law, result.summary.dtype16):
        if rounding and _explains(result, law, result.summary):
            return rounding + "; against that law every check passes"
        cause = _rebalance_explains(result, law)
        if cause:
            return f"{rounding}; {cause}" if rounding else cause
    return None


def _explains(result: RowResult, law: Law, summary: Summary) -> bool:
    """Whether every check of ``summary`` against ``law`` passes at the levels
    Holm gave the row's checks."""
    levels = {c.name: c.level for c in result.checks if c.statistical}
    retried = evaluate(law, summary, sample_dtype(result.dtype))
    for check in retried:
        if check.statistical:
            check.passed = check.pvalue > levels.get(check.name, 0.0)
    return all(check.passed for check in retried)


def _rebalance_explains(result: RowResult, law: Law) -> str | None:
    """The cause, when splitting the bound atoms' pooled count as ``law`` does
    makes every check pass and the pooled count agrees with ``law``."""
    from initcheck.lowp import as_rounded, rebalanced

    rounded = as_rounded(law, result.summary.dtype16)
    found = rebalanced(result.summary, rounded)
    if found is None:
        return None
    summary, moved = found
    if not _explains(result, law, summary):
        return None
    levels = [c.level for c in result.checks if c.statistical]
    n = summary.count
    mass = moved["low"][2] + moved["high"][2]
    spread = math.sqrt(n * mass * (1.0 - mass)) or 1.0
    z = (moved["pooled"] - n * mass) / spread
    if math.erfc(abs(z) / math.sqrt(2.0)) <= min(levels):
        return None  # more (or less) mass on the bounds than the law's: not a mere move
    (low_value, low_count, low_mass), (high_value, high_count, high_mass) = moved["low"], moved["high"]
    return (
        f"{summary.dtype16} mass moved between the bound atoms: {low_value:g} holds {low_count / n:.3g} of the "
        f"values (law {low_mass:.3g}), {high_value:g} holds {high_count / n:.3g} (law {high_mass:.3g}); "
        "their pooled mass matches the law, and with it split as the law's every check passes"
    )
