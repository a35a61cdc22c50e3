"""PaddlePaddle adapter: ``paddle.nn.initializer`` called for real, in dygraph mode.

Paddle documents, and draws (``paddle/nn/initializer/*.py``):

* ``XavierNormal(gain)``: N(0, gain sqrt(2 / (fan_in + fan_out)));
  ``XavierUniform(gain)``: U(+-gain sqrt(6 / (fan_in + fan_out))) (``xavier.py``).
* ``KaimingNormal(negative_slope, nonlinearity, mode)``: N(0, gain / sqrt(fan));
  ``KaimingUniform``: U(+-gain sqrt(3 / fan)), gain ``calculate_gain(nonlinearity,
  negative_slope)``, fan the fan_in or (``mode="fan_out"``) the fan_out
  (``kaiming.py``); no fan_avg mode.  Their ``fan_in``/``fan_out`` arguments
  override the fans read off the tensor; initcheck passes none, so the fans are
  Paddle's own ``Initializer._compute_fans`` (``initializer.py``): a 2-d weight
  is ``(in, out)`` (fan_in = shape[0]), a convolution's ``(out, in / groups,
  *kernel)`` (fan_in = shape[1] x prod(kernel)), a vector's fans are (n, n).
* ``TruncatedNormal(mean, std, a, b)``: N(mean, std) cut at the *absolute*
  bounds ``a``, ``b`` (default -2, 2), no correction of the std (``normal.py``);
  ``Normal(mean, std)``; ``Uniform(low, high)`` (``uniform.py``).
* ``Orthogonal(gain)``: the weight viewed as ``(shape[0], prod(shape[1:]))`` (the
  rows are shape[0] in every layout, so a ``Linear`` weight's rows are its
  inputs) is gain x the QR of a normal matrix with R's diagonal signs moved
  into Q (``orthogonal.py``): the law and per-draw checks of
  :func:`initcheck.structured.expectation` in the ``torch`` matrix view;
  ``Dirac(groups)``: 3-5-d, ``w[g out / groups + d, d, k // 2] = 1``
  (``dirac.py``), as ``torch.nn.init.dirac_``; ``Constant(value)``.

Paddle has no LeCun, variance-scaling, truncated Glorot/He, sparse, identity
or delta-orthogonal initializer: those rows are skipped.  (``Assign`` copies a
given array and ``Bilinear`` fills an upsampling kernel; initcheck has no
scheme for either.)

Randomness.  Paddle's initializers take no generator: with their seed left at 0
they read ``default_main_program().random_seed`` (0 unless set) and then draw
from the device's global generator (``paddle.seed`` seeds it).  A draw (or a
batch) seeds the row device's global generator (``core.default_cpu_generator()``
or ``core.default_cuda_generator(i)``) and puts its state back afterwards
(``get_state`` / ``set_state``); a program random seed the caller set is
zeroed for the duration and put back, so every call draws anew.  A batch is
seeded once and its draws are consecutive real calls from that generator, so
batches are as reproducible as single draws.

Batches.  Paddle has no vmap.  A batch of a law that takes something from the
shape (xavier, kaiming, the structured ones) calls the initializer once per
draw, on a real parameter of the per-draw shape, copying each draw into a
NumPy batch (about 8 us a draw at (2, 5): Paddle's own Python overhead is most
of it).  ``Normal``, ``Uniform`` and ``TruncatedNormal`` take nothing from the
shape (absolute bounds), so their batch is one real call on a ``(count,
*shape)`` parameter.

Layer defaults (``default_rows``, ``paddle/nn/layer/common.py`` and
``conv.py``): ``Linear(in, out)``'s weight is ``(in, out)`` and takes the
``ParamAttr`` default ``XavierUniform()`` (``base/param_attr.py``), U(+-sqrt(6 /
(in + out))); ``Conv1D/2D/3D``'s weight takes ``Normal(0, (2 /
filter_elem_num) ** 0.5)`` with ``filter_elem_num = prod(kernel) x
in_channels`` (the full channel count, not in / groups); biases take
``Constant(0.0)``.  A single draw builds the real layer; a weight's batch
builds one layer under ``paddle.LazyGuard`` (Paddle's documented lazy
initialization: the layer's own default initializer is attached to the
parameter, uncalled) and calls that attached initializer once per draw.  The
first batch of a row is compared, bit for bit, with layers really built one
after another from the same seed; should they differ, every draw builds its
layer.  Layers are built inside ``paddle.utils.unique_name.guard()``, so the
caller's parameter-name counters do not move, and with Paddle's default dtype
set to the row's for the construction only.

Dtypes: float32, float64, float16 and bfloat16 where the initializer has a
kernel (Paddle's own error otherwise: ``qr`` has no 16-bit CPU kernel, and
``TruncatedNormal`` calls a float16 kernel Paddle does not register, although
its code means to draw in float32 and cast: it compares the dygraph dtype with
the legacy ``VarDesc.VarType.FP16``, which never matches).  bfloat16 draws
reach NumPy as ``ml_dtypes.bfloat16`` (Paddle hands them over as uint16).
Devices: ``cpu``, and ``cuda:N`` where Paddle is compiled with CUDA; the row's
place is Paddle's expected place for the duration of a draw only.

Imported after TensorFlow, Paddle 3.3.1's ``libpaddle`` binds to the symbols
TensorFlow loaded globally (``RTLD_GLOBAL``) and the process dies of a
segmentation fault in ``paddle/base/core.py``; so when TensorFlow is already
imported, Python's dlopen flags get ``RTLD_DEEPBIND`` for Paddle's import only
(its libraries then bind their own symbols first), and are put back after it.

The caller's process is left as it was: Paddle's import writes a ccache warning
and may log natively; warnings are ignored and file descriptor 2 goes to
/dev/null during the import only.  The import sets ``OMP_NUM_THREADS=1`` where
unset (a later ``import torch`` would then run on one thread) and
``CUSTOM_DEVICE_ROOT``, gives the root logger a handler and the level INFO,
and draws from Python's ``random``; the variables, the root logger and
Python's and NumPy's generator states are put back right after it.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
import sys
import warnings
from contextlib import contextmanager

import numpy as np

from initcheck.errors import InputError
from initcheck.frameworks.base import Framework, Plan, Skip, native_stderr_silenced
from initcheck.laws import Constant, Normal, Uniform

#: Environment variables Paddle's import sets, put back after it.
_IMPORT_ENVIRONMENT = ("OMP_NUM_THREADS", "CUSTOM_DEVICE_ROOT")


def _import():
    """paddle, imported quietly, with the caller's environment, root logger and
    Python and NumPy generator states as they were before; after TensorFlow,
    with its own symbols bound first (module docstring)."""
    environment = {name: os.environ.get(name) for name in _IMPORT_ENVIRONMENT}
    python_state, numpy_state = random.getstate(), np.random.get_state()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    dlopen_flags = sys.getdlopenflags()
    if "paddle" not in sys.modules and "tensorflow" in sys.modules and hasattr(os, "RTLD_DEEPBIND"):
        sys.setdlopenflags(dlopen_flags | os.RTLD_DEEPBIND)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with native_stderr_silenced():
                import paddle
    finally:
        sys.setdlopenflags(dlopen_flags)
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        root.handlers[:] = handlers
        root.setLevel(level)
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    return paddle


paddle = _import()

from paddle.base import core, framework  # noqa: E402
from paddle.nn import initializer as init  # noqa: E402
from paddle.utils import unique_name  # noqa: E402

_DTYPES = {"float32": paddle.float32, "float64": paddle.float64, "float16": paddle.float16,
           "bfloat16": paddle.bfloat16}


def _bfloat16():
    """NumPy's bfloat16 (``ml_dtypes``), or None where it is not installed."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    return ml_dtypes.bfloat16


