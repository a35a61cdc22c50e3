"""JAX adapter: ``jax.nn.initializers`` called for real, jitted once per row.

JAX documents, and draws:

* ``glorot_normal``, ``he_normal``, ``lecun_normal``: the normal truncated at two
  sigma with sigma = sqrt(variance) / 0.87962566103423978;
* ``glorot_uniform``, ``he_uniform``, ``lecun_uniform``: U(+-sqrt(3 variance));
* ``variance_scaling(scale, mode, distribution)``: ``truncated_normal``,
  ``normal`` (the plain normal, unlike Keras), ``uniform``;
* ``truncated_normal(stddev, lower, upper)``: mean 0, bounds in units of stddev,
  no correction; ``normal(stddev)``: mean 0; ``uniform(scale)``: U[0, scale).

* ``orthogonal(scale, column_axis=-1)``: the kernel viewed as
  ``(prod(shape[:-1]), shape[-1])`` (its own column axis last) is scale x a Haar
  matrix with orthonormal rows or columns (``jax.random.orthogonal``);
  ``delta_orthogonal(scale)``: 3-5-d kernels with in <= out, zeros but for the
  kernel's centre, which holds ``orthogonal(scale)`` of ``(in, out)``;
  ``constant(value)``, ``zeros``, ``ones``.  Their laws and per-draw checks are
  :func:`initcheck.structured.expectation`'s on the JAX shape.  JAX has no
  sparse, identity or Dirac initializer.

Kernels are ``(*kernel, in, out)``.  Draw i uses ``jax.random.key(seed_i)``.

Small draws come in batches (:attr:`~initcheck.frameworks.base.Plan.draw_batch`):
one jitted call makes ``count`` keys, ``jax.random.split(jax.random.key(seed),
count)`` from the batch's seed, and ``jax.vmap`` maps the real initializer,
called with the real per-draw shape, over them, so draw j of a batch is exactly
``initializer(keys[j], shape, dtype)``.  One compile per (shape, count, dtype):
the row's last, shorter batch reuses the full batch's compile and keeps its
first ``count`` draws (the same draws as its own compile would make: split keys
are a prefix of a longer split's with JAX's default partitionable threefry).  The layer
libraries' defaults (:mod:`initcheck.frameworks.jax_layers`) are batched the same
way, vmap over the keys of the layer's own build.

The process's JAX settings are left as they were: float64 rows trace and run
inside ``with jax.enable_x64(True):`` (not the process-wide
``jax_enable_x64`` flag), and JAX's "no GPU found" warnings are filtered only
while this adapter starts JAX's backends.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager

import numpy as np


class _BelowError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


@contextmanager
def _backend_warnings_filtered():
    """JAX's backend warnings ("An NVIDIA GPU may be present ...") kept out,
    for the duration only: the logger's own settings are not changed."""
    logger, quiet = logging.getLogger("jax._src.xla_bridge"), _BelowError()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


with _backend_warnings_filtered():
    import jax

from initcheck.errors import InputError  # noqa: E402
from initcheck.frameworks import scaling  # noqa: E402
from initcheck.frameworks.base import Framework, Plan, Skip  # noqa: E402
from initcheck.laws import Normal, TruncatedNormal, Uniform  # noqa: E402


@contextmanager
def _precision(dtype: str):
    """float64 for the duration of a float64 row's traces and calls only."""
    if dtype == "float64":
        with jax.enable_x64(True):
            yield
    else:
        yield


