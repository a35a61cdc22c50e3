"""Two hand-written Xavier-uniform initializers for `initcheck custom`.

    initcheck custom examples/my_init.py:xavier_uniform --expect xavier --dist uniform --shape 256,784
    initcheck custom examples/my_init.py:missing_sqrt3  --expect xavier --dist uniform --shape 256,784

FUNC(shape, seed) returns an array of exactly `shape` (PyTorch layout here:
(fan_out, fan_in)).  The second one has a bug that lived for years in real
code: the uniform bound sqrt(2 / (fan_in + fan_out)) without the sqrt(3).
"""

import numpy as np


def xavier_uniform(shape, seed):
    fan_out, fan_in = shape
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return np.random.default_rng(seed).uniform(-bound, bound, shape).astype(np.float32)


def missing_sqrt3(shape, seed):
    fan_out, fan_in = shape
    bound = np.sqrt(2.0 / (fan_in + fan_out))  # should be sqrt(6 / ...)
    return np.random.default_rng(seed).uniform(-bound, bound, shape).astype(np.float32)
