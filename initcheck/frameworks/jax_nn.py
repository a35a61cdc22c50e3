"""JAX adapter: ``jax.nn.initializers`` called for real, jitted once per row.

JAX documents, and draws:

* ``glorot_normal``, ``he_normal``, ``lecun_normal``: the normal truncated at two
  sigma with sigma = sqrt(variance) / 0.87962566103423978;
* ``glorot_uniform``, ``he_uniform``, ``lecun_uniform``: U(+-sqrt(3 variance));
* ``variance_scaling(scale, mode, distribution)``: ``truncated_normal``,
  ``normal`` (the plain normal, unlike Keras), ``uniform``;
* ``truncated_normal(stddev, lower, upper)``: mean 0, bounds in units of stddev,
  no correction; ``normal(stddev)``: mean 0; ``uniform(scale)``: U[0, scale).

Kernels are ``(*kernel, in, out)``.  Draw i uses ``jax.random.key(seed_i)``.
float64 needs ``jax_enable_x64``, which this adapter turns on (explicit dtypes
are unaffected).  JAX's "no GPU found" warnings are silenced.
"""

from __future__ import annotations

import logging
import math

logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)

import jax  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)

from initcheck.errors import InputError  # noqa: E402
from initcheck.frameworks import scaling  # noqa: E402
from initcheck.frameworks.base import Framework, Plan, Skip  # noqa: E402
from initcheck.laws import Constant, Normal, TruncatedNormal, Uniform  # noqa: E402
from initcheck.schemes import variance_scaling  # noqa: E402


def jax_device(device: str):
    """initcheck's ``cpu`` / ``cuda:N`` as a JAX device, or InputError."""
    if device == "cpu":
        return jax.devices("cpu")[0]
    index = int(device.split(":")[1])
    try:
        gpus = jax.devices("gpu")
    except RuntimeError:
        gpus = []
    if index >= len(gpus):
        raise InputError(f"JAX {jax.__version__} cannot use {device}: it sees {len(gpus)} GPU(s)")
    return gpus[index]


def _call_text(name: str, args: tuple = (), kwargs: dict | None = None) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in (kwargs or {}).items()]
    return f"jax.nn.initializers.{name}({', '.join(parts)})"


class Jax(Framework):
    name = "jax"
    title = "JAX"

    def version(self) -> str:
        return jax.__version__

    def check_device(self, device: str) -> None:
        jax_device(device)

    def fans(self, layer):
        from jax._src.nn.initializers import _compute_fans

        fan_in, fan_out = _compute_fans(layer.shape("keras"))
        return int(fan_in), int(fan_out)

    def devices(self):
        return [f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices()]

    def default_rows(self, layer, device, dtype):
        """Flax linen Dense / Conv: kernel lecun_normal (the truncated normal), bias zeros."""
        import importlib.util

        if importlib.util.find_spec("flax") is None:
            return [("kernel", Skip("flax", "flax.linen", "flax is not installed (pip install flax)"))]
        import flax.linen as nn
        import jax.numpy as jnp

        if layer.kernel:
            module = nn.Conv(layer.out_features, layer.kernel, padding="VALID", dtype=dtype, param_dtype=dtype)
            call = f"flax.linen.Conv({layer.out_features}, {layer.kernel})"
            example = jnp.ones((1, *layer.kernel, layer.in_features), dtype)
        else:
            module = nn.Dense(layer.out_features, dtype=dtype, param_dtype=dtype)
            call = f"flax.linen.Dense({layer.out_features})"
            example = jnp.ones((1, layer.in_features), dtype)
        target = jax_device(device)
        init = jax.jit(module.init)

        def parameter(name):
            def draw(seed: int):
                with jax.default_device(target):
                    return init(jax.random.key(seed % 2**32), example)["params"][name]

            return draw

        law = variance_scaling(1.0, "fan_in", "truncated-normal", layer.fan_in, layer.fan_out)
        kernel = Plan("flax", f"{call}.kernel", law, layer.shape("keras"), device, dtype, parameter("kernel"))
        bias = Plan("flax", f"{call}.bias", Constant(0.0), (layer.out_features,), device, dtype, parameter("bias"),
                    samples=10 * layer.out_features)
        return [("kernel", kernel), ("bias", bias)]

    def plan(self, spec, layer, device, dtype):
        shape = layer.shape("keras")
        found = _initializer(spec, layer)
        if isinstance(found, str):
            return Skip(self.name, "jax.nn.initializers", found, device, dtype, shape)
        api, initializer, law = found
        target = jax_device(device)
        # The key is made inside the jitted call: made outside, it is a dispatch
        # of its own per draw (milliseconds on a GPU, more than the sampling).
        sample = jax.jit(lambda seed: initializer(jax.random.key(seed), shape, dtype))

        def draw(seed: int):
            with jax.default_device(target):
                return sample(np.uint32(seed % 2**32))

        return Plan(self.name, api, law, shape, device, dtype, draw)


