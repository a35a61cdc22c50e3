"""The fold kernel in use: the C extension where it was built, else NumPy.

``initcheck._kernels`` (C, ``initcheck/_kernels.c``) is an accelerator, not a
requirement: an install without a C compiler has only
:mod:`initcheck._kernels_numpy`, which gives the same histogram cells, counts
and extremes bit for bit and the same power and pair sums to rounding,
5 to 7 times slower.  Every reducer calls the functions through this module:

* ``fold(x, ref, lo, segment_scale, cum, slope, sums, extremes, counts, hist)``
* ``pairs(x, previous, row_length, ref, out, draw_length=0)``
* ``bit_patterns(x, counts)``
* ``positions(x, cols, ref, row_s1, row_s2, col_s1, col_s2)`` (per-row and
  per-column sums of :mod:`initcheck.structure`)
* ``grams(x, k, threshold, start, pos, key, single, hash)`` (the selected
  k-grams of the copies check)
* ``sort_uint64(x)`` (sorts a uint64 array in place: the copies check's
  grouping of its grams)

and :data:`PATH` says which implementation they are (``initcheck env`` shows it).

The environment variable ``INITCHECK_KERNEL`` chooses, when the process
imports initcheck:

* unset or ``auto``: the C kernel when it was built, else NumPy;
* ``numpy``: the NumPy path even where the C kernel was built (tests, or to
  rule the kernel out when a result looks wrong);
* ``c``: the C kernel; where it was not built, initcheck's commands and API
  stop with a one-line error (:func:`check_choice`).

Another value is that same one-line error; importing never fails on it.
"""

from __future__ import annotations

import os

__all__ = ["NAME", "PATH", "bit_patterns", "check_choice", "fold", "grams", "pairs", "positions", "sort_uint64"]

_CHOICES = ("auto", "c", "numpy")
_choice = os.environ.get("INITCHECK_KERNEL", "").strip().lower() or "auto"
#: Why INITCHECK_KERNEL cannot be honoured, or None; :func:`check_choice` raises it
#: where a one-line error can be given (importing never fails on it).
CHOICE_ERROR = None
if _choice not in _CHOICES:
    CHOICE_ERROR = f"INITCHECK_KERNEL must be one of {', '.join(_CHOICES)}, not {_choice!r}"
    _choice = "auto"

_implementation = None
if _choice != "numpy":
    try:
        from initcheck import _kernels as _implementation
    except ImportError:
        if _choice == "c":
            CHOICE_ERROR = "INITCHECK_KERNEL=c, but the C kernel initcheck._kernels was not built"

if _implementation is not None:
    #: "c" or "numpy"
    NAME = "c"
    _clones = getattr(_implementation, "clones", "")
    _level = getattr(_implementation, "cell_level", lambda: 0)()
    _cells = ("histogram cells in baseline code", "histogram cells in AVX2", "histogram cells in AVX-512")[_level]
    #: What ``initcheck env`` prints on its fold-path line.
    PATH = f"C kernel (initcheck._kernels, {_clones or 'one portable build, no run-time CPU dispatch'}; {_cells})"
else:
    from initcheck import _kernels_numpy as _implementation

    NAME = "numpy"
    PATH = "NumPy (INITCHECK_KERNEL=numpy)" if _choice == "numpy" else "NumPy (no C kernel built)"

fold = _implementation.fold
pairs = _implementation.pairs
bit_patterns = _implementation.bit_patterns
positions = _implementation.positions
grams = _implementation.grams
sort_uint64 = _implementation.sort_uint64


def check_choice() -> None:
    """InputError when INITCHECK_KERNEL asks for what cannot be had (an unknown
    value, or ``c`` without the C kernel); until then the kernel in use is the
    one ``auto`` picks."""
    if CHOICE_ERROR:
        from initcheck.errors import InputError

        raise InputError(CHOICE_ERROR)
