"""What Keras' initializers are, whatever runs them: Keras 3 on TensorFlow,
JAX or PyTorch, and legacy Keras 2 (``tf_keras``).  No framework is imported.

Both Keras generations name the same classes with the same arguments
(``keras/src/initializers/random_initializers.py``,
``tf_keras/src/initializers/initializers.py``), and both document:

* ``GlorotNormal``, ``HeNormal``, ``LecunNormal``: the normal truncated at two
  sigma with sigma = sqrt(variance) / 0.87962566103423978;
* ``GlorotUniform``, ``HeUniform``, ``LecunUniform``: U(+-sqrt(3 variance));
* ``VarianceScaling(scale, mode, distribution)``: ``truncated_normal`` (and its
  alias ``normal``), ``untruncated_normal``, ``uniform``; fans from
  ``compute_fans`` (``(*kernel, in, out)``: receptive field x in, x out);
* ``TruncatedNormal(mean, stddev)``: cut at mean +- 2 stddev, the bounds in
  stddevs and *no* variance correction;
* ``RandomNormal(mean, stddev)``, ``RandomUniform(minval, maxval)``;
* ``Orthogonal(gain)``, ``Identity(gain)`` (2-d only), ``Constant(value)``,
  ``Zeros()``, ``Ones()``; no sparse, Dirac or delta-orthogonal initializer.

:func:`initializer_spec` turns an :class:`~initcheck.schemes.InitSpec` into the
class name, keyword arguments and law of that call (the structured schemes'
laws come from the shape, :func:`initcheck.structured.expectation`).

Also here: the seeds as Keras takes them, and the process hygiene of importing
TensorFlow (:func:`tensorflow_import_hygiene`), shared by the ``keras`` and
``tf-keras`` adapters.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import random
from contextlib import contextmanager

import numpy as np

from initcheck.errors import InputError
from initcheck.frameworks import scaling
from initcheck.frameworks.base import native_stderr_silenced
from initcheck.laws import TruncatedNormal

CLASS_PREFIX = {"glorot": "Glorot", "he": "He", "lecun": "Lecun"}
#: The structured schemes' initializers: scheme -> class name.
STRUCTURED = {"orthogonal": "Orthogonal", "eye": "Identity", "constant": "Constant", "zeros": "Zeros",
              "ones": "Ones"}
NO_STRUCTURED = {
    "sparse": "keras.initializers has no sparse initializer",
    "dirac": "keras.initializers has no Dirac initializer (Identity is 2-d only)",
    "delta-orthogonal": "keras.initializers has no delta-orthogonal initializer",
}
#: Keras casts seed pairs to int32 with floormod(seed, 2**31 - 2).
SEED_MODULUS = 2**31 - 2
#: Steps of a batch's traced loop (``tf.map_fn``) that TensorFlow may run at
#: once.  Each step's calls are independent (every call has its own seed) and
#: ``map_fn`` keeps the order, so the values are those of one step at a time,
#: bit for bit; the steps are TensorFlow's dispatch of small ops, which then
#: overlap (a batch of 116,508 draws of (3, 3, 1, 1) on 2 cores: 0.30 s
#: against 0.54 s one step at a time).
PARALLEL_STEPS = 4


def call_text(name: str, kwargs: dict, module: str = "keras.initializers") -> str:
    """``keras.initializers.Name(k=v, ...)``, the row's API."""
    return f"{module}.{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


def integer_seed(seed: int) -> int:
    """The integer seed of a draw or a batch, as every Keras backend takes it
    (a positive int32: the TensorFlow and PyTorch backends' seed dtype)."""
    return seed % (2**31 - 1)


def generator_pairs(a: int, count: int) -> np.ndarray:
    """The seed pairs of the first ``count`` calls of ``SeedGenerator(a)``
    (``keras/src/random/seed_generator.py``: state ``[a, 0]``, ``next()``
    returns the state and adds ``[0, 1]``), as Keras casts them."""
    pairs = np.zeros((count, 2), dtype=np.int64)
    pairs[:, 0] = a % SEED_MODULUS
    pairs[:, 1] = np.arange(count) % SEED_MODULUS
    return pairs.astype(np.int32)


