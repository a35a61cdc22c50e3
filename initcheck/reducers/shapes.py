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
