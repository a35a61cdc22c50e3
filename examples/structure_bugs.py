"""Initializers whose pooled values follow the law while the tensor is wrong,
for `initcheck custom` and its structure checks (positions, copies):

    initcheck custom examples/structure_bugs.py:tiled_heads --expect xavier --dist normal --shape 768,256
    initcheck custom examples/structure_bugs.py:fused_scaled --expect xavier --dist normal --shape 768,256

FUNC(shape, seed) returns an array of exactly `shape` (PyTorch layout:
(fan_out, fan_in)).
"""

import numpy as np

HEAD_ROWS = 64


def _xavier_normal(shape, seed):
    fan_out, fan_in = shape
    std = np.sqrt(2.0 / (fan_in + fan_out))
    return np.random.default_rng(seed).normal(0.0, std, shape).astype(np.float32)


def tiled_heads(shape, seed):
    """Every attention head a copy of the first: the first HEAD_ROWS rows tiled down."""
    w = _xavier_normal(shape, seed)
    return np.ascontiguousarray(np.tile(w[:HEAD_ROWS], (shape[0] // HEAD_ROWS, 1)))


def fused_scaled(shape, seed):
    """A fused (3d, d) query/key/value weight whose blocks were scaled apart:
    the query block 5% too wide, the key block 5% too narrow."""
    w = _xavier_normal(shape, seed)
    block = shape[0] // 3
    w[:block] *= 1.05
    w[block : 2 * block] *= 0.95
    return w
