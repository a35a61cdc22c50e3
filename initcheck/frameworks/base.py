"""What every framework adapter provides, and what it hands the runner.

An adapter turns an :class:`~initcheck.schemes.InitSpec` and a
:class:`~initcheck.layers.Layer` into a :class:`Plan`: the API it will call, the
law that API documents (not always the paper's), the tensor shape in the
framework's own layout, a ``draw(seed)`` that calls the real initializer once,
and, where the framework can, a ``draw_batch(seed, count)`` that makes ``count``
independent draws in one call (see :class:`Plan`).
When the framework has no such initializer it returns a :class:`Skip` that says
so; it never substitutes a look-alike.
"""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

from initcheck.errors import InputError
from initcheck.laws import Law

DTYPES = ("float32", "float64", "float16", "bfloat16")
_DEVICE = re.compile(r"^(cpu|cuda|gpu)(?::(\d+))?$")


def parse_device(text: str) -> str:
    """``cpu``, ``cuda``, ``cuda:N``, ``gpu`` or ``gpu:N`` -> ``cpu`` or ``cuda:N``."""
    match = _DEVICE.match(text.strip().lower())
    if not match:
        raise InputError(f"unknown device {text!r}; expected cpu, cuda, cuda:N, gpu or gpu:N")
    kind, index = match.groups()
    if kind == "cpu":
        if index not in (None, "0"):
            raise InputError(f"unknown device {text!r}; there is one cpu device")
        return "cpu"
    return f"cuda:{index or 0}"


@contextmanager
def native_stderr_silenced():
    """Point file descriptor 2 at /dev/null for a while.

    TensorFlow's C++ logging writes straight to the descriptor at import time,
    before any Python log setting can reach it.  Exceptions still propagate.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@dataclass
class Plan:
    """One row, ready to sample.

    ``draw(seed)`` calls the real initializer once and returns the draw; the
    array it returns may be reused by the draw after next (the runner has
    folded it by then), never by the next one.

    ``draw_batch(seed, count)``, when not None, returns ``count`` independent
    draws stacked along a new leading axis, shape ``(count, *shape)``, all
    derived from the one ``seed``.  Each of them must still be the framework's
    real initializer applied to the real per-draw ``shape`` (vectorized over the
    batch, e.g. ``torch.func.vmap`` or ``jax.vmap``), so that fans and
    everything else the initializer reads off the shape are the layer's own;
    never one big tensor cut into draws.  Its arrays may be reused as ``draw``'s.
    The sampler uses it for small draws (:mod:`initcheck.sampling`).

    ``drawer()``, when not None, returns a new draw function with state of its
    own (a generator, buffers): for every seed it gives the values ``draw``
    gives, and two of them may be called from two threads at once; the array
    each returns may be reused by its own next call.  The sampler then draws
    on two threads (:mod:`initcheck.sampling`).
    """

    framework: str
    api: str
    law: Law
    shape: tuple[int, ...]
    device: str
    dtype: str
    draw: Callable[[int], Any]
    #: Values to draw, when not the command's --samples (a constant bias
    #: row needs only a few).
    samples: int | None = None
    #: ``draw_batch(seed, count)``: ``count`` draws in one call, or None.
    draw_batch: Callable[[int, int], Any] | None = None
    #: A factory of fresh checks of each whole draw (a structured law's, see
    #: :mod:`initcheck.draw_checks`), called once per run of the row; or None.
    draw_checks: Callable[[], list] | None = None
    #: ``drawer()``: a new, independent draw function, or None (see above).
    drawer: Callable[[], Callable[[int], Any]] | None = None
    #: Bits of the seeds ``draw`` and ``draw_batch`` receive: 63, or 32 for a
    #: user's function (see :func:`initcheck.sampling.draw_seed`).
    seed_bits: int = 63

    @property
    def key(self) -> str:
        """Stable identity of the row; seeds derive from it, so adding or removing
        other rows never changes this row's numbers."""
        return f"{self.framework}|{self.api}|{self.shape}|{self.dtype}|{self.device}"


@dataclass
class Skip:
    """A row that cannot run, and why."""

    framework: str
    api: str
    reason: str
    device: str = ""
    dtype: str = ""
    shape: tuple[int, ...] = ()


class Framework:
    """Interface of an adapter; see the module docstring."""

    #: Name on the command line.
    name: str = ""
    #: Name for people.
    title: str = ""
    #: The layout of its weight tensors (:data:`initcheck.layers.WEIGHT_LAYOUTS`).
    layout: str = "keras"

    def version(self) -> str | None:
        raise NotImplementedError

    def check_device(self, device: str) -> None:
        """Raise InputError when ``device`` is not there for this framework."""
        raise NotImplementedError

    def plan(self, spec, layer, device: str, dtype: str) -> Plan | Skip:
        raise NotImplementedError

    def fans(self, layer) -> tuple[int, int]:
        """(fan_in, fan_out) of the layer's weight as the framework itself computes them."""
        raise NotImplementedError

    def devices(self) -> list[str]:
        """The devices the framework sees, in its own words."""
        raise NotImplementedError

    def default_rows(self, layer, device: str, dtype: str) -> list[tuple[str, Plan | Skip]]:
        """(parameter, plan) for what the framework's own layer does when the user
        does nothing: its weight (kernel) and bias, sampled from a real layer."""
        return []

