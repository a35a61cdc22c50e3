"""MLX adapter: ``mlx.nn.init`` called for real on an array of the layer's MLX shape.

MLX stores a ``Linear`` weight as ``(out, in)`` and a convolution weight
channels last, ``(out, *kernel, in)`` (``mlx/nn/layers/linear.py``,
``mlx/nn/layers/convolution.py``).  An ``mlx.nn.init`` initializer is a factory
``f(..., dtype)`` returning ``initializer(a, ...)``, which reads nothing of
``a`` but its shape (``mlx/nn/init.py``); every draw calls it on an array of
the real per-draw shape (lazy, never evaluated).  MLX documents, and draws:

* ``glorot_normal()(a, gain)``: the *plain* normal N(0, gain sqrt(2 / (fan_in +
  fan_out))); ``glorot_uniform()(a, gain)``: U(+-gain sqrt(6 / (fan_in +
  fan_out)));
* ``he_normal()(a, mode, gain)``: the plain normal N(0, gain / sqrt(fan));
  ``he_uniform()(a, mode, gain)``: U(+-gain sqrt(3 / fan)); ``mode`` is
  ``fan_in`` or ``fan_out`` (no fan_avg).  Their ``gain`` defaults to 1.0,
  so ``he_normal()(a)`` draws variance 1 / fan_in (LeCun's), not He's 2 /
  fan_in: a row passes the gain of the nonlinearity (sqrt 2 for relu)
  explicitly, and the API it prints shows it;
* ``normal(mean, std)``: N(mean, std); ``uniform(low, high)``: U(low, high);
* ``orthogonal(gain)``: 2-d only; the QR (on the CPU stream) of an n x n
  float32 normal matrix, n the long side, Q's columns multiplied by the signs of
  R's diagonal (Haar), sliced to ``(rows, cols)``, times gain: the law and
  per-draw checks of :func:`initcheck.structured.expectation`;
* ``sparse(sparsity, mean, std)``: 2-d; ceil(sparsity x cols) zeros in every
  *row* (PyTorch's ``sparse_`` puts ceil(sparsity x rows) in every column), the
  rest N(mean, std): the structured law read in the ``keras`` layout, whose
  2-d "columns" run along the last axis, as MLX's rows do;
* ``identity()``: square 2-d only, no gain; ``constant(value)`` (the
  ``zeros`` and ``ones`` schemes are ``constant(0.0)`` and ``constant(1.0)``:
  MLX has no other call for them).

MLX has no LeCun, variance_scaling, truncated-normal (``trunc-normal``, nor a
truncated Glorot/He), Dirac or delta-orthogonal initializer: those rows are
skipped with the reason, never imitated.

Fans: ``fans(layer)`` is MLX's own ``_calculate_fan_in_fan_out`` on the MLX
shape: fan_in = shape[-1] x prod(shape[1:-1]), fan_out = shape[0] x
prod(shape[1:-1]), which on ``(out, *kernel, in)`` is in x prod(kernel) and out
x prod(kernel), the closed form.  A row's law is MLX's documented formula on
those fans.

Dtypes: float32, float16 and bfloat16 everywhere.  On the CPU ``mx.random.uniform``
has no float64 kernel ("[uniform] Unsupported type."): a float64 row of a
uniform initializer is a SKIP with that message.  ``mx.random.normal`` runs in
float64 but maps float32 uniforms (1e7 float64 draws hold about 8e6 distinct
values, as many as float32's); its float64 rows are checked as they are.  In
float16 and bfloat16 MLX draws in 16-bit arithmetic (``mx.random.uniform``
casts low, high and their range to the dtype), not the float32 law rounded to
16 bits: at N = 1e7 its 16-bit glorot and he rows FAIL on atoms (and in
bfloat16 on the variance), while the same initializers in float32 rounded to
16 bits pass; the rows report that, they are not adjusted.  Draws come back as
NumPy views of the arrays' memory, bfloat16 through ``ml_dtypes``.

Seeding: the initializers take no key; they split the calling thread's global
key (``mx.random.state``).  A draw (or a batch) seeds it with
``mx.random.seed(seed)`` and puts the caller's key back afterwards:
``mx.random.state`` is read-only since MLX 0.32.1, and ``mx.random.key(s)`` is
the two 32-bit halves of ``s``, so reseeding with the saved key's own words
restores it exactly.  The global key is per thread, and a thread other than
the main one that draws with ``mx.random`` makes the process abort when it
exits ("terminate called without an active exception", MLX 0.32.4): draws run
in the thread that runs the row, the fold thread only reads NumPy views.

Batches (``Plan.draw_batch``): ``mx.vmap`` over an initializer repeats the
*same* values in every element of the batch (the global key is not a vmapped
input), so it is not used.  A batch seeds the global key once and calls the
real initializer once per draw, on the real per-draw shape, each call
splitting the key, so draw j is call j of a row of real calls from that seed;
the calls go through ``mx.compile`` of the initializer (key as its input and
output state), checked on the first batch to give bit for bit the plain calls'
draws (else plain calls are used), and are evaluated 64 at a time (MLX is lazy:
one ``mx.eval`` per group, not per draw).  What is left is MLX's cost per op
and per evaluation: a 2 x 5 glorot_uniform draw costs 15-75 microseconds on a
shared 2-core CPU (1e6 values, 1e5 draws, in 1.5-7.5 s).  The laws that take
nothing from the shape (``normal``, ``uniform``, ``constant``) are one real
call on a ``(count, *shape)`` array instead, as for PyTorch (about 1
microsecond per 2 x 5 draw).  ``orthogonal`` QRs an n x n matrix, n the long
side, so a 256 x 784 draw is a 784 x 784 QR.

Layer defaults (``default_rows``) build real ``mlx.nn.Linear`` and
``Conv1d/2d/3d`` with the global key seeded as above.  ``Linear`` documents
U(+-1/sqrt(input_dims)) for weight and bias; the convolutions document none
and draw their weight from U(+-sqrt(1 / (in / groups x prod(kernel)))) (the
fan_in of their own ``(out, *kernel, in / groups)`` weight) and set the bias to
zeros (PyTorch's is U(+-1/sqrt(fan_in))).  The layers take no dtype: float16
and bfloat16 rows cast the float32 parameters with ``Module.set_dtype``, as an
MLX user does; float64 rows are skipped (no float64 uniform).

Devices: ``cpu``, and ``cuda`` / ``gpu`` where MLX has a GPU backend (Metal on
macOS, CUDA where it was built with it: ``mx.is_available(mx.gpu)``), as
``mx.gpu``; otherwise a one-line InputError.  Importing MLX prints nothing and
changes no environment variable and no Python or NumPy RNG state.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.nn.init import _calculate_fan_in_fan_out

from initcheck.errors import InputError
from initcheck.frameworks.base import Framework, Plan, Skip
from initcheck.laws import Constant, Law, Normal, Uniform
from initcheck.layers import format_shape

_DTYPES = {"float32": mx.float32, "float64": mx.float64, "float16": mx.float16, "bfloat16": mx.bfloat16}
#: Real initializer calls evaluated together in a batch (one ``mx.eval`` each).
_GROUP = 64
_SEEDS = 2**64


# --------------------------------------------------------------------------- the global key


def key_as_seed() -> int:
    """The 64-bit seed whose ``mx.random.key`` is the calling thread's global key."""
    high, low = (int(word) for word in np.array(mx.random.state[0]))
    return (high << 32) | low


