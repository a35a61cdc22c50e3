"""Run planned rows: sample every row, then decide all of them together.

Execution (:mod:`initcheck.sampling`: drawing and folding) and policy
(:mod:`initcheck.policy`: Holm, annotations, verdicts, the 16-bit WARN rule)
meet here and nowhere else.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from initcheck.checks import evaluate
from initcheck.frameworks.base import Plan, Skip
from initcheck.lowp import sample_dtype
from initcheck.policy import decide
from initcheck.results import Sampled, Verification
from initcheck.progress import Progress
from initcheck.sampling import Interrupted, draw_count, sample_row


@dataclass
class Row:
    """A row to run: what it checks (for people) and how (the plan or the skip)."""

    initializer: str
    layer: str
    plan: Plan | Skip
    #: Values to draw for this row, when not the command's (a suite check's ``samples``).
    samples: int | None = None
    #: The suite check's ``name``, shown with the row; empty elsewhere.
    name: str = ""


def run(
    rows: list[Row], samples: int, seed: int, alpha: float, show_progress: bool = True, strict: bool = False
) -> Verification:
    """Sample every runnable row, then check all of them under one Holm family.

    Ctrl-C stops the sampling: the row in progress is checked on what it drew
    (marked partial) and the rows not reached are skipped."""
    sampled, interrupted = sample_rows(rows, samples, seed, show_progress)
    return Verification(tuple(decide(sampled, alpha, strict)), samples, seed, alpha, strict, interrupted)


def sample_rows(rows: list[Row], samples: int, seed: int, show_progress: bool = True) -> tuple[list[Sampled], bool]:
    """The execution half of :func:`run`: each row drawn, folded and its
    checks' statistics computed, nothing decided yet; and whether Ctrl-C
    stopped it.  :func:`initcheck.policy.decide` turns the list into verdicts
    (it leaves the list as it was, so one sampling may be decided twice, for
    example with and without ``strict``)."""
    total = sum(draw_count(r.plan, r.samples or samples) * math.prod(r.plan.shape)
                for r in rows if isinstance(r.plan, Plan))
    progress = Progress(total, show_progress)
    sampled: list[Sampled] = []
    interrupted = False
    try:
        for row in rows:
            plan = row.plan
            done = Sampled(row.initializer, row.layer, plan.framework, plan.api, plan.shape, plan.device, plan.dtype,
                           name=row.name, samples=row.samples or samples)
            sampled.append(done)
            if isinstance(plan, Skip):
                done.reason = plan.reason
                continue
            if interrupted:
                done.reason = "not run: interrupted"
                continue
            started = time.perf_counter()
            try:
                drawn = sample_row(plan, row.samples or samples, seed, progress, f"{plan.framework} {row.initializer}")
                summary, done.dtype, done.device = drawn
                draw_results = drawn.draw_checks
            except Interrupted as stop:
                interrupted, summary = True, stop.summary
                done.dtype, done.device = stop.dtype or plan.dtype, stop.device or plan.device
                done.partial = True
                draw_results = stop.draw_checks
            done.seconds = time.perf_counter() - started
            if summary is None or summary.total == 0:
                done.reason, done.partial = "not run: interrupted", False
                continue
            done.law, done.summary = plan.law, summary
            # the law's checks, then those made on each whole draw (a structured law's)
            done.checks = evaluate(plan.law, summary, sample_dtype(done.dtype)) + draw_results
    finally:
        progress.close()
    return sampled, interrupted