class _Batched:
    """``draw_batch`` of a per-key function ``one(key)``: jitted, keys split
    inside the call (made outside, each is a dispatch of its own), one compile
    per count; a shorter batch runs the smallest compiled count above it and
    keeps the first ``count`` draws."""

    def __init__(self, one, target, dtype: str):
        self._one, self._target, self._dtype = one, target, dtype
        self._compiled: dict[int, object] = {}

    def _function(self, count: int):
        def batch(seed):
            return jax.vmap(self._one)(jax.random.split(jax.random.key(seed), count))

        return jax.jit(batch)

    def __call__(self, seed: int, count: int):
        larger = [c for c in self._compiled if c >= count]
        size = min(larger) if larger else count
        if size not in self._compiled:
            self._compiled[size] = self._function(size)
        with _precision(self._dtype), jax.default_device(self._target):
            batch = self._compiled[size](np.uint32(seed % 2**32))
            return batch if size == count else batch[:count]


def jax_device(device: str):
    """initcheck's ``cpu`` / ``cuda:N`` as a JAX device, or InputError."""
    with _backend_warnings_filtered():
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
        with _backend_warnings_filtered():
            return [f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices()]

    def default_rows(self, layer, device, dtype):
        """The JAX layer libraries' dense and conv layers (Flax linen and NNX,
        Equinox, Haiku): :mod:`initcheck.frameworks.jax_layers`."""
        from initcheck.frameworks import jax_layers

        return jax_layers.default_rows(layer, device, dtype)

    def plan(self, spec, layer, device, dtype):
        shape = layer.shape("keras")
        found = _initializer(spec, layer)
        if isinstance(found, str):
            return Skip(self.name, "jax.nn.initializers", found, device, dtype, shape)
        api, initializer, law = found
        target = jax_device(device)
        draw_checks, samples = None, None
        if spec.structured:
            from initcheck.structured import expectation

            law, draw_checks = expectation(spec, shape, "keras")
            samples = 10 * math.prod(shape) if spec.deterministic else None
            try:  # a dtype its QR has no kernel for (float16, bfloat16)
                with _precision(dtype), jax.default_device(target):
                    probe = (2, 2) if spec.scheme == "orthogonal" else (3, 2, 2)
                    jax.block_until_ready(initializer(jax.random.key(0), probe, dtype))
            except Exception as error:  # JAX and XLA raise their own error types
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                return Skip(self.name, api, f"{api} raises on {dtype} {device}: {reason}", device, dtype, shape)
        # The key is made inside the jitted call: made outside, it is a dispatch
        # of its own per draw (milliseconds on a GPU, more than the sampling).
        sample = jax.jit(lambda seed: initializer(jax.random.key(seed), shape, dtype))

        def draw(seed: int):
            with _precision(dtype), jax.default_device(target):
                return sample(np.uint32(seed % 2**32))

        draw_batch = _Batched(lambda key: initializer(key, shape, dtype), target, dtype)
        return Plan(self.name, api, law, shape, device, dtype, draw, samples=samples, draw_batch=draw_batch,
                    draw_checks=draw_checks)


_NO_STRUCTURED = {
    "sparse": "jax.nn.initializers has no sparse initializer",
    "eye": "jax.nn.initializers has no identity initializer",
    "dirac": "jax.nn.initializers has no Dirac initializer (delta_orthogonal puts a random orthogonal matrix "
             "at the kernel's centre: initcheck delta-orthogonal)",
}


def _initializer(spec, layer):
    """(api text, initializer, law) or the reason to skip; a structured
    scheme's law comes from the shape (Jax.plan)."""
    init = jax.nn.initializers
    if spec.structured:
        if spec.scheme in _NO_STRUCTURED:
            return _NO_STRUCTURED[spec.scheme]
        scale = 1.0 if spec.gain is None else spec.gain
        if spec.scheme == "orthogonal":
            return _call_text("orthogonal", (scale,)), init.orthogonal(scale), None
        if spec.scheme == "delta-orthogonal":
            return _call_text("delta_orthogonal", (scale,)), init.delta_orthogonal(scale), None
        if spec.scheme == "constant":
            return _call_text("constant", (spec.constant_value,)), init.constant(spec.constant_value), None
        return f"jax.nn.initializers.{spec.scheme}", getattr(init, spec.scheme), None
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
