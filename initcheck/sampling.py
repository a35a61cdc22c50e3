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
is.  A fold takes the GIL back a few dozen times (once after each kernel and
NumPy call), and each time the drawing thread may be holding it in the
framework's Python code: on a small machine those hand-overs, not the
arithmetic, then set the pace.  So draws of at most ``BATCH_VALUES / 2``
values folded on the host are copied, as they come, into a batch of
``BATCH_VALUES // size`` draws (:class:`HostBatches`), and the fold thread
takes a whole batch at once.  The copy costs the drawing thread a memcpy and
changes no count or cell (the power sums only to rounding, in their order of
addition).

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
from initcheck.reducers.shapes import as_host_array
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
    reducer = copies = None
    pending = None
    dtype, device = plan.dtype, plan.device
    with ThreadPoolExecutor(max_workers=1) as folder:

        def submit(x, draws: int | None) -> None:
            nonlocal pending
            if pending is not None:
                pending.result()
            pending = folder.submit(_fold, reducer, x, draws)

        try:
            for index, first in enumerate(range(0, draws, per_call)):
                index_seed = draw_seed(seed, plan.key, index)
                if per_call == 1:
                    count, stacked, x = 1, None, plan.draw(index_seed)
                else:
                    count = stacked = min(per_call, draws - first)
                    x = plan.draw_batch(index_seed, count)
                if reducer is None:
                    if plan.dtype == "?":
                        dtype, device = _array_info(x)
                    reducer = reducer_for(x, plan.law, expected_values=draws * size)
                    if per_call == 1 and draws > 1:
                        copies = HostBatches.for_row(reducer, x, size)
                if observers:
                    _observe(observers, x, count, shape)
                if reducer.asynchronous:  # it only queues device work: a thread would only add latency
                    _fold(reducer, x, stacked)
                elif copies is not None and (host := copies.host_draw(x)) is not None:
                    full = copies.add(host)
                    if full is not None:
                        submit(full, len(full))
                else:
                    if copies is not None and copies.held:  # a draw unlike the others: the batch so far first
                        held = copies.take()
                        submit(held, len(held))
                    submit(x, stacked)
                progress.advance(size * count, label)
            if copies is not None and copies.held:
                held = copies.take()
                submit(held, len(held))
            if pending is not None:
                pending.result()
        except KeyboardInterrupt:
            # every fold submitted has ended before the summary is read (the
            # interrupt may land between a submit and its assignment to pending),
            # and the draws copied but not yet folded are folded too
            folder.shutdown(wait=True)
            if copies is not None and copies.held:
                held = copies.take()
                _fold(reducer, held, len(held))
            raise Interrupted(reducer.summary() if reducer is not None else None, dtype, device,
                              [check.result() for check in observers] if reducer is not None else []) from None
    return RowDraws(reducer.summary(), dtype, device, [check.result() for check in observers])


class HostBatches:
    """Consecutive host draws of one row copied into a ``(K, *shape)`` batch,
    so that the fold thread folds K draws per call (see the module's
    docstring).  Two buffers take turns: one fills while the other is folded;
    the caller waits for a batch's fold before the batch after next begins."""

    def __init__(self, draws: int, shape: tuple[int, ...], dtype: np.dtype):
        self._buffers = [np.empty((draws, *shape), dtype=dtype) for _ in range(2)]
        self._turn = 0
        #: Draws copied into the current buffer and not yet handed out.
        self.held = 0

    @classmethod
    def for_row(cls, reducer, sample, size: int) -> HostBatches | None:
        """Batches for a row whose draws look like ``sample`` (``size`` values
        each): only for a reducer that folds host arrays
        (``reducer.copy_batches``) and draws small enough that a batch holds
        at least two; else None."""
        draws = BATCH_VALUES // max(1, size)
        if not getattr(reducer, "copy_batches", False) or draws < 2:
            return None
        return cls(draws, tuple(sample.shape), as_host_array(sample).dtype)

    def host_draw(self, x) -> np.ndarray | None:
        """``x`` as a flat host array when it is a draw of the batch's shape
        and dtype, else None (fold it alone)."""
        host = as_host_array(x)
        buffer = self._buffers[self._turn]
        return host if host.dtype == buffer.dtype and host.size * len(buffer) == buffer.size else None

    def add(self, host: np.ndarray) -> np.ndarray | None:
        """Copy a draw in (from :meth:`host_draw`); the batch when this draw
        filled it, else None."""
        buffer = self._buffers[self._turn]
        np.copyto(buffer[self.held].reshape(-1), host)
        self.held += 1
        return self.take() if self.held == len(buffer) else None

    def take(self) -> np.ndarray:
        """The draws held so far, as a batch; the other buffer fills next."""
        batch = self._buffers[self._turn][: self.held]
        self._turn, self.held = 1 - self._turn, 0
        return batch


def _fold(reducer, x, draws: int | None) -> None:
    """One draw (``draws`` None), or a batch of ``draws`` draws stacked on the leading axis."""
    if draws is None:
        reducer.fold(x)
    else:
        reducer.fold(x, draws=draws)


def _observe(observers, x, count: int, shape: tuple[int, ...]) -> None:
    """The per-draw checks see a draw or batch, as ``(count, *shape)`` on the host."""
    host = host_batch(x, count, shape)
    for check in observers:
        check.observe(host, count)
