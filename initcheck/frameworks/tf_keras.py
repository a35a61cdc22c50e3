"""Keras 3 adapter (TensorFlow backend): ``keras.initializers`` called for real.

Keras documents, and draws:

* ``GlorotNormal``, ``HeNormal``, ``LecunNormal``: the normal truncated at two
  sigma with sigma = sqrt(variance) / 0.87962566103423978;
* ``GlorotUniform``, ``HeUniform``, ``LecunUniform``: U(+-sqrt(3 variance));
* ``VarianceScaling(scale, mode, distribution)``: ``truncated_normal`` (and its
  alias ``normal``), ``untruncated_normal``, ``uniform``;
* ``TruncatedNormal(mean, stddev)``: cut at mean +- 2 stddev, *no* correction,
  so it can express ``trunc-normal`` only when the bounds are mean +- 2 std.

* ``Orthogonal(gain)``: the kernel viewed as ``(prod(shape[:-1]), shape[-1])``
  is gain x a Haar matrix with orthonormal rows or columns (the QR of a normal
  matrix with R's diagonal signs moved into Q); ``Identity(gain)``: 2-d only,
  gain x ``eye(*shape)``; ``Constant(value)``, ``Zeros()``, ``Ones()``.  Their
  laws and per-draw checks are :func:`initcheck.structured.expectation`'s on
  the Keras shape.  Keras has no sparse, Dirac or delta-orthogonal initializer.

Which class and arguments express a scheme, and its law, are
:mod:`initcheck.frameworks.keras_common`'s (shared with Keras 3 on JAX and
PyTorch and with Keras 2).  Kernels are ``(*kernel, in, out)``.  A single draw builds the initializer with
an integer seed (Keras then draws deterministically) under ``tf.device``;
``Identity`` and the constants take no seed and are drawn ten times, one call
each.

Small draws come in batches (``Plan.draw_batch``).  Keras documents a
``keras.random.SeedGenerator`` as the seed that makes one initializer give new
values on every call; call j of ``X(seed=SeedGenerator(a))`` draws with the
seed pair ``[a, j]``.  A batch calls the real initializer once per draw, on the
real per-draw shape, inside one ``tf.function`` (a ``tf.map_fn`` over groups of
sixteen calls, compiled once per row), with a seed generator that hands call j
the pair ``[a, j]`` from a table instead of from a variable, so draw j of the
batch is bit for bit call j of ``X(seed=SeedGenerator(a))``, with ``a`` from
the batch's seed.  Graph mode runs the same kernels as eager mode (no XLA:
XLA draws a truncated normal with another algorithm).  Keras' random functions
take only an integer or a SeedGenerator as seed, and TensorFlow's
``vectorized_map`` runs stateless random ops as a sequential loop anyway, so a
batch is a loop of real calls, not one vectorized op.

Layer defaults build a real ``keras.layers.Dense`` / ``ConvND``, named, so
Keras' layer-name counters are not advanced.  An unseeded layer's initializer
takes its seed from Python's ``random`` (``keras.random`` ``make_default_seed``)
when the layer is constructed, so a draw seeds Python's ``random`` for the
construction only and restores its state.  The kernel's batch is that same
sequence without the layers: Keras' ``make_default_seed`` called once per draw
and the layer's own ``kernel_initializer`` (taken from a real layer) called with
each of those seeds; it is checked against really built layers once per row
and falls back to building them if it ever differs.

The caller's process is left as it was:

* TensorFlow's import-time C++ log noise goes to /dev/null during the import
  only (file descriptor 2 is restored right after), and so does what its
  context logs when it starts, on the first draw; no op runs at import.
* initcheck sets no ``TF_CPP_MIN_LOG_LEVEL``: TensorFlow reads it once, at
  import, so a level set then would silence the caller's own TensorFlow logs
  for good.  TensorFlow imports JAX, whose import sets it to 1 where unset; the
  caller's value (or its absence) is put back after the import.  The other
  variables TensorFlow's import sets (``TF2_BEHAVIOR``, ...) it reads later,
  and keeps.
* ``KERAS_BACKEND`` is set to ``tensorflow`` during the import only, and only
  when the caller set none and Keras was not imported yet.  Keras imported
  with another backend makes every Keras row a one-line :class:`InputError`.
* TensorFlow's Python warnings are filtered (a logging filter; the logger's
  level is untouched) only while this adapter imports, traces or starts devices.
* No global RNG is left changed: importing TensorFlow draws from Python's and
  NumPy's global generators, whose states are put back after the import;
  Python's ``random`` is seeded for a layer's construction only and restored
  after; TensorFlow's and Keras' global generators are never touched.
"""

from __future__ import annotations

import copy
import math
import sys

import numpy as np