def _initializer(spec, layer):
    """(api text, initializer, law) or the reason to skip."""
    init = jax.nn.initializers
    if spec.uses_fans:
        call = scaling.resolve(spec, normal_means="normal")
        law = call.law(layer.fan_in, layer.fan_out)
        if call.named:
            name = f"{call.named}_{'uniform' if call.uniform else 'normal'}"
            return _call_text(name), getattr(init, name)(), law
        args = (call.scale, call.mode, call.distribution)
        return _call_text("variance_scaling", args), init.variance_scaling(*args), law
    if spec.scheme == "trunc-normal":
        if spec.mean != 0.0:
            return f"jax.nn.initializers.truncated_normal has mean 0; asked for mean {spec.mean:g}"
        kwargs = {"stddev": spec.std, "lower": spec.low / spec.std, "upper": spec.high / spec.std}
        law = TruncatedNormal(0.0, spec.std, spec.low, spec.high)
        return _call_text("truncated_normal", (), kwargs), init.truncated_normal(**kwargs), law
    if spec.scheme == "normal":
        if spec.mean != 0.0:
            return f"jax.nn.initializers.normal has mean 0; asked for mean {spec.mean:g}"
        return _call_text("normal", (spec.std,)), init.normal(spec.std), Normal(0.0, spec.std)
    if spec.scheme == "uniform":
        if spec.low != 0.0 or not math.isfinite(spec.high):
            return f"jax.nn.initializers.uniform draws from [0, scale); asked for [{spec.low:g}, {spec.high:g})"
        return _call_text("uniform", (spec.high,)), init.uniform(spec.high), Uniform(0.0, spec.high)
    raise AssertionError(spec.scheme)


