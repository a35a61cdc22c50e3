"""Execution: draw a row's tensors and fold them, nothing else.

For each row the sampler draws tensors of the layer's real shape with the
framework's real initializer until it has at least ``samples`` values.  Draw i of
a row uses the seed derived from (``seed``, the row's key, i), so the same
command gives the same numbers, and a row's numbers do not depend on which other
rows run beside it.

Drawing and folding overlap: while a worker thread folds draw i (the C kernel and torch
release the GIL), the main thread asks the framework for draw i+1.  Only one draw
is ever waiting, so memory stays O(draw + bins) whatever N is.

What the numbers mean is decided elsewhere (:mod:`initcheck.policy`).
"""

from __future__ import annotations

import math
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.text import Text

from initcheck.frameworks.base import Plan
from initcheck.reducers import reducer_for
from initcheck.summary import Summary


def draw_seed(seed: int, row_key: str, index: int) -> int:
    """A 63-bit seed for draw ``index`` of the row ``row_key``."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(row_key.encode()), index])
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _array_info(x) -> tuple[str, str]:
    """(dtype, device) of a draw whose plan could not know them (custom functions)."""
    dtype = getattr(x.dtype, "name", None) or str(x.dtype).removeprefix("torch.")
    device = str(getattr(x, "device", "cpu"))
    return dtype, ("cpu" if "cpu" in device.lower() else device)


class _RateColumn(ProgressColumn):
    """Samples per second, in millions."""

    def render(self, task) -> Text:
        return Text(f"{task.speed / 1e6:,.1f} M/s" if task.speed else "")


class Progress:
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
            self.bar = RichProgress(
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


def draw_count(plan: Plan, samples: int) -> int:
    wanted = samples if plan.samples is None else min(samples, plan.samples)
    return max(1, math.ceil(wanted / math.prod(plan.shape)))


class Interrupted(Exception):
    """Ctrl-C during a row; carries the summary of what was folded so far, and
    the dtype and device of the draws (None when nothing was drawn)."""

    def __init__(self, summary: Summary | None, dtype: str | None = None, device: str | None = None):
        super().__init__("interrupted")
        self.summary, self.dtype, self.device = summary, dtype, device


def sample_row(plan: Plan, samples: int, seed: int, progress: Progress, label: str) -> tuple[Summary, str, str]:
    """Draw and fold until at least ``samples`` values; returns the row's
    summary and the dtype and device of its draws (a custom function's plan
    learns them from its first draw; the plan itself is never changed, so the
    same plan run twice gives the same numbers).

    On Ctrl-C the draw being folded is finished and :class:`Interrupted` carries
    the summary so far."""
    size = math.prod(plan.shape)
    draws = draw_count(plan, samples)
    reducer = None
    pending = None
    dtype, device = plan.dtype, plan.device
    with ThreadPoolExecutor(max_workers=1) as folder:
        try:
            for index in range(draws):
                x = plan.draw(draw_seed(seed, plan.key, index))
                if reducer is None:
                    if plan.dtype == "?":
                        dtype, device = _array_info(x)
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
            raise Interrupted(reducer.summary() if reducer is not None else None, dtype, device) from None
    return reducer.summary(), dtype, device
