"""Legacy Keras 2 (the ``tf_keras`` package) on TensorFlow: ``-f tf-keras``.

``tf_keras.initializers`` (``tf_keras/src/initializers/initializers.py``) names
the classes Keras 3 names, with the same arguments and laws
(:mod:`initcheck.frameworks.keras_common`): the named normals and
``VarianceScaling(distribution="truncated_normal")`` (``"normal"`` is its
alias) draw ``stateless_truncated_normal`` with sigma = sqrt(scale / n) /
0.87962566103423978, cut at two sigma; ``untruncated_normal`` and
``RandomNormal(mean, stddev)`` the plain normal; ``uniform`` U(+-sqrt(3 scale
/ n)) and ``RandomUniform(minval, maxval)``; ``TruncatedNormal(mean,
stddev)`` cut at mean +- 2 stddev (TensorFlow's truncated normal re-draws
outside two stddevs), no correction; ``Orthogonal(gain)`` the QR of a normal
matrix with R's diagonal signs moved into Q, of the kernel viewed as
``(prod(shape[:-1]), shape[-1])``; ``Identity(gain)`` 2-d only;
``Constant``, ``Zeros``, ``Ones``.  Fans are ``_compute_fans``'s.

Its initializers are *stateless* (``backend.RandomGenerator(seed,
rng_type="stateless")``): an instance seeded with ``s`` draws the stateless
op with the seed pair ``[s, 0]`` on every call, and an unseeded one takes
``random.randint(1, 1e9)`` from Python's ``random`` on its first call and keeps
it, so it too returns the same values every call.  A draw is therefore a
fresh initializer seeded with the draw's own seed, ``X(seed=s)(shape)``; the
seeds are 63-bit (the stateless ops take int64 seeds), so the draws of a row
never share one.

Batches (``Plan.draw_batch``): draw j of a batch is ``X(seed=s_j)(shape)``
with ``s_j`` the j-th 63-bit seed derived from the batch's seed; the calls are
traced into one ``tf.function`` (a ``tf.map_fn`` over groups of sixteen real
calls, each the initializer with its random generator's seed set to ``s_j``
from a table), graph mode, the eager kernels, no XLA.

Layer defaults build a real, named ``tf_keras.layers.Dense`` / ``ConvND``
(kernel ``GlorotUniform``, bias zeros) with Python's ``random`` seeded for the
construction only; the kernel's batch calls the layer's own initializer with
the seeds ``random.randint(1, 1e9)`` those layers would take, checked once
against really built layers.

Process hygiene as the ``keras`` adapter's: TensorFlow's import-time log
noise is kept out during the import only, ``TF_CPP_MIN_LOG_LEVEL`` and the
global RNG states are put back after it, ``KERAS_BACKEND`` (TensorFlow imports
Keras 3) is ``tensorflow`` during the import only and only when unset, and
TensorFlow's and Keras' global generators are never touched.
"""

from __future__ import annotations

import copy
import math
import random

import numpy as np

from initcheck.frameworks.base import Framework, Plan, Skip
from initcheck.frameworks.keras_common import (
    PARALLEL_STEPS,
    tensorflow_import,
    tf_device,
    tensorflow_check_device,
    tensorflow_devices,
    LayerKernels,
    call_text,
    default_layer,
    initializer_spec,
    python_random_seeded,
    tensorflow_quiet,
)
from initcheck.laws import Constant, Uniform


def _import():
    with tensorflow_import():
        import tensorflow as tf
        import tf_keras
    return tf, tf_keras


tf, tf_keras = _import()

MODULE = "tf_keras.initializers"
#: Real initializer calls traced into one step of a batch's loop.
_GROUP = 16
_started = False


def _start() -> None:
    global _started
    if not _started:
        with tensorflow_quiet():
            tf.config.list_logical_devices()
        _started = True


def draw_seeds(seed: int, count: int) -> np.ndarray:
    """The 63-bit seeds of the ``count`` draws of a batch with seed ``seed``."""
    state = np.random.SeedSequence(seed % 2**63).generate_state(count, np.uint64)
    return (state >> np.uint64(1)).astype(np.int64)


class Batcher:
    """``draws(seeds)``: ``initializer`` called once per seed, on ``shape``, as
    ``type(initializer)(..., seed=s)`` would (its stateless generator's seed set
    to ``s`` from a traced table), in one ``tf.function``."""

    def __init__(self, initializer, shape, dtype: str, device: str):
        self.shape, self.device = tuple(shape), tf_device(device)
        called = copy.copy(initializer)
        generator = copy.copy(initializer._random_generator)
        generator._maybe_init()  # built: a stateless generator whose seed is read per call
        called._random_generator = generator
        group_shape = tf.TensorSpec([_GROUP, *self.shape], tf.as_dtype(dtype))

        def group(seeds):
            drawn = []
            for seed in tf.unstack(seeds, num=_GROUP):
                generator._seed = seed
                called._used = False  # each call stands for a fresh initializer: no reuse warning
                drawn.append(called(self.shape, dtype=dtype))
            return tf.stack(drawn)

        @tf.function(autograph=False, input_signature=[tf.TensorSpec([None, _GROUP], tf.int64)])
        def loop(groups):
            drawn = tf.map_fn(group, groups, fn_output_signature=group_shape, parallel_iterations=PARALLEL_STEPS)
            return tf.reshape(drawn, [-1, *self.shape])

        self._loop, self._traced = loop, False

    def draws(self, seeds: np.ndarray):
        count = len(seeds)
        padded = -count % _GROUP
        if padded:
            seeds = np.concatenate([seeds, np.repeat(seeds[-1:], padded)])
        groups = np.ascontiguousarray(seeds, dtype=np.int64).reshape(-1, _GROUP)
        _start()
        if not self._traced:
            with tensorflow_quiet(), tf.device(self.device):
                out = self._loop(groups)
            self._traced = True
        else:
            with tf.device(self.device):
                out = self._loop(groups)
        return out[:count] if padded else out