@contextmanager
def python_random_seeded(seed: int):
    """Python's ``random`` seeded with ``seed`` for the duration; its state restored after."""
    saved = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(saved)


def initializer_spec(spec, layer):
    """(class name, kwargs, law) of the Keras call for ``spec``, or the reason
    to skip; a structured scheme's law is None (it comes from the shape)."""
    if spec.structured:
        if spec.scheme in NO_STRUCTURED:
            return NO_STRUCTURED[spec.scheme]
        name = STRUCTURED[spec.scheme]
        if spec.scheme in ("orthogonal", "eye"):
            kwargs = {"gain": 1.0 if spec.gain is None else spec.gain}
        elif spec.scheme == "constant":
            kwargs = {"value": spec.constant_value}
        else:
            kwargs = {}
        return name, kwargs, None
    if spec.uses_fans:
        call = scaling.resolve(spec, normal_means="truncated-normal")
        law = call.law(layer.fan_in, layer.fan_out)
        if call.named:
            return f"{CLASS_PREFIX[call.named]}{'Uniform' if call.uniform else 'Normal'}", {}, law
        kwargs = {"scale": call.scale, "mode": call.mode, "distribution": call.distribution}
        return "VarianceScaling", kwargs, law
    if spec.scheme in ("normal", "uniform"):
        name = "RandomNormal" if spec.scheme == "normal" else "RandomUniform"
        kwargs = {"mean": spec.mean, "stddev": spec.std} if spec.scheme == "normal" else {"minval": spec.low, "maxval": spec.high}
        return name, kwargs, spec.law(layer.fan_in, layer.fan_out)
    # trunc-normal: Keras cuts at mean +- 2 stddev and nowhere else
    two = 2.0 * spec.std
    if math.isclose(spec.low, spec.mean - two, rel_tol=1e-9, abs_tol=1e-12) and math.isclose(
        spec.high, spec.mean + two, rel_tol=1e-9, abs_tol=1e-12
    ):
        law = TruncatedNormal(spec.mean, spec.std, spec.mean - two, spec.mean + two)
        return "TruncatedNormal", {"mean": spec.mean, "stddev": spec.std}, law
    return (
        f"keras.initializers.TruncatedNormal always cuts at mean ± 2 stddev "
        f"([{spec.mean - two:g}, {spec.mean + two:g}]), not at [{spec.low:g}, {spec.high:g}]"
    )


def default_layer(layer, module: str = "keras.layers", largest: int = 3):
    """(class name, args, input shape, call text) of the framework's own layer
    for ``layer`` (``Dense`` or ``ConvND``), or the reason to skip."""
    if len(layer.kernel) > largest:
        return f"{module} has no {len(layer.kernel)}-d convolution"
    if layer.kernel:
        name = f"Conv{len(layer.kernel)}D"
        args = (layer.out_features, tuple(layer.kernel))
        input_shape = (None, *([None] * len(layer.kernel)), layer.in_features)
    else:
        name, args, input_shape = "Dense", (layer.out_features,), (None, layer.in_features)
    return name, args, input_shape, f"{module}.{name}({', '.join(map(str, args))})"


class BelowError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


@contextmanager
def tensorflow_quiet(native: bool = True):
    """TensorFlow's (and absl's, and JAX's backend) Python warnings, and with
    ``native`` TensorFlow's C++ logging on fd 2, kept out for the duration
    only; no logger's level is changed."""
    loggers = [logging.getLogger(name) for name in ("tensorflow", "absl", "jax._src.xla_bridge")]
    quiet = BelowError()
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        if native:
            with native_stderr_silenced():
                yield
        else:
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)


