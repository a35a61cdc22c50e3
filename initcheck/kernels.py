"""The fold kernel in use: the C extension where it was built, else NumPy.

``initcheck._kernels`` (C, ``initcheck/_kernels.c``) is an accelerator, not a
requirement: an install without a C compiler has only
:mod:`initcheck._kernels_numpy`, which gives the same histogram cells, counts
and extremes bit for bit and the same power and pair sums to rounding, about
7 times slower.  Every reducer calls the three functions through this module:

* ``fold(x, ref, lo, segment_scale, cum, slope, sums, extremes, counts, hist)``
* ``pairs(x, previous, row_length, ref, out, draw_length=0)``
* ``bit_patterns(x, counts)``

and :data:`PATH` says which implementation they are (``initcheck env`` shows it).

The environment variable ``INITCHECK_KERNEL`` chooses, when the process
imports initcheck:

* unset or ``auto``: the C kernel when it was built, else NumPy;
* ``numpy``: the NumPy path even where the C kernel was built (tests, or to
  rule the kernel out when a result looks wrong);
* ``c``: the C kernel, and an ImportError where it was not built.
"""

from __future__ import annotations

import os

__all__ = ["NAME", "PATH", "bit_patterns", "fold", "pairs"]

_CHOICES = ("auto", "c", "numpy")
_choice = os.environ.get("INITCHECK_KERNEL", "").strip().lower() or "auto"
if _choice not in _CHOICES:
    raise ValueError(f"INITCHECK_KERNEL must be one of {', '.join(_CHOICES)}, not {_choice!r}")

_implementation = None
if _choice != "numpy":
    try:
        from initcheck import _kernels as _implementation
    except ImportError:
        if _choice == "c":
            raise ImportError("INITCHECK_KERNEL=c, but the C kernel initcheck._kernels was not built") from None

if _implementation is not None:
    #: "c" or "numpy"
    NAME = "c"
    _clones = getattr(_implementation, "clones", "")
    #: What ``initcheck env`` prints on its fold-path line.
    PATH = f"C kernel (initcheck._kernels, {_clones or 'one portable build, no run-time CPU dispatch'})"
else:
    from initcheck import _kernels_numpy as _implementation

    NAME = "numpy"
    PATH = "NumPy (INITCHECK_KERNEL=numpy)" if _choice == "numpy" else "NumPy (no C kernel built)"

fold = _implementation.fold
pairs = _implementation.pairs
bit_patterns = _implementation.bit_patterns