from initcheck.errors import InputError
from initcheck.frameworks.base import Framework, Plan, Skip
from initcheck.frameworks.keras_common import (
    PARALLEL_STEPS,
    tensorflow_import,
    tf_device,
    tensorflow_check_device,
    tensorflow_devices,
    LayerKernels,
    SEED_MODULUS as _SEED_MODULUS,
    call_text as _call_text,
    default_layer,
    generator_pairs,
    initializer_spec as _initializer,
    integer_seed as _batch_seed,
    python_random_seeded,
    tensorflow_quiet as _quiet,
)
from initcheck.laws import Constant, Uniform


def _import():
    """tensorflow and keras, imported without leaving settings behind."""
    keras_imported = "keras" in sys.modules
    # TensorFlow imports JAX, whose import sets TF_CPP_MIN_LOG_LEVEL where unset; put back after
    with tensorflow_import():
        import tensorflow as tf
        import keras
    backend = keras.backend.backend()
    problem = None
    if backend != "tensorflow":
        where = "is already imported" if keras_imported else "imports (KERAS_BACKEND or ~/.keras/keras.json)"
        problem = f"keras {where} with the {backend} backend; the keras framework needs tensorflow"
    return tf, keras, problem


tf, keras, _BACKEND_PROBLEM = _import()

from keras.src.random.seed_generator import make_default_seed  # noqa: E402

#: Real initializer calls traced into one step of a batch's loop: fewer loop
#: steps per draw, a trace still short (about 0.2 s).
_GROUP = 16
_started = False


def _start() -> None:
    """Create TensorFlow's context (it logs its devices as it does) quietly, once."""
    global _started
    if not _started:
        with _quiet():
            tf.config.list_logical_devices()
        _started = True


class SeedTable(keras.random.SeedGenerator):
    """A ``keras.random.SeedGenerator`` whose ``next()`` gives the seed pair set
    in :attr:`current` (a traced int32 tensor), so a traced loop can hand each
    real initializer call its own pair without a variable between the calls.
    Keras' ``draw_seed`` takes any SeedGenerator's ``next()`` as the seed."""

    def __init__(self):  # no state variable and no name: the table is the state
        self.current = None

    def next(self, ordered=True):
        return self.current


class Batcher:
    """``draws(pairs)``: the initializer called once per seed pair, on ``shape``.

    ``initializer`` is a real Keras initializer; a shallow copy of it, with a
    :class:`SeedTable` as its seed, is what the traced loop calls, so its class
    and every setting stay the initializer's own.  ``pairs`` is an int32 array
    ``(count, 2)``; the result is ``(count, *shape)``, draw j made with pair j.
    """

    def __init__(self, initializer, shape: tuple[int, ...], dtype: str, device: str):
        self.shape, self.dtype, self.device = tuple(shape), dtype, tf_device(device)
        table = SeedTable()
        called = copy.copy(initializer)
        called.seed = table
        group_shape = tf.TensorSpec([_GROUP, *self.shape], tf.as_dtype(dtype))

        def group(pairs):
            drawn = []
            for pair in tf.unstack(pairs, num=_GROUP):
                table.current = pair
                drawn.append(called(self.shape, dtype=dtype))
            return tf.stack(drawn)

        @tf.function(autograph=False, input_signature=[tf.TensorSpec([None, _GROUP, 2], tf.int32)])
        def loop(groups):
            drawn = tf.map_fn(group, groups, fn_output_signature=group_shape, parallel_iterations=PARALLEL_STEPS)
            return tf.reshape(drawn, [-1, *self.shape])

        self._loop = loop
        self._traced = False

    def draws(self, pairs: np.ndarray):
        count = len(pairs)
        padded = -count % _GROUP
        if padded:
            pairs = np.concatenate([pairs, np.repeat(pairs[-1:], padded, axis=0)])
        groups = np.ascontiguousarray(pairs, dtype=np.int32).reshape(-1, _GROUP, 2)
        if not self._traced:
            _start()
            with _quiet(), tf.device(self.device):
                out = self._loop(groups)
            self._traced = True
        else:
            with tf.device(self.device):
                out = self._loop(groups)
        return out[:count] if padded else out


def default_seed_pairs(seed: int, count: int) -> np.ndarray:
    """The pairs of ``count`` unseeded initializers built one after another with
    Python's ``random`` seeded with ``seed``: ``[make_default_seed(), 0]`` each,
    Python's ``random`` restored after."""
    with python_random_seeded(seed):
        firsts = [make_default_seed() for _ in range(count)]
    pairs = np.zeros((count, 2), dtype=np.int64)
    pairs[:, 0] = np.asarray(firsts, dtype=np.int64) % _SEED_MODULUS
    return pairs.astype(np.int32)