def to_numpy(tensor, dtype: str) -> np.ndarray:
    """A host copy of a Paddle tensor; bfloat16 as ``ml_dtypes.bfloat16``."""
    array = tensor.numpy()
    return array.view(_bfloat16()) if dtype == "bfloat16" else array


def _place(device: str):
    return paddle.CPUPlace() if device == "cpu" else paddle.CUDAPlace(int(device.split(":")[1]))


def _generator(device: str):
    """The global generator Paddle's initializers draw from on ``device``."""
    return core.default_cpu_generator() if device == "cpu" else \
        core.default_cuda_generator(int(device.split(":")[1]))


@contextmanager
def placed(device: str):
    """``device`` as Paddle's expected place (where initializers draw and
    parameters live) for the duration; unchanged where it already is."""
    place = _place(device)
    if framework._current_expected_place_() == place:
        yield
        return
    saved = framework._global_expected_place_
    tracer = framework.global_var._dygraph_tracer_
    saved_tracer = tracer._expected_place if tracer is not None else None
    framework._set_expected_place(place)
    try:
        yield
    finally:
        framework._global_expected_place_ = saved
        if tracer is not None:
            tracer._expected_place = saved_tracer


@contextmanager
def seeded(device: str, seed: int):
    """The global generator of ``device`` seeded with ``seed``, the program's
    random seed 0 (so initializers draw from that generator) and ``device`` the
    expected place, all for the duration; the caller's states are put back."""
    generator = _generator(device)
    program = framework.default_main_program()
    state, program_seed = generator.get_state(), program.random_seed
    try:
        if program_seed:
            program.random_seed = 0
        generator.manual_seed(seed)
        with placed(device):
            yield
    finally:
        generator.set_state(state)
        if program_seed:
            program.random_seed = program_seed


