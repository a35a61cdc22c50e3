"""Will a row's draws fit in memory?  Asked before anything is allocated.

A row holds two whole draws of its layer at once: the draw being folded and
the next one the framework is writing.  Nothing else is a copy of a draw: the
consecutive-draw pairs keep the previous draw's first 2^20 values
(``reducers.shapes.PAIR_PREFIX``), 16-bit and integer draws are seen as
float32/float64 a part at a time, and the structure statistics are bounded
(:mod:`initcheck.structure`).  A layer whose draws cannot fit
is refused with one line (an :class:`~initcheck.errors.InputError`), instead
of a framework's out-of-memory traceback or abort minutes later.
"""

from __future__ import annotations

import math
import os

from initcheck.errors import InputError

#: Whole draws a row holds at once on the host.
DRAWS_HELD = 2
#: Bytes per value of each dtype.
ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux: MemAvailable), or
    None where the system does not say."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def human_bytes(count: float) -> str:
    """1.5e10 -> '15 GB' (powers of 1000, as memory is sold)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB"):
        if count < 1000 or unit == "EB":
            return f"{count:.3g} {unit}"
        count /= 1000
    raise AssertionError


def check_fits(shape: tuple[int, ...], dtype: str, device: str = "cpu", available: int | None = None) -> None:
    """InputError unless :data:`DRAWS_HELD` draws of ``shape`` in ``dtype`` fit
    in the memory available now (host memory; a draw on an accelerator is
    left to its framework, which knows its device)."""
    if device != "cpu":
        return
    values = math.prod(shape)
    per_draw = values * ITEMSIZE.get(dtype, 8)
    available = available_memory() if available is None else available
    if available is None or per_draw * DRAWS_HELD <= available:
        return
    dims = " x ".join(map(str, shape))
    raise InputError(
        f"a {dims} {dtype} weight needs {human_bytes(per_draw)} a draw ({human_bytes(per_draw * DRAWS_HELD)} for the "
        f"{DRAWS_HELD} draws a row holds); this machine has {human_bytes(available)} available"
    )