class Keras(Framework):
    name = "keras"
    title = "Keras"

    def version(self) -> str:
        return f"keras {keras.__version__} (tensorflow {tf.__version__})"

    @staticmethod
    def _require_tensorflow() -> None:
        if _BACKEND_PROBLEM:
            raise InputError(_BACKEND_PROBLEM)

    def check_device(self, device: str) -> None:
        self._require_tensorflow()
        tensorflow_check_device(tf, device, "Keras")

    def fans(self, layer):
        from keras.src.initializers.random_initializers import compute_fans

        return compute_fans(layer.shape("keras"))

    def devices(self):
        return tensorflow_devices(tf)

    def default_rows(self, layer, device, dtype):
        """Dense / ConvND: kernel GlorotUniform, U(+-sqrt(6 / (fan_in + fan_out))); bias zeros."""
        self._require_tensorflow()
        found = default_layer(layer)
        if isinstance(found, str):
            return [("kernel", Skip(self.name, "keras.layers", found))]
        name, args, input_shape, call = found
        bound = math.sqrt(6.0 / (layer.fan_in + layer.fan_out))
        layer_class = getattr(keras.layers, name)
        shape = layer.shape("keras")

        def construct():
            # named, so Keras' layer-name counters stay where the caller left them
            built = layer_class(*args, dtype=dtype, name=f"initcheck_{name.lower()}")
            built.build(input_shape)
            return built

        def build(seed: int):
            """One real layer, its unseeded initializers seeded from Python's random."""
            _start()
            with python_random_seeded(seed), tf.device(tf_device(device)):
                return construct()

        def parameter(attribute):
            def draw(seed: int):
                return tf.convert_to_tensor(getattr(build(seed), attribute))

            return draw

        kernel_batch = _layer_kernels(construct, shape, dtype, device)
        kernel = Plan(self.name, f"{call}.kernel", Uniform(-bound, bound), shape, device, dtype,
                      parameter("kernel"), draw_batch=kernel_batch)
        bias = Plan(self.name, f"{call}.bias", Constant(0.0), (layer.out_features,), device, dtype,
                    parameter("bias"), samples=10 * layer.out_features)
        return [("kernel", kernel), ("bias", bias)]

    def plan(self, spec, layer, device, dtype):
        self._require_tensorflow()
        shape = layer.shape("keras")
        found = _initializer(spec, layer)
        if isinstance(found, str):
            return Skip(self.name, "keras.initializers", found, device, dtype, shape)
        name, kwargs, law = found
        initializer_class = getattr(keras.initializers, name)
        if spec.structured:
            return self._structured_plan(spec, name, kwargs, initializer_class, shape, device, dtype)

        def draw(seed: int):
            _start()
            initializer = initializer_class(**kwargs, seed=_batch_seed(seed))
            with tf.device(tf_device(device)):
                return initializer(shape, dtype=dtype)

        batcher = None

        def draw_batch(seed: int, count: int):
            """Calls 0 .. count-1 of ``initializer_class(**kwargs, seed=SeedGenerator(seed'))``."""
            nonlocal batcher
            if batcher is None:
                batcher = Batcher(initializer_class(**kwargs, seed=0), shape, dtype, device)
            return batcher.draws(generator_pairs(_batch_seed(seed), count))

        return Plan(self.name, _call_text(name, kwargs), law, shape, device, dtype, draw, draw_batch=draw_batch)


    def _structured_plan(self, spec, name, kwargs, initializer_class, shape, device, dtype):
        """Orthogonal (seeded, batched as the others), Identity and the constants (no seed)."""
        from initcheck.structured import expectation

        law, draw_checks = expectation(spec, shape, "keras")
        api = _call_text(name, kwargs)
        if spec.deterministic:
            def fixed(seed: int):
                _start()
                with tf.device(tf_device(device)):
                    return initializer_class(**kwargs)(shape, dtype=dtype)

            return Plan(self.name, api, law, shape, device, dtype, fixed, samples=10 * math.prod(shape),
                        draw_checks=draw_checks)

        def draw(seed: int):
            _start()
            initializer = initializer_class(**kwargs, seed=_batch_seed(seed))
            with tf.device(tf_device(device)):
                return initializer(shape, dtype=dtype)

        try:  # a dtype its QR has no kernel for (bfloat16)
            _start()
            with _quiet(native=False), tf.device(tf_device(device)):
                initializer_class(**kwargs, seed=0)((2, 2), dtype=dtype)
        except Exception as error:  # TensorFlow raises its own error types
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            return Skip(self.name, api, f"{api} raises on {dtype} {device}: {reason}", device, dtype, shape)
        batcher = None

        def draw_batch(seed: int, count: int):
            nonlocal batcher
            if batcher is None:
                batcher = Batcher(initializer_class(**kwargs, seed=0), shape, dtype, device)
            return batcher.draws(generator_pairs(_batch_seed(seed), count))

        return Plan(self.name, api, law, shape, device, dtype, draw, draw_batch=draw_batch, draw_checks=draw_checks)


def _layer_kernels(construct, shape, dtype, device) -> LayerKernels:
    """The default kernel's batch (:class:`~initcheck.frameworks.keras_common.LayerKernels`)."""

    def built(seed: int, count: int):
        _start()
        with python_random_seeded(seed), tf.device(tf_device(device)):
            return tf.stack([tf.convert_to_tensor(construct().kernel) for _ in range(count)])

    return LayerKernels(construct, default_seed_pairs, lambda own: Batcher(own, tuple(shape), dtype, device), built)