@contextmanager
def global_key_seeded(seed: int):
    """The calling thread's global key seeded with ``seed`` for the duration;
    the caller's key restored exactly after (module docstring)."""
    saved = key_as_seed()
    mx.random.seed(seed % _SEEDS)
    try:
        yield
    finally:
        mx.random.seed(saved)


# --------------------------------------------------------------------------- devices and arrays


def mlx_device(device: str):
    """initcheck's ``cpu`` / ``cuda:N`` as an MLX device, or InputError."""
    if device == "cpu":
        return mx.cpu
    index = int(device.split(":")[1])
    if not mx.is_available(mx.gpu):
        raise InputError(f"MLX {mx.__version__} cannot use {device}: it has no GPU backend here "
                         "(mx.metal.is_available() and mx.cuda.is_available() are False)")
    count = mx.device_count(mx.gpu)
    if index >= count:
        raise InputError(f"MLX {mx.__version__} cannot use {device}: it sees {count} GPU(s)")
    return mx.Device(mx.gpu, index)


def to_host(x) -> np.ndarray:
    """An evaluated MLX array as a NumPy array of its dtype, without a copy
    where its memory allows (bfloat16 as ml_dtypes' bfloat16)."""
    if x.dtype != mx.bfloat16:
        return np.asarray(x)
    from initcheck.lowp import numpy_dtype

    bfloat16 = numpy_dtype("bfloat16")
    try:
        return np.frombuffer(memoryview(x), dtype=bfloat16).reshape(x.shape)
    except (ValueError, TypeError, BufferError):  # memory that is not one contiguous block
        return np.asarray(x.astype(mx.float32)).astype(bfloat16)