@contextmanager
def default_dtype(dtype: str):
    """Paddle's default dtype (what ``Linear`` builds its parameters in) for the duration."""
    saved = paddle.get_default_dtype()
    paddle.set_default_dtype(dtype)
    try:
        yield
    finally:
        paddle.set_default_dtype(saved)


def _parameter(shape, dtype: str, device: str):
    """A real parameter of ``shape`` (a layer's weight is one), filled with zeros;
    its name is taken from a fresh name generator, so the caller's counters stay."""
    with unique_name.guard(), placed(device):
        return paddle.create_parameter(list(shape), _DTYPES[dtype],
                                       default_initializer=init.Constant(0.0))


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _call_text(name: str, kwargs: dict) -> str:
    return f"paddle.nn.initializer.{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


class _Batches:
    """Two NumPy batches used in turn (the runner folds one while the next is
    drawn), allocated at the first batch's size; a shorter batch is a view."""

    def __init__(self, shape, dtype: str):
        self._shape = tuple(shape)
        self._dtype = _bfloat16() if dtype == "bfloat16" else np.dtype(dtype)
        self._arrays: list[np.ndarray] = []
        self._turn = itertools.count()

    def next(self, count: int) -> np.ndarray:
        if not self._arrays or len(self._arrays[0]) < count:
            self._arrays = [np.empty((count, *self._shape), dtype=self._dtype) for _ in range(2)]
        return self._arrays[next(self._turn) % 2][:count]


