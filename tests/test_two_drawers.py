"""Rows drawn on two threads (Plan.drawer): each thread makes every other draw
and folds it in turn, so the summary is the one a single drawing thread gives,
bit for bit; Ctrl-C keeps what was folded; an error in a draw is the row's."""

from __future__ import annotations

import dataclasses
import math
import signal
import threading
import time

import numpy as np
import pytest

from initcheck import frameworks as registry
from initcheck import sampling
from initcheck.frameworks.base import Plan
from initcheck.laws import Normal
from initcheck.layers import Layer
from initcheck.schemes import InitSpec

SHAPE = (64, 50)


def sample(plan, samples, seed=0):
    return sampling.sample_row(plan, samples, seed, sampling.Progress(samples, False), "test")


def same_summary(a, b) -> bool:
    return (a.count == b.count and a.minimum == b.minimum and a.maximum == b.maximum
            and np.array_equal(a.sums, b.sums) and np.array_equal(a.hist, b.hist)
            and np.array_equal(a.pairs, b.pairs) and a.structure.to_dict() == b.structure.to_dict())


class Drawers:
    """A NumPy plan with a drawer: draws depend on the seed alone; records
    which threads drew and which seeds they drew."""

    def __init__(self, fail_at: int | None = None, error: BaseException | None = None):
        self.threads, self.seeds = set(), []
        self.lock = threading.Lock()
        self.fail_at, self.error = fail_at, error
        size = math.prod(SHAPE)

        def drawer():
            def draw(seed):
                with self.lock:
                    self.threads.add(threading.get_ident())
                    self.seeds.append(seed)
                    calls = len(self.seeds)
                if self.fail_at is not None and calls == self.fail_at:
                    raise self.error
                return np.random.default_rng(seed).standard_normal(size).reshape(SHAPE)

            return draw

        self.plan = Plan("synthetic", "drawers", Normal(0.0, 1.0), SHAPE, "cpu", "float64", drawer(), drawer=drawer)


def test_two_drawing_threads_give_the_one_threads_summary_bit_for_bit():
    drawers = Drawers()
    samples = 41 * math.prod(SHAPE)  # an odd number of draws: the first thread makes one more
    two = sample(drawers.plan, samples, seed=3)
    one = sample(dataclasses.replace(drawers.plan, drawer=None), samples, seed=3)
    assert len(drawers.threads) == 3  # the two drawing threads, then the main thread alone
    assert same_summary(two.summary, one.summary)
    assert two.summary.count == samples
    assert sorted(drawers.seeds[:41]) == sorted(drawers.seeds[41:])  # the same 41 draws both times


def test_a_pytorch_row_on_two_threads_is_the_one_threads_row():
    pytest.importorskip("torch")
    # (256, 300): too large to batch (sampling.MIN_BATCH_DRAWS), so drawn one call a draw
    plan = registry.load("torch").plan(InitSpec("xavier", "normal"), Layer.from_shape((256, 300), "torch"), "cpu",
                                       "float32")
    assert plan.drawer is not None and sampling.batch_size(plan) == 1
    samples = 9 * 256 * 300
    two = sample(plan, samples, seed=5)
    one = sample(dataclasses.replace(plan, drawer=None), samples, seed=5)
    assert same_summary(two.summary, one.summary)
    assert tuple(two[1:]) == ("float32", "cpu")


def test_ctrl_c_in_a_draw_keeps_the_draws_folded_before_it():
    drawers = Drawers(fail_at=7, error=KeyboardInterrupt())
    size = math.prod(SHAPE)
    with pytest.raises(sampling.Interrupted) as stop:
        sample(drawers.plan, 40 * size)
    # the 7th call is for draw 6 or 7 (neither thread runs more than one draw
    # ahead of the other's folds); only the draws before it can have been folded
    folded = stop.value.summary.count
    assert folded % size == 0 and 0 < folded <= 7 * size
    assert stop.value.dtype == "float64"


class SlowFolds:
    """A reducer whose folds take a while, and which notes how many were under
    way when its summary was read."""

    asynchronous = False

    def __init__(self, inner):
        self.inner, self.active, self.active_at_summary, self.folds = inner, 0, None, 0

    def fold(self, x, draws=None):
        self.active += 1
        self.inner.fold(x)
        time.sleep(0.01)
        self.folds += 1
        self.active -= 1

    def summary(self):
        self.active_at_summary = self.active
        return self.inner.summary()


def test_ctrl_c_while_the_main_thread_waits_ends_the_folds_first(monkeypatch):
    """A real Ctrl-C lands in the main thread, which only waits: every fold
    under way ends before the summary is read (an interrupted Thread.join may
    take a thread that still runs for ended), and no fold follows."""
    made = []
    real = sampling.reducer_for
    monkeypatch.setattr(sampling, "reducer_for", lambda *a, **k: made.append(SlowFolds(real(*a, **k))) or made[-1])
    drawers = Drawers()
    main = threading.main_thread().ident
    for delay in (0.05, 0.1, 0.15):
        made.clear()
        timer = threading.Timer(delay, signal.pthread_kill, (main, signal.SIGINT))  # as a terminal's Ctrl-C
        timer.start()
        with pytest.raises(sampling.Interrupted) as stop:
            sample(drawers.plan, 10_000 * math.prod(SHAPE))
        timer.join()
        [reducer] = made
        assert reducer.active_at_summary == 0
        assert stop.value.summary.count == reducer.folds * math.prod(SHAPE)
        folds = reducer.folds
        time.sleep(0.05)
        assert reducer.folds == folds


def test_an_error_in_a_draw_is_the_rows():
    drawers = Drawers(fail_at=4, error=ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        sample(drawers.plan, 40 * math.prod(SHAPE))


def test_a_row_of_one_draw_keeps_one_drawing_thread():
    drawers = Drawers()
    sample(drawers.plan, math.prod(SHAPE))  # one draw: nothing to share
    assert len(drawers.threads) == 1