def _dtype_text(dtype: str) -> str:
    return f"mlx.core.{dtype}"


def _message(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# --------------------------------------------------------------------------- what a row calls


@dataclass
class _Initializer:
    """One ``mlx.nn.init`` call: ``call(a)`` returns the initializer's array for
    ``a``'s shape; ``law(fan_in, fan_out)`` is the one MLX documents;
    ``shape_free`` when the law takes nothing from the shape (one call may fill
    a whole batch)."""

    api: str
    call: Callable
    law: Callable[[int, int], Law] | None
    shape_free: bool = False


def _initializer(spec, mx_dtype, dtype: str) -> _Initializer | str:
    """The real call of a scheme, or the reason MLX has none."""
    init = nn.init
    factory = f"(dtype={_dtype_text(dtype)})"
    if spec.scheme in _NONE:
        return _NONE[spec.scheme]
    if spec.uses_fans:
        return _fan_initializer(spec, mx_dtype, factory)
    if spec.scheme == "trunc-normal":
        return ("mlx.nn.init has no truncated-normal initializer (mlx.core.random.truncated_normal is a "
                "sampler, not an mlx.nn.init initializer)")
    if spec.scheme == "normal":
        api = f"mlx.nn.init.normal(mean={spec.mean!r}, std={spec.std!r}, dtype={_dtype_text(dtype)})(w)"
        return _Initializer(api, init.normal(spec.mean, spec.std, mx_dtype),
                            lambda fan_in, fan_out: Normal(spec.mean, spec.std), shape_free=True)
    if spec.scheme == "uniform":
        api = f"mlx.nn.init.uniform(low={spec.low!r}, high={spec.high!r}, dtype={_dtype_text(dtype)})(w)"
        return _Initializer(api, init.uniform(spec.low, spec.high, mx_dtype),
                            lambda fan_in, fan_out: Uniform(spec.low, spec.high), shape_free=True)
    if spec.constant_value is not None:
        value = spec.constant_value
        api = f"mlx.nn.init.constant({value!r}, dtype={_dtype_text(dtype)})(w)"
        return _Initializer(api, init.constant(value, mx_dtype), None, shape_free=True)
    if spec.scheme == "orthogonal":
        scale = 1.0 if spec.gain is None else spec.gain
        return _Initializer(f"mlx.nn.init.orthogonal({scale!r}, dtype={_dtype_text(dtype)})(w)",
                            init.orthogonal(scale, mx_dtype), None)
    if spec.scheme == "sparse":
        std = spec.effective_std
        api = f"mlx.nn.init.sparse({spec.sparsity!r}, mean=0.0, std={std!r}, dtype={_dtype_text(dtype)})(w)"
        return _Initializer(api, init.sparse(spec.sparsity, 0.0, std, mx_dtype), None)
    if spec.scheme == "eye":
        if spec.gain not in (None, 1.0):
            return "mlx.nn.init.identity has no gain"
        return _Initializer(f"mlx.nn.init.identity{factory}(w)", init.identity(mx_dtype), None)
    raise AssertionError(spec.scheme)


#: Schemes mlx.nn.init has no initializer for, and why.
_NONE = {
    "lecun": ("mlx.nn.init has no LeCun initializer (he_normal and he_uniform with their default gain 1.0 "
              "draw its law: initcheck kaiming --nonlinearity linear -f mlx)"),
    "variance-scaling": "mlx.nn.init has no variance_scaling initializer",
    "dirac": "mlx.nn.init has no Dirac initializer",
    "delta-orthogonal": "mlx.nn.init has no delta-orthogonal initializer",
}


def _fan_initializer(spec, mx_dtype, factory: str) -> _Initializer | str:
    """glorot_* (xavier) and he_* (kaiming), with the laws of their docstrings."""
    if spec.dist == "truncated-normal":
        named = "glorot" if spec.scheme == "xavier" else "he"
        return (f"mlx.nn.init has no truncated-normal {spec.scheme} initializer ({named}_normal draws the "
                "plain normal)")
    gain, uniform = spec.effective_gain, spec.dist == "uniform"
    if spec.scheme == "xavier":
        name = "glorot_uniform" if uniform else "glorot_normal"
        kwargs = {"gain": gain}

        def law(fan_in, fan_out):
            if uniform:
                limit = gain * math.sqrt(6.0 / (fan_in + fan_out))
                return Uniform(-limit, limit)
            return Normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))
    else:
        mode = spec.effective_mode
        if mode not in ("fan_in", "fan_out"):
            return f"mlx.nn.init.he_* takes mode fan_in or fan_out, not {mode}"
        name = "he_uniform" if uniform else "he_normal"
        kwargs = {"mode": mode, "gain": gain}

        def law(fan_in, fan_out):
            fan = fan_in if mode == "fan_in" else fan_out
            if uniform:
                limit = gain * math.sqrt(3.0 / fan)
                return Uniform(-limit, limit)
            return Normal(0.0, gain / math.sqrt(fan))
    initializer = getattr(nn.init, name)(mx_dtype)
    api = f"mlx.nn.init.{name}{factory}(w{''.join(f', {k}={v!r}' for k, v in kwargs.items())})"
    return _Initializer(api, lambda a: initializer(a, **kwargs), law)


