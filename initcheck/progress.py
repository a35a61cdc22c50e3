"""A progress bar on stderr for long runs, shown only once the work has taken a
second and only on a terminal.  rich is imported only when a bar is shown
(importing it draws from Python's global ``random``)."""

from __future__ import annotations

import time


class Progress:
    """Values done out of ``total``; ``advance`` after each draw or batch."""

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
            self.bar = _rich_bar()
            if self.bar is None:  # logs get the table, not a bar's leftovers
                self.enabled = False
                return
            self.bar.start()
            self.task = self.bar.add_task(description, total=self.total, completed=self.done)
        self.bar.update(self.task, completed=self.done, description=description)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _rich_bar():
    """A transient rich bar with a rate column in millions of values a second,
    or None when stderr is not a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed / 1e6:,.1f} M/s" if task.speed else "")

    console = Console(stderr=True)
    if not console.is_terminal:
        return None
    return RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                        TimeRemainingColumn(), console=console, transient=True)
