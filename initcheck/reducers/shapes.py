"""Shape facts every reducer shares."""

from __future__ import annotations

import math

import numpy as np


def lag_of_rows(shape) -> int:
    """Values per slice along the first axis of a draw of this shape (0 for 0-d
    or 1-d draws: no rows); the lag between vertically neighbouring values."""
    shape = tuple(shape)
    if len(shape) < 2 or shape[0] == 0:
        return 0
    return math.prod(shape[1:])


def as_host_array(x) -> np.ndarray:
    """A flat NumPy view of a host array (no copy where the layout allows)."""
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu().numpy()
    return np.ravel(np.asarray(x))


def batch_shape(shape, draws: int | None) -> tuple[int, tuple]:
    """(K, draw shape) of what a reducer's ``fold(x, draws)`` was given.

    ``draws=None`` (fold's default): x is one draw, of its own shape.  An int K:
    x stacks K draws along its first axis, shape ``(K, *draw_shape)`` (K = 1
    included: a batch of one).  ``draws=1`` with a first axis other than 1 is
    taken as one plain draw, so callers may pass ``draws=1`` either way."""
    shape = tuple(shape)
    if draws is None:
        return 1, shape
    draws = int(draws)
    if not shape or shape[0] != draws:
        if draws == 1:
            return 1, shape
        raise ValueError(f"fold: draws={draws} needs an array of shape ({draws}, ...), not {shape}")
    return draws, shape[1:]


#: The consecutive-draws pairs (row 2 of a summary's lag-1 pairs) take the
#: first this many positions of each draw, so no reducer keeps more than this
#: many values of the previous draw (4 MiB as float32); draws this small or
#: smaller pair in full, batched draws always.
PAIR_PREFIX = 1 << 20