def _problem(call: Callable, shape: tuple[int, ...], target, dtype: str, device: str) -> str | None:
    """Why ``call`` cannot fill ``shape`` on this dtype and device (MLX's own
    message), or None.  The real shape is tried without evaluating anything
    (the initializers check it before they draw), the dtype on a tiny array."""
    tiny = tuple(min(d, 3) for d in shape)
    with global_key_seeded(0), mx.stream(target):
        try:
            call(mx.zeros(shape))
            mx.eval(call(mx.zeros(tiny)))
        except ValueError as error:  # the initializers' own checks of the shape
            return f"raises on shape {format_shape(shape)}: {_message(error)}"
        except RuntimeError as error:  # a kernel the dtype or device lacks ("[uniform] Unsupported type.")
            return f"raises on {dtype} {device}: {_message(error)}"
    return None


class _Batches:
    """``draw_batch`` of an initializer: ``count`` real calls on the real
    per-draw shape from the global key seeded once (module docstring), or one
    call on a ``(count, *shape)`` array for a law that takes nothing from the
    shape."""

    def __init__(self, call: Callable, shape: tuple[int, ...], target, shape_free: bool):
        self.call, self.shape, self.target, self.shape_free = call, tuple(shape), target, shape_free
        self.template = mx.zeros(self.shape)  # never evaluated: the initializers read its shape
        self.calls: Callable | None = None

    def _checked_calls(self, seed: int) -> Callable:
        """The compiled initializer where it gives the plain calls' draws bit for bit, else the plain one."""
        try:
            compiled = mx.compile(self.call, inputs=mx.random.state, outputs=mx.random.state)
            with global_key_seeded(seed), mx.stream(self.target):
                fast = [to_host(x) for x in self._group(compiled, 2)]
        except (RuntimeError, ValueError):  # an op mx.compile cannot trace
            return self.call
        with global_key_seeded(seed), mx.stream(self.target):
            plain = [to_host(x) for x in self._group(self.call, 2)]
        same = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(fast, plain))
        return compiled if same else self.call

    def _group(self, calls: Callable, count: int) -> list:
        drawn = [calls(self.template) for _ in range(count)]
        mx.eval(*drawn)
        return drawn

    def __call__(self, seed: int, count: int) -> np.ndarray:
        if self.shape_free:
            with global_key_seeded(seed), mx.stream(self.target):
                batch = self.call(mx.zeros((count, *self.shape)))
                mx.eval(batch)
            return to_host(batch)
        if self.calls is None:
            self.calls = self._checked_calls(seed)
        drawn = []
        with global_key_seeded(seed), mx.stream(self.target):
            for start in range(0, count, _GROUP):
                drawn.extend(to_host(x) for x in self._group(self.calls, min(_GROUP, count - start)))
        return np.stack(drawn)


def _single(call: Callable, shape: tuple[int, ...], target) -> Callable[[int], np.ndarray]:
    """``draw(seed)``: one real call on the real shape, the global key seeded with ``seed``."""
    template = mx.zeros(shape)  # never evaluated

    def draw(seed: int) -> np.ndarray:
        with global_key_seeded(seed), mx.stream(target):
            x = call(template)
            mx.eval(x)
        return to_host(x)

    return draw


# --------------------------------------------------------------------------- the adapter