class Paddle(Framework):
    name = "paddle"
    title = "PaddlePaddle"
    layout = "paddle"

    def version(self) -> str:
        return paddle.__version__

    def check_device(self, device: str) -> None:
        if device == "cpu":
            return
        if not paddle.is_compiled_with_cuda():
            raise InputError(f"PaddlePaddle {paddle.__version__} cannot use {device}: "
                             "paddle.is_compiled_with_cuda() is False (a CPU build)")
        index, count = int(device.split(":")[1]), paddle.device.cuda.device_count()
        if index >= count:
            raise InputError(f"PaddlePaddle cannot use {device}: it sees {count} CUDA device(s)")

    def fans(self, layer):
        """``Initializer._compute_fans`` on the weight's Paddle shape.  It reads
        only ``var.shape``; it is given an object holding the shape, so no
        tensor of the layer's size is allocated."""

        class Shaped:
            shape = list(layer.shape("paddle"))

        fan_in, fan_out = init.Initializer()._compute_fans(Shaped())
        return int(fan_in), int(fan_out)

    def devices(self):
        gpus = []
        if paddle.is_compiled_with_cuda():
            gpus = [f"gpu:{i} ({paddle.device.cuda.get_device_name(i)})"
                    for i in range(paddle.device.cuda.device_count())]
        return ["cpu", *gpus]

    def _dtype_skip(self, api, device, dtype, shape) -> Skip | None:
        if dtype == "bfloat16" and _bfloat16() is None:
            return Skip(self.name, api, "bfloat16 draws need ml_dtypes (pip install ml_dtypes): Paddle hands "
                        "them to NumPy as uint16", device, dtype, shape)
        return None

    def plan(self, spec, layer, device, dtype):
        shape = layer.shape("paddle")
        found = _initializer(spec)
        if isinstance(found, str):
            return Skip(self.name, "paddle.nn.initializer", found, device, dtype, shape)
        name, kwargs = found
        api = _call_text(name, kwargs)
        skip = self._dtype_skip(api, device, dtype, shape)
        if skip:
            return skip
        initializer = getattr(init, name)(**kwargs)
        draw_checks, samples = None, None
        if spec.structured:
            from initcheck.structured import expectation

            # Paddle's matrix view is (shape[0], prod(shape[1:])), its conv layout torch's
            law, draw_checks = expectation(spec, shape, "torch")
            samples = 10 * math.prod(shape) if spec.deterministic else None
        else:
            law = spec.law(layer.fan_in, layer.fan_out)
        weight = _parameter(shape, dtype, device)
        try:  # a dtype the initializer has no kernel for
            with seeded(device, 0):
                initializer(weight)
        except (RuntimeError, ValueError, TypeError, NotImplementedError) as error:
            return Skip(self.name, api, f"{api} raises on {dtype} {device}: {_first_line(error)}",
                        device, dtype, shape)

        def draw(seed: int) -> np.ndarray:
            with seeded(device, seed):
                initializer(weight)
            return to_numpy(weight, dtype)

        if not spec.uses_fans and not spec.structured:
            batch = []  # a parameter of the batch's shape, made at the first batch

            def draw_batch(seed: int, count: int) -> np.ndarray:
                """One real call on a (count, *shape) parameter: the law takes nothing from the shape."""
                if not batch or batch[0].shape[0] != count:
                    batch[:] = [_parameter((count, *shape), dtype, device)]
                with seeded(device, seed):
                    initializer(batch[0])
                return to_numpy(batch[0], dtype)
        else:
            buffers = _Batches(shape, dtype)

            def draw_batch(seed: int, count: int) -> np.ndarray:
                """``count`` real calls in a row on the per-draw parameter, seeded once."""
                out = buffers.next(count)
                with seeded(device, seed):
                    for one in out:
                        initializer(weight)
                        one[...] = to_numpy(weight, dtype)
                return out

        return Plan(self.name, api, law, shape, device, dtype, draw, samples=samples, draw_batch=draw_batch,
                    draw_checks=draw_checks)

    def default_rows(self, layer, device, dtype):
        """Linear: weight XavierUniform, U(+-sqrt(6 / (in + out))); Conv1D/2D/3D:
        weight Normal(0, sqrt(2 / (in_channels x prod(kernel)))); biases Constant(0)."""
        if len(layer.kernel) > 3:
            return [("weight", Skip(self.name, "paddle.nn", f"paddle.nn has no {len(layer.kernel)}-d convolution"))]
        if layer.kernel:
            layer_class = getattr(paddle.nn, f"Conv{len(layer.kernel)}D")
            args = (layer.in_features, layer.out_features, layer.kernel)
            law = Normal(0.0, math.sqrt(2.0 / (layer.in_features * layer.receptive_field)))
        else:
            layer_class, args = paddle.nn.Linear, (layer.in_features, layer.out_features)
            bound = math.sqrt(6.0 / (layer.fan_in + layer.fan_out))
            law = Uniform(-bound, bound)
        call = f"paddle.nn.{layer_class.__name__}({', '.join(map(str, args))})"
        shape = layer.shape("paddle")
        skip = self._dtype_skip(call, device, dtype, shape)
        if skip:
            return [("weight", skip)]

        def construct():
            with unique_name.guard(), default_dtype(dtype), placed(device):
                return layer_class(*args)

        def built(seed: int, count: int = 1) -> list:
            with seeded(device, seed):
                return [construct() for _ in range(count)]

        def parameter(name):
            def draw(seed: int) -> np.ndarray:
                return to_numpy(getattr(built(seed)[0], name), dtype)

            return draw

        weight = Plan(self.name, f"{call}.weight", law, shape, device, dtype, parameter("weight"),
                      draw_batch=_LayerWeights(construct, built, shape, dtype, device))
        bias = Plan(self.name, f"{call}.bias", Constant(0.0), (layer.out_features,), device, dtype,
                    parameter("bias"), samples=10 * layer.out_features)
        return [("weight", weight), ("bias", bias)]