@contextmanager
def tensorflow_import_hygiene():
    """Import TensorFlow (and what sits on it) inside this, and the caller's
    process is as it was: the import's log noise is kept out, the
    ``TF_CPP_MIN_LOG_LEVEL`` that importing JAX sets where unset is put back
    (TensorFlow has read it by then), and the states of Python's and NumPy's
    global generators, which the import draws from, are restored."""
    log_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with tensorflow_quiet():
            yield
    finally:
        if log_level is None:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
        else:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = log_level
        random.setstate(python_state)
        np.random.set_state(numpy_state)


@contextmanager
def tensorflow_import():
    """Import TensorFlow (and tf.keras, or Keras 3 on it) inside this:
    :func:`tensorflow_import_hygiene`, and ``KERAS_BACKEND`` set to
    ``tensorflow`` for the import only, and only when the caller set none and
    Keras is not imported yet (TensorFlow's import imports Keras 3)."""
    choose_backend = "keras" not in sys.modules and "KERAS_BACKEND" not in os.environ
    if choose_backend:
        os.environ["KERAS_BACKEND"] = "tensorflow"
    try:
        with tensorflow_import_hygiene():
            yield
    finally:
        if choose_backend:
            os.environ.pop("KERAS_BACKEND", None)


def tf_device(device: str) -> str:
    """initcheck's ``cpu`` / ``cuda:N`` as a TensorFlow device name."""
    return "/CPU:0" if device == "cpu" else f"/GPU:{device.split(':')[1]}"


def tensorflow_check_device(tf, device: str, who: str) -> None:
    """InputError when TensorFlow sees no GPU ``device`` (``cuda:N``); ``who``
    names the framework in the message."""
    if device == "cpu":
        return
    with tensorflow_quiet():
        gpus = tf.config.list_physical_devices("GPU")
    if int(device.split(":")[1]) >= len(gpus):
        raise InputError(f"{who}/TensorFlow {tf.__version__} cannot use {device}: it sees {len(gpus)} GPU(s)")


def tensorflow_devices(tf) -> list[str]:
    """The devices TensorFlow sees, as ``CPU:0``, ``GPU:1``."""
    with tensorflow_quiet():
        found = tf.config.list_physical_devices()
    return [f"{d.device_type}:{d.name.rsplit(':', 1)[-1]}" for d in found]


class LayerKernels:
    """``draw_batch`` of a Keras layer's default kernel: draw j is the kernel
    of the j-th of ``count`` unseeded layers built one after another with
    Python's ``random`` seeded with the batch's seed.

    Each layer's initializer takes its seed from Python's ``random`` when it is
    built, so the batch calls the layers' own ``kernel_initializer`` (taken
    from a real layer) with the seeds those layers would take,
    ``seeds(seed, count)``, through ``batcher(initializer)`` (one
    ``tf.function`` of real calls).  On the first batch its first two draws are
    compared with two really built layers; should they ever differ (a Keras
    whose layer does more than call its initializer) every draw builds its
    layer.  ``built(seed, count)`` builds ``count`` real layers and stacks
    their kernels.  The Keras 3 and the tf.keras adapters differ only in
    ``seeds``, ``batcher`` and ``built``.
    """

    def __init__(self, construct, seeds, batcher, built):
        self.construct, self.seeds, self.make_batcher, self.built = construct, seeds, batcher, built
        self.batcher = None
        self.faithful = None

    def __call__(self, seed: int, count: int):
        if self.faithful is False:
            return self.built(seed, count)
        if self.batcher is None:
            with python_random_seeded(0):
                own = self.construct().kernel_initializer
            self.batcher = self.make_batcher(own)
        drawn = self.batcher.draws(self.seeds(seed, count))
        if self.faithful is None:
            check = min(count, 2)
            self.faithful = bool(np.array_equal(np.asarray(drawn[:check]), np.asarray(self.built(seed, check))))
            if not self.faithful:
                return self.built(seed, count)
        return drawn

