"""How long will a run take?  Measured, not guessed, before a long run starts.

For each framework of the run, the first row's plan is sampled twice through
the real sampler (:func:`initcheck.sampling.sample_row`: drawing and folding,
batches included): once to warm up (jit compiles, first-call costs), timed,
then for about :data:`PROBE_VALUES` values, timed.  A row of that framework is
estimated at the warm-up's seconds (each row compiles its own draws) plus its
values times the probe's seconds per value; the run, at the sum over rows.  Rows are independent of the probe (their seeds come from the
command's seed, the probe's draws are dropped).

A command refuses to start, with one line, when it has more than
:data:`MAX_ROWS` rows or its estimate exceeds :data:`MAX_SECONDS`, unless it
was given ``--yes``.
"""

from __future__ import annotations

import math
import time

from initcheck.errors import InputError
from initcheck.frameworks.base import Plan
from initcheck.progress import Progress

#: Values the timed probe of a framework draws (at least four draws of the row).
PROBE_VALUES = 1 << 21
#: Runs estimated before they start: suites, --detect, and commands with more values than this.
ESTIMATE_ABOVE_VALUES = 2 * 10**9
#: Without --yes, a run estimated to take longer than this does not start.
MAX_SECONDS = 3600.0
#: Without --yes, a run with more rows than this does not start.
MAX_ROWS = 10_000


def human_duration(seconds: float) -> str:
    """545.2 -> '9.1 min'; 1.3e10 -> '424 years'."""
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"


def row_values(plan: Plan, samples: int) -> int:
    """Values a row of ``samples`` draws (whole draws, so a little more)."""
    from initcheck.sampling import draw_count

    return draw_count(plan, samples) * math.prod(plan.shape)


def probe(plan: Plan) -> tuple[float, float]:
    """(seconds of a row's start: its first call and compiles, seconds a value
    costs after it, drawn and folded) of ``plan``.  Ctrl-C during the probe is
    a plain KeyboardInterrupt: nothing has been sampled for the run yet."""
    from initcheck.sampling import Interrupted

    try:
        return _probe(plan)
    except Interrupted:
        raise KeyboardInterrupt from None


def _probe(plan: Plan) -> tuple[float, float]:
    from initcheck.sampling import sample_row

    size = math.prod(plan.shape)
    quiet = Progress(0, enabled=False)
    started = time.perf_counter()
    sample_row(plan, size, 0, quiet, "")  # warm-up: first calls, compiles
    start = time.perf_counter() - started
    values = max(PROBE_VALUES, 4 * size)
    started = time.perf_counter()
    summary, _, _ = sample_row(plan, values, 1, quiet, "")
    return start, (time.perf_counter() - started) / max(summary.total, 1)


def seconds_per_value(plan: Plan) -> float:
    """Seconds a value of ``plan`` costs, drawn and folded, after warm-up."""
    return probe(plan)[1]


def estimate_seconds(plans: list[tuple[Plan, int]]) -> float:
    """Seconds to sample every (plan, samples) pair, from one probe per framework."""
    probes: dict[str, tuple[float, float]] = {}
    total = 0.0
    for plan, samples in plans:
        if plan.framework not in probes:
            probes[plan.framework] = probe(plan)
        start, per_value = probes[plan.framework]
        total += start + per_value * row_values(plan, samples)
    return total


def check_run_size(rows: list, samples: int, confirmed: bool, always: bool = False) -> str | None:
    """The line announcing a run's size and estimate (None when it is small and
    ``always`` is False); InputError when it is over a limit and not ``confirmed``."""
    plans = [(row.plan, row.samples or samples) for row in rows if isinstance(row.plan, Plan)]
    if len(rows) > MAX_ROWS and not confirmed:
        raise InputError(f"{len(rows):,} rows, more than the limit of {MAX_ROWS:,}: narrow the matrix, "
                         "or add --yes to run them anyway")
    values = sum(row_values(plan, n) for plan, n in plans)
    if not always and values <= ESTIMATE_ABOVE_VALUES:
        return None
    seconds = estimate_seconds(plans) if plans else 0.0
    line = f"{len(rows):,} rows, {values:.3g} values, about {human_duration(seconds)}"
    if seconds > MAX_SECONDS and not confirmed:
        raise InputError(f"{line}: longer than the limit of {human_duration(MAX_SECONDS)}; "
                         "add --yes to run it anyway")
    return line
