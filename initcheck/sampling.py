"""Execution: draw a row's tensors and fold them, nothing else.

For each row the sampler draws tensors of the layer's real shape with the
framework's real initializer until it has at least ``samples`` values.  Draw i of
a row uses the seed derived from (``seed``, the row's key, i), so the same
command gives the same numbers, and a row's numbers do not depend on which other
rows run beside it.

Small draws come in batches when the plan can make them
(:attr:`~initcheck.frameworks.base.Plan.draw_batch`): a draw of ``size`` values
is small when a batch of ``BATCH_VALUES`` values holds at least
``MIN_BATCH_DRAWS`` of them.  Batch b (0, 1, 2, ...) holds ``count = min(draws
left, BATCH_VALUES // size)`` independent draws, each still the framework's
real initializer on the real per-draw shape, stacked along a new leading axis;
the seed of batch b is derived from (``seed``, the row's key, b), and the
adapter derives the draws' randomness within the batch from that one seed (a
generator, the global RNG inside ``fork_rng``, or keys split from it: see each
adapter).  So a batched row is as reproducible as a per-draw one, and its
numbers, like a per-draw row's, depend on nothing but the command's seed and
the row.  A batch is folded as ``count`` consecutive draws
(``reducer.fold(x, draws=count)``).  Larger draws keep one call per draw.

Drawing and folding overlap: while a worker thread folds draw (or batch) i (the
C kernel and torch release the GIL), the main thread asks the framework for
draw i+1.  Only one is ever waiting, so memory stays O(batch + bins) whatever N
is.

A structured law's plan has per-draw checks (``Plan.draw_checks``, see
:mod:`initcheck.draw_checks`): a fresh set per run of the row, each shown every
draw or batch, as a host NumPy array ``(count, *shape)``, in the main thread
as soon as it is drawn, while the fold thread still folds the one before (so a
check's matrix product never runs beside the framework's own multithreaded
QR: two thread pools on a small machine slow each other several-fold); their
results come back with the summary (:class:`RowDraws`).

What the numbers mean is decided elsewhere (:mod:`initcheck.policy`).
"""

from __future__ import annotations

import math
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from initcheck.draw_checks import host_batch
from initcheck.frameworks.base import Plan
from initcheck.progress import Progress
from initcheck.reducers import reducer_for
from initcheck.summary import Summary


#: Values in one batch of small draws.
BATCH_VALUES = 1 << 20
#: Draws a batch must hold for a row to be drawn in batches; larger draws are
#: drawn one call each (their per-call cost is already small beside the sampling).
MIN_BATCH_DRAWS = 16


def draw_seed(seed: int, row_key: str, index: int) -> int:
    """A 63-bit seed for draw ``index`` of the row ``row_key``."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(row_key.encode()), index])
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _array_info(x) -> tuple[str, str]:
    """(dtype, device) of a draw whose plan could not know them (custom functions)."""
    dtype = getattr(x.dtype, "name", None) or str(x.dtype).removeprefix("torch.")
    device = str(getattr(x, "device", "cpu"))
    return dtype, ("cpu" if "cpu" in device.lower() else device)


def draw_count(plan: Plan, samples: int) -> int:
    wanted = samples if plan.samples is None else min(samples, plan.samples)
    return max(1, math.ceil(wanted / math.prod(plan.shape)))


class Interrupted(Exception):
    """Ctrl-C during a row; carries the summary of what was folded so far, the
    dtype and device of the draws (None when nothing was drawn), and the
    per-draw checks' results on those draws."""

    def __init__(self, summary: Summary | None, dtype: str | None = None, device: str | None = None,
                 draw_checks: list | None = None):
        super().__init__("interrupted")
        self.summary, self.dtype, self.device = summary, dtype, device
        self.draw_checks = list(draw_checks or [])


class RowDraws(tuple):
    """What :func:`sample_row` returns: it unpacks as ``(summary, dtype,
    device)``; ``draw_checks`` holds the results of the plan's per-draw checks
    (empty without them)."""

    def __new__(cls, summary: Summary, dtype: str, device: str, draw_checks=()):
        row = super().__new__(cls, (summary, dtype, device))
        row.draw_checks = list(draw_checks)
        return row

    @property
    def summary(self) -> Summary:
        return self[0]


def batch_size(plan: Plan) -> int:
    """Draws per call of the row: 1, or the batch size when the plan draws in
    batches and its draws are small."""
    if plan.draw_batch is None:
        return 1
    per_batch = BATCH_VALUES // max(1, math.prod(plan.shape))
    return per_batch if per_batch >= MIN_BATCH_DRAWS else 1


def sample_row(plan: Plan, samples: int, seed: int, progress: Progress, label: str) -> RowDraws:
    """Draw and fold until at least ``samples`` values; returns the row's
    summary and the dtype and device of its draws (a custom function's plan
    learns them from its first draw; the plan itself is never changed, so the
    same plan run twice gives the same numbers), and the per-draw checks'
    results (:class:`RowDraws`).

    On Ctrl-C the draw (or batch) being folded is finished and
    :class:`Interrupted` carries the summary so far."""
    size = math.prod(plan.shape)
    draws = draw_count(plan, samples)
    per_call = batch_size(plan)
    observers = list(plan.draw_checks()) if plan.draw_checks is not None else []
    shape = tuple(plan.shape)
    reducer = None
    pending = None
    dtype, device = plan.dtype, plan.device
    with ThreadPoolExecutor(max_workers=1) as folder:
        try:
            for index, first in enumerate(range(0, draws, per_call)):
                index_seed = draw_seed(seed, plan.key, index)
                if per_call == 1:
                    count, x = 1, plan.draw(index_seed)
                else:
                    count = min(per_call, draws - first)
                    x = plan.draw_batch(index_seed, count)
                if reducer is None:
                    if plan.dtype == "?":
                        dtype, device = _array_info(x)
                    reducer = reducer_for(x, plan.law, expected_values=draws * size)
                if observers:
                    _observe(observers, x, count, shape)
                if reducer.asynchronous:  # it only queues device work: a thread would only add latency
                    _fold(reducer, x, count, per_call)
                else:
                    if pending is not None:
                        pending.result()
                    pending = folder.submit(_fold, reducer, x, count, per_call)
                progress.advance(size * count, label)
            if pending is not None:
                pending.result()
        except KeyboardInterrupt:
            # every fold submitted has ended before the summary is read (the
            # interrupt may land between a submit and its assignment to pending)
            folder.shutdown(wait=True)
            raise Interrupted(reducer.summary() if reducer is not None else None, dtype, device,
                              [check.result() for check in observers] if reducer is not None else []) from None
    return RowDraws(reducer.summary(), dtype, device, [check.result() for check in observers])


def _fold(reducer, x, count: int, per_call: int) -> None:
    """One draw, or a batch of ``count`` draws stacked on the leading axis."""
    if per_call == 1:
        reducer.fold(x)
    else:
        reducer.fold(x, draws=count)


def _observe(observers, x, count: int, shape: tuple[int, ...]) -> None:
    """The per-draw checks see a draw or batch, as ``(count, *shape)`` on the host."""
    host = host_batch(x, count, shape)
    for check in observers:
        check.observe(host, count)
