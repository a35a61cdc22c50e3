"""How long will a run take?  Measured, not guessed, before a long run starts.

For each framework of the run, the first row's plan is sampled twice through
the real sampler (:func:`initcheck.sampling.sample_row`: drawing and folding,
batches included): once to warm up (imports, jit compiles, first-call costs),
then for about :data:`PROBE_VALUES` values, timed.  Its seconds per value,
times the values of every row of that framework, summed over frameworks, is
the estimate.  Rows are independent of the probe (their seeds come from the
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


def seconds_per_value(plan: Plan) -> float:
    """Seconds a value of ``plan`` costs, drawn and folded, after warm-up."""
    from initcheck.sampling import sample_row

    size = math.prod(plan.shape)
    quiet = Progress(0, enabled=False)
    sample_row(plan, size, 0, quiet, "")  # warm-up: first calls, compiles
    probe = max(PROBE_VALUES, 4 * size)
    started = time.perf_counter()
    summary, _, _ = sample_row(plan, probe, 1, quiet, "")
    return (time.perf_counter() - started) / max(summary.total, 1)


def estimate_seconds(plans: list[tuple[Plan, int]]) -> float:
    """Seconds to sample every (plan, samples) pair, from one probe per framework."""
    rates: dict[str, float] = {}
    total = 0.0
    for plan, samples in plans:
        if plan.framework not in rates:
            rates[plan.framework] = seconds_per_value(plan)
        total += rates[plan.framework] * row_values(plan, samples)
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