class _LayerWeights:
    """``draw_batch`` of a layer's default weight: draw j is the weight of the
    j-th of ``count`` layers built one after another from the batch's seed.

    One layer built under ``paddle.LazyGuard`` holds, uncalled, the
    initializer the layer's own code chose for its weight; a batch calls it
    once per draw on that weight.  The first batch's first two draws are
    compared with two really built layers; should they ever differ, every draw
    builds its layer."""

    def __init__(self, construct, built, shape, dtype: str, device: str):
        self.construct, self.built = construct, built
        self.dtype, self.device = dtype, device
        self.buffers = _Batches(shape, dtype)
        self.weight = self.initialize = None
        self.faithful = None

    def _layers(self, seed: int, count: int) -> np.ndarray:
        out = self.buffers.next(count)
        for one, layer in zip(out, self.built(seed, count)):
            one[...] = to_numpy(layer.weight, self.dtype)
        return out

    def __call__(self, seed: int, count: int) -> np.ndarray:
        if self.faithful is False:
            return self._layers(seed, count)
        if self.weight is None:
            with paddle.LazyGuard():
                lazy = self.construct()
            self.weight, self.initialize = lazy.weight, lazy.weight._init_func
        out = self.buffers.next(count)
        with seeded(self.device, seed):
            for one in out:
                self.initialize(self.weight, None)
                one[...] = to_numpy(self.weight, self.dtype)
        if self.faithful is None:
            check = min(count, 2)
            layers = [to_numpy(layer.weight, self.dtype) for layer in self.built(seed, check)]
            self.faithful = all(np.array_equal(out[j].view(np.uint8), layers[j].view(np.uint8))
                                for j in range(check))
            if not self.faithful:
                return self._layers(seed, count)
        return out


_NO_INITIALIZER = {
    "lecun": "paddle.nn.initializer has no LeCun initializer",
    "variance-scaling": "paddle.nn.initializer has no variance-scaling initializer",
    "sparse": "paddle.nn.initializer has no sparse initializer",
    "eye": "paddle.nn.initializer has no identity initializer (Dirac is for 3-5-d convolution weights)",
    "delta-orthogonal": ("paddle.nn.initializer has no delta-orthogonal initializer (Dirac is the deterministic "
                         "identity; Orthogonal fills the whole kernel)"),
}


def _initializer(spec):
    """(class name in paddle.nn.initializer, kwargs) or the reason to skip."""
    if spec.scheme in _NO_INITIALIZER:
        return _NO_INITIALIZER[spec.scheme]
    if spec.scheme in ("xavier", "kaiming"):
        title = "Xavier" if spec.scheme == "xavier" else "Kaiming"
        if spec.dist == "truncated-normal":
            return f"paddle.nn.initializer has no truncated-normal {title} initializer"
        flavour = "Normal" if spec.dist == "normal" else "Uniform"
        if spec.scheme == "xavier":
            return f"Xavier{flavour}", {"gain": spec.effective_gain}
        if spec.effective_mode == "fan_avg":
            return "paddle.nn.initializer.Kaiming* has no fan_avg mode (mode is fan_in or fan_out)"
        return f"Kaiming{flavour}", {"negative_slope": 0.0 if spec.slope is None else spec.slope,
                                     "nonlinearity": spec.nonlinearity or "leaky_relu",
                                     "mode": spec.effective_mode}
    if spec.scheme == "trunc-normal":
        return "TruncatedNormal", {"mean": spec.mean, "std": spec.std, "a": spec.low, "b": spec.high}
    if spec.scheme == "normal":
        return "Normal", {"mean": spec.mean, "std": spec.std}
    if spec.scheme == "uniform":
        return "Uniform", {"low": spec.low, "high": spec.high}
    if spec.scheme == "orthogonal":
        return "Orthogonal", {"gain": 1.0 if spec.gain is None else spec.gain}
    if spec.scheme == "dirac":
        return "Dirac", {"groups": spec.effective_groups}
    if spec.scheme in ("constant", "zeros", "ones"):
        return "Constant", {"value": spec.constant_value}
    raise AssertionError(spec.scheme)