class JaxReducer:
    """Streaming statistics of JAX arrays, computed by XLA on their device.

    The same quantities as :class:`~initcheck.reducers.HostReducer` (power sums
    about the law's mean, extremes, counts, the grid's histogram, lag-1 pair
    sums), in float64 on the device, folded a batch of draws at a time by one
    jitted function: draws are stacked until a batch holds about
    ``batch_values`` values, so a 200,000-value draw costs one list append, not
    a dozen dispatches.  Non-finite values are masked as in the torch reducer:
    replaced by the reference point (nothing added to the power sums) and taken
    back out of the histogram cell it falls in.  Only the summary comes back to
    the host, at the end.  JAX GPU rows need no other framework.

    Compiles are what a JAX row waits for, so there is one per draw shape and
    dtype, shared by every row: the law and its grid are arguments of the fold,
    not constants, and a shorter batch (the row's last) is padded with rows of
    zeros that a count of valid draws masks out, so it reuses the same
    compiled fold.
    """

    #: ``fold`` only queues device work.
    asynchronous = True
    #: Values per batch (a fold's float64 temporaries take about 100 bytes a value).
    batch_values = 1 << 23

    def __init__(self, law, grid=None):
        from initcheck.grid import Grid
        from initcheck.summary import Summary

        grid = grid or Grid.for_law(law)
        self._summary = Summary(ref=law.mean, grid=grid)
        self._ref_cell = int(grid.cell_of(law.mean))
        self._pending: list = []
        self._state = None
        self._grid_arrays = None

    def fold(self, x) -> None:
        if self._pending and (self._pending[0].shape != x.shape or self._pending[0].dtype != x.dtype):
            self._flush()
        self._pending.append(x)
        if len(self._pending) >= self._draws_per_batch(x.size):
            self._flush()

    def _draws_per_batch(self, size: int) -> int:
        return max(1, -(-self.batch_values // max(size, 1)))

    def _flush(self) -> None:
        if not self._pending:
            return
        import jax.numpy as jnp

        from initcheck.reducers import lag_of_rows

        draws, self._pending = self._pending, []
        first = draws[0]
        capacity = self._draws_per_batch(first.size)
        batch = jnp.stack(draws).reshape(len(draws), -1)
        if len(draws) < capacity:
            batch = jnp.pad(batch, ((0, capacity - len(draws)), (0, 0)))  # rows of zeros, on the batch's device
        n = batch.shape[1]
        if self._state is None or self._state["previous"].shape[0] != n:
            self._state = self._fresh_state(n, batch)
        if self._grid_arrays is None:
            self._grid_arrays = self._arguments(batch)
        fold = _batch_fold(n, lag_of_rows(first.shape), self._summary.grid.segments, self._summary.grid.cells)
        self._state = fold(self._state, batch, len(draws), *self._grid_arrays)  # an int: placed with the batch

    def _arguments(self, like) -> tuple:
        """The law and grid as device arrays: ref, ref_cell, lo, segment_scale, cum, slope."""
        import jax.numpy as jnp

        grid = self._summary.grid
        with jax.default_device(next(iter(like.devices()))):
            return (jnp.float64(self._summary.ref), jnp.int32(self._ref_cell), jnp.float64(grid.lo),
                    jnp.float64(grid.segment_scale), jnp.asarray(grid.cum, jnp.float64),
                    jnp.asarray(grid.slope, jnp.float64))

    def _fresh_state(self, n: int, like) -> dict:
        """Zero accumulators on ``like``'s device, keeping those of an earlier
        draw shape (only the previous draw is dropped when the shape changes)."""
        import jax.numpy as jnp

        device = next(iter(like.devices()))
        old = self._state
        with jax.default_device(device):
            state = {
                "sums": jnp.zeros(4, jnp.float64),
                "extremes": jnp.array([math.inf, -math.inf], jnp.float64),
                "counts": jnp.zeros(4, jnp.int64),
                "hist": jnp.zeros(self._summary.grid.cells + 2, jnp.int64),
                "pairs": jnp.zeros((3, 4), jnp.float64),
                "previous": jnp.zeros(n, jnp.float64),
                "previous_clean": jnp.zeros((), bool),
            }
        if old is not None:
            state.update({k: old[k] for k in ("sums", "extremes", "counts", "hist", "pairs")})
        return state

    def summary(self):
        self._flush()
        s = self._summary
        if self._state is None:
            return s
        state = {k: np.asarray(v) for k, v in self._state.items()}
        s.count, s.nan, s.posinf, s.neginf = (int(v) for v in state["counts"])
        s.sums = state["sums"].astype(np.float64)
        s.minimum, s.maximum = (float(v) for v in state["extremes"])
        s.hist = state["hist"].astype(np.int64)
        s.pairs = state["pairs"].astype(np.float64)
        return s


_folds: dict = {}


def _batch_fold(n: int, row_length: int, segments: int, cells: int):
    """The jitted fold of a (K, n) batch whose first ``valid`` rows are draws
    (the rest padding) into the state; one per draw shape, shared by every row
    and law, compiled once per K and dtype (see HostReducer for the
    quantities; the cell rule is the grid's, in float64)."""
    key = (n, row_length, segments, cells)
    if key not in _folds:
        _folds[key] = jax.jit(_fold_function(n, row_length, segments, cells))
    return _folds[key]


def _fold_function(n: int, row_length: int, segments: int, cells: int):
    import jax.numpy as jnp

    def pair_sums(a, b, clean):
        per_draw = jnp.stack([(a * b).sum(1), a.sum(1), b.sum(1), jnp.full(a.shape[0], float(a.shape[1]))], 1)
        return jnp.where(clean[:, None], per_draw, 0.0).sum(0)

    def fold(state, x, valid, ref, ref_cell, lo, segment_scale, cum, slope):
        real = jnp.arange(x.shape[0]) < valid  # the draws; the rest is padding
        finite = jnp.isfinite(x)  # padding is zeros: finite, and no NaN or Inf to count
        nonfinite_per_draw = n - finite.sum(1)
        nonfinite = nonfinite_per_draw.sum()
        nan, posinf = jnp.isnan(x).sum(), (x == jnp.inf).sum()
        counts = jnp.stack([valid.astype(jnp.int64) * n - nonfinite, nan, posinf, nonfinite - nan - posinf])
        kept = finite & real[:, None]
        values = jnp.where(kept, x.astype(jnp.float64), ref)
        d = values - ref
        d2 = d * d
        sums = jnp.stack([d.sum(), d2.sum(), (d2 * d).sum(), (d2 * d2).sum()])
        low = jnp.where(kept, values, jnp.inf).min()
        high = jnp.where(kept, values, -jnp.inf).max()
        t = (values - lo) * segment_scale
        j = jnp.clip(jnp.floor(t), 0, segments - 1)
        index = j.astype(jnp.int32)
        inner = jnp.minimum(jnp.floor(cum[index] + (t - j) * slope[index]), cells - 1) + 1
        cell = jnp.where(t < 0, 0, jnp.where(t >= segments, cells + 1, inner)).astype(jnp.int32)
        hist = jnp.bincount(cell.ravel(), length=cells + 2).astype(jnp.int64)
        # masked values (non-finite, padding) all sit at ref: take them back out
        hist = hist.at[ref_cell].add(-(x.size - kept.sum()))
        clean = (nonfinite_per_draw == 0) & real
        zero = jnp.zeros(4, jnp.float64)
        chain = jnp.concatenate([state["previous"][None], d])
        chain_clean = jnp.concatenate([state["previous_clean"][None], clean])
        pairs = jnp.stack([
            pair_sums(d[:, :-1], d[:, 1:], clean) if n > 1 else zero,
            pair_sums(d[:, :-row_length], d[:, row_length:], clean) if 0 < row_length < n else zero,
            pair_sums(chain[:-1], chain[1:], chain_clean[:-1] & chain_clean[1:]),
        ])
        last = valid - 1
        return {
            "sums": state["sums"] + sums,
            "extremes": jnp.stack([jnp.minimum(state["extremes"][0], low), jnp.maximum(state["extremes"][1], high)]),
            "counts": state["counts"] + counts,
            "hist": state["hist"] + hist,
            "pairs": state["pairs"] + pairs,
            "previous": d[last],
            "previous_clean": clean[last],
        }

    return fold