class Mlx(Framework):
    name = "mlx"
    title = "MLX"
    layout = "mlx"

    def version(self) -> str:
        return mx.__version__

    def check_device(self, device: str) -> None:
        mlx_device(device)

    def fans(self, layer):
        try:
            fan_in, fan_out = _calculate_fan_in_fan_out(mx.zeros(layer.shape("mlx")))
        except ValueError as error:
            raise InputError(f"mlx.nn.init: {_message(error)}") from None
        return int(fan_in), int(fan_out)

    def devices(self):
        found = ["cpu"]
        if mx.is_available(mx.gpu):
            backend = "Metal" if mx.metal.is_available() else "CUDA"
            found += [f"gpu:{i} ({backend})" for i in range(mx.device_count(mx.gpu))]
        return found

    def plan(self, spec, layer, device, dtype):
        shape = layer.shape("mlx")
        target = mlx_device(device)
        found = _initializer(spec, _DTYPES[dtype], dtype)
        if isinstance(found, str):
            return Skip(self.name, "mlx.nn.init", found, device, dtype, shape)
        problem = _problem(found.call, shape, target, dtype, device)
        if problem:
            return Skip(self.name, found.api, f"{found.api} {problem}", device, dtype, shape)
        draw = _single(found.call, shape, target)
        if spec.structured:
            return self._structured_plan(spec, found, shape, target, device, dtype, draw)
        fan_in, fan_out = self.fans(layer) if spec.uses_fans else (1, 1)
        return Plan(self.name, found.api, found.law(fan_in, fan_out), shape, device, dtype, draw,
                    draw_batch=_Batches(found.call, shape, target, found.shape_free))

    def _structured_plan(self, spec, found, shape, target, device, dtype, draw):
        """orthogonal, sparse (its zeros along rows: the keras layout's 2-d
        columns), identity and the constants: laws and per-draw checks of
        :func:`initcheck.structured.expectation` (module docstring)."""
        from initcheck.structured import expectation

        law, draw_checks = expectation(spec, shape, "keras" if spec.scheme == "sparse" else "torch")
        if spec.deterministic:
            return Plan(self.name, found.api, law, shape, device, dtype, draw, samples=10 * math.prod(shape),
                        draw_checks=draw_checks)
        return Plan(self.name, found.api, law, shape, device, dtype, draw,
                    draw_batch=_Batches(found.call, shape, target, found.shape_free), draw_checks=draw_checks)

    def default_rows(self, layer, device, dtype):
        """mlx.nn.Linear: weight and bias U(+-1/sqrt(in)); Conv1d/2d/3d: weight
        U(+-sqrt(1 / (in x prod(kernel)))), bias zeros (module docstring)."""
        target = mlx_device(device)
        if len(layer.kernel) > 3:
            return [("weight", Skip(self.name, "mlx.nn", f"mlx.nn has no {len(layer.kernel)}-d convolution"))]
        if layer.kernel:
            module = getattr(nn, f"Conv{len(layer.kernel)}d")
            kernel = layer.kernel[0] if len(layer.kernel) == 1 else layer.kernel
            args = (layer.in_features, layer.out_features, kernel)
        else:
            module, args = nn.Linear, (layer.in_features, layer.out_features)
        call = f"mlx.nn.{module.__name__}({', '.join(map(str, args))})"
        if dtype == "float64":
            reason = (f"{call} draws float32 parameters and mx.random.uniform has no float64 kernel; "
                      "set_dtype(float64) would only widen float32 values")
            return [("weight", Skip(self.name, call, reason, device, dtype, layer.shape("mlx")))]
        mx_dtype = _DTYPES[dtype]
        if dtype != "float32":
            call += f".set_dtype({_dtype_text(dtype)})"

        def parameter(name: str):
            def build():
                built = module(*args)
                if dtype != "float32":
                    built.set_dtype(mx_dtype)
                return built[name]  # lazy: only this parameter is ever computed

            return build

        bound = math.sqrt(1.0 / layer.fan_in)
        weight_law = Uniform(-bound, bound)
        weight_shape, bias_shape = layer.shape("mlx"), (layer.out_features,)
        weight = Plan(self.name, f"{call}.weight", weight_law, weight_shape, device, dtype,
                      _single(lambda a, build=parameter("weight"): build(), weight_shape, target),
                      draw_batch=_Batches(lambda a, build=parameter("weight"): build(), weight_shape, target,
                                          shape_free=False))
        bias_call = parameter("bias")
        if layer.kernel:  # the convolutions' bias: mx.zeros
            bias = Plan(self.name, f"{call}.bias", Constant(0.0), bias_shape, device, dtype,
                        _single(lambda a: bias_call(), bias_shape, target), samples=10 * layer.out_features)
        else:
            bias = Plan(self.name, f"{call}.bias", weight_law, bias_shape, device, dtype,
                        _single(lambda a: bias_call(), bias_shape, target),
                        draw_batch=_Batches(lambda a: bias_call(), bias_shape, target, shape_free=False))
        return [("weight", weight), ("bias", bias)]