class TfKeras(Framework):
    name = "tf-keras"
    title = "tf_keras (Keras 2)"

    def version(self) -> str:
        return f"tf_keras {tf_keras.__version__} (tensorflow {tf.__version__})"

    def check_device(self, device: str) -> None:
        tensorflow_check_device(tf, device, "tf_keras")

    def fans(self, layer):
        from tf_keras.src.initializers.initializers import _compute_fans

        return _compute_fans(layer.shape("keras"))

    def devices(self):
        return tensorflow_devices(tf)

    def plan(self, spec, layer, device, dtype):
        shape = layer.shape("keras")
        found = initializer_spec(spec, layer)
        if isinstance(found, str):
            return Skip(self.name, MODULE, found.replace("keras.initializers", MODULE), device, dtype, shape)
        name, kwargs, law = found
        initializer_class = getattr(tf_keras.initializers, name)
        api = call_text(name, kwargs, MODULE)
        draw_checks, samples = None, None
        if spec.structured:
            from initcheck.structured import expectation

            law, draw_checks = expectation(spec, shape, "keras")
            if spec.deterministic:
                def fixed(seed: int):
                    _start()
                    with tf.device(tf_device(device)):
                        return initializer_class(**kwargs)(shape, dtype=dtype)

                return Plan(self.name, api, law, shape, device, dtype, fixed, samples=10 * math.prod(shape),
                            draw_checks=draw_checks)
            try:  # a dtype its QR has no kernel for
                _start()
                with tensorflow_quiet(), tf.device(tf_device(device)):
                    initializer_class(**kwargs, seed=0)((2, 2), dtype=dtype)
            except Exception as error:  # TensorFlow raises its own error types
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                return Skip(self.name, api, f"{api} raises on {dtype} {device}: {reason}", device, dtype, shape)

        def draw(seed: int):
            _start()
            with tf.device(tf_device(device)):
                return initializer_class(**kwargs, seed=seed % 2**63)(shape, dtype=dtype)

        batcher = None

        def draw_batch(seed: int, count: int):
            """Draw j: ``initializer_class(**kwargs, seed=s_j)(shape)``."""
            nonlocal batcher
            if batcher is None:
                batcher = Batcher(initializer_class(**kwargs, seed=0), shape, dtype, device)
            return batcher.draws(draw_seeds(seed, count))

        return Plan(self.name, api, law, shape, device, dtype, draw, samples=samples, draw_batch=draw_batch,
                    draw_checks=draw_checks)

    def default_rows(self, layer, device, dtype):
        """Dense / ConvND: kernel GlorotUniform, U(+-sqrt(6 / (fan_in + fan_out))); bias zeros."""
        found = default_layer(layer, "tf_keras.layers")
        if isinstance(found, str):
            return [("kernel", Skip(self.name, "tf_keras.layers", found))]
        name, args, input_shape, call = found
        layer_class = getattr(tf_keras.layers, name)
        bound = math.sqrt(6.0 / (layer.fan_in + layer.fan_out))
        shape = layer.shape("keras")

        def construct():
            built = layer_class(*args, dtype=dtype, name=f"initcheck_{name.lower()}")
            built.build(input_shape)
            return built

        def parameter(attribute):
            def draw(seed: int):
                _start()
                with python_random_seeded(seed), tf.device(tf_device(device)):
                    return tf.convert_to_tensor(getattr(construct(), attribute))

            return draw

        kernel = Plan(self.name, f"{call}.kernel", Uniform(-bound, bound), shape, device, dtype, parameter("kernel"),
                      draw_batch=_layer_kernels(construct, shape, dtype, device))
        bias = Plan(self.name, f"{call}.bias", Constant(0.0), (layer.out_features,), device, dtype,
                    parameter("bias"), samples=10 * layer.out_features)
        return [("kernel", kernel), ("bias", bias)]


def _layer_seeds(seed: int, count: int) -> np.ndarray:
    """The seeds ``count`` unseeded tf.keras layers built one after another take,
    with Python's ``random`` seeded with ``seed``: ``random.randint(1, 1e9)``
    each (``RandomGenerator._create_seed``)."""
    with python_random_seeded(seed):
        return np.array([random.randint(1, int(1e9)) for _ in range(count)], dtype=np.int64)


def _layer_kernels(construct, shape, dtype, device) -> LayerKernels:
    """The default kernel's batch (:class:`~initcheck.frameworks.keras_common.LayerKernels`)."""

    def built(seed: int, count: int):
        _start()
        with python_random_seeded(seed), tf.device(tf_device(device)):
            return tf.stack([tf.convert_to_tensor(construct().kernel) for _ in range(count)])

    return LayerKernels(construct, _layer_seeds, lambda own: Batcher(own, tuple(shape), dtype, device), built)
