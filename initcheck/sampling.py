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

A plan whose draws may be made on two threads at once (``Plan.drawer``: each
call gives an independent draw function, its own generator and buffers) is
drawn by two worker threads instead, each making every other draw and folding
it itself, in turn: draw i is folded once draw i - 1 has been, so the row's
one reducer sees the draws in order and the summary is the same, bit for bit,
as with one drawing thread.  Each draw is then read on the core that made it,
where the schedule above moves every draw from one core to the other (which
costs as much as a large part of the fold on a small VM:
``benchmarks/pipelines.py``).  The main thread only waits; on Ctrl-C the folds
under way finish and no other starts.

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
import threading
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


def draw_seed(seed: int, row_key: str, index: int, bits: int = 63) -> int:
    """The seed of draw (or batch) ``index`` of the row ``row_key``.

    ``bits=63``: a 63-bit hash of (``seed``, the row, ``index``).  ``bits=32``
    (a user's function, which may hand it to ``np.random.seed`` or
    ``RandomState``, which take 32 bits only): ``mix32((base + index) mod
    2**32)`` with ``base`` a 32-bit hash of (``seed``, the row) and ``mix32`` a
    bijection of the 32-bit integers, so the first 2**32 draws of a row get
    distinct seeds (32-bit hashes of their own would coincide by the birthday
    bound: about 116 pairs among 10**6 draws)."""
    if bits == 63:
        sequence = np.random.SeedSequence([seed, zlib.crc32(row_key.encode()), index])
        return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1))
    if bits != 32:
        raise ValueError(f"bits must be 63 or 32, got {bits}")
    base = int(np.random.SeedSequence([seed, zlib.crc32(row_key.encode())]).generate_state(1, np.uint32)[0])
    return mix32((base + index) & 0xFFFFFFFF)


def mix32(x: int) -> int:
    """MurmurHash3's finalizer: a bijection of [0, 2**32) (xor-shifts and odd
    multipliers are invertible mod 2**32) that scatters neighbouring integers."""
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    return x ^ (x >> 16)


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
    if per_call == 1 and draws > 1 and plan.drawer is not None and plan.draw_checks is None:
        return _TwoDrawers(plan, draws, seed, progress, label).run()
    observers = list(plan.draw_checks()) if plan.draw_checks is not None else []
    shape = tuple(plan.shape)
    reducer = None
    pending = None
    dtype, device = plan.dtype, plan.device
    with ThreadPoolExecutor(max_workers=1) as folder:
        try:
            for index, first in enumerate(range(0, draws, per_call)):
                index_seed = draw_seed(seed, plan.key, index, plan.seed_bits)
                if per_call == 1:
                    count, x = 1, plan.draw(index_seed)
                else:
                    count = min(per_call, draws - first)
                    x = plan.draw_batch(index_seed, count)
                if reducer is None:
                    reducer, dtype, device = _first_reducer(plan, x, draws * size)
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


def _first_reducer(plan: Plan, x, values: int):
    """The row's reducer, made for its first draw x, and the draws' dtype and
    device (a custom function's plan learns them from x)."""
    dtype, device = _array_info(x) if plan.dtype == "?" else (plan.dtype, plan.device)
    return reducer_for(x, plan.law, expected_values=values), dtype, device


class _TwoDrawers:
    """A row drawn by two threads, each making every other draw with a draw
    function of its own (``plan.drawer()``) and folding it in its turn (see
    the module docstring)."""

    def __init__(self, plan: Plan, draws: int, seed: int, progress: Progress, label: str):
        self.plan, self.draws, self.seed, self.progress, self.label = plan, draws, seed, progress, label
        self.size = math.prod(plan.shape)
        self.reducer = None
        self.dtype, self.device = plan.dtype, plan.device
        self.turn = 0  # the next draw to fold
        self.stop = False
        self.error: BaseException | None = None
        self.changed = threading.Condition()

    def run(self) -> RowDraws:
        # each worker sets its event as it ends; the main thread waits on the
        # events, not on Thread.join, which a Ctrl-C can leave believing a
        # thread that still folds has ended
        ended = [threading.Event() for _ in (0, 1)]
        for first in (0, 1):
            threading.Thread(target=self._work, args=(first, ended[first]), daemon=True).start()
        try:
            for event in ended:
                event.wait()
        except KeyboardInterrupt:
            self._halt()
            for event in ended:
                event.wait()
            raise self._interrupted() from None
        if isinstance(self.error, KeyboardInterrupt):
            raise self._interrupted() from None
        if self.error is not None:
            raise self.error
        return RowDraws(self.reducer.summary(), self.dtype, self.device)

    def _work(self, first: int, ended: threading.Event) -> None:
        try:
            draw = self.plan.drawer()
            for index in range(first, self.draws, 2):
                if self.stop:
                    return
                x = draw(draw_seed(self.seed, self.plan.key, index, self.plan.seed_bits))
                with self.changed:
                    self.changed.wait_for(lambda: self.turn == index or self.stop)
                    if self.stop:
                        return
                if self.reducer is None:
                    self.reducer, self.dtype, self.device = _first_reducer(self.plan, x, self.draws * self.size)
                self.reducer.fold(x)
                self.progress.advance(self.size, self.label)
                with self.changed:
                    self.turn += 1
                    self.changed.notify_all()
        except BaseException as error:  # noqa: BLE001 - handed to the main thread, which raises it
            if self.error is None:
                self.error = error
            self._halt()
        finally:
            ended.set()

    def _halt(self) -> None:
        with self.changed:
            self.stop = True
            self.changed.notify_all()

    def _interrupted(self) -> Interrupted:
        return Interrupted(self.reducer.summary() if self.reducer is not None else None, self.dtype, self.device)


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
