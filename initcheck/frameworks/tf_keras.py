"""Keras 3 adapter (TensorFlow backend): ``keras.initializers`` called for real.

Keras documents, and draws:

* ``GlorotNormal``, ``HeNormal``, ``LecunNormal``: the normal truncated at two
  sigma with sigma = sqrt(variance) / 0.87962566103423978;
* ``GlorotUniform``, ``HeUniform``, ``LecunUniform``: U(+-sqrt(3 variance));
* ``VarianceScaling(scale, mode, distribution)``: ``truncated_normal`` (and its
  alias ``normal``), ``untruncated_normal``, ``uniform``;
* ``TruncatedNormal(mean, stddev)``: cut at mean +- 2 stddev, *no* correction,
  so it can express ``trunc-normal`` only when the bounds are mean +- 2 std.

Kernels are ``(*kernel, in, out)``.  Each draw builds the initializer with an
integer seed (Keras then draws deterministically) under ``tf.device``.
TensorFlow's import-time log noise is silenced before the import.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from initcheck.errors import InputError  # noqa: E402
from initcheck.frameworks import scaling  # noqa: E402
from initcheck.frameworks.base import Framework, Plan, Skip, native_stderr_silenced  # noqa: E402

with native_stderr_silenced():
    import tensorflow as tf
    import keras

    tf.config.list_physical_devices()  # device discovery logs too ("failed call to cuInit")
    tf.zeros(1)  # and so does the first op, which creates the context

tf.get_logger().setLevel("ERROR")

from initcheck.laws import Constant, TruncatedNormal, Uniform  # noqa: E402

_CLASS = {"glorot": "Glorot", "he": "He", "lecun": "Lecun"}


def tf_device(device: str) -> str:
    """initcheck's ``cpu`` / ``cuda:N`` as a TensorFlow device name."""
    return "/CPU:0" if device == "cpu" else f"/GPU:{device.split(':')[1]}"


def _call_text(name: str, kwargs: dict) -> str:
    return f"keras.initializers.{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


class Keras(Framework):
    name = "keras"
    title = "Keras"

    def version(self) -> str:
        return f"keras {keras.__version__} (tensorflow {tf.__version__})"

    def check_device(self, device: str) -> None:
        if device == "cpu":
            return
        gpus = tf.config.list_physical_devices("GPU")
        index = int(device.split(":")[1])
        if index >= len(gpus):
            raise InputError(f"Keras/TensorFlow {tf.__version__} cannot use {device}: it sees {len(gpus)} GPU(s)")

    def fans(self, layer):
        from keras.src.initializers.random_initializers import compute_fans

        return compute_fans(layer.shape("keras"))

    def devices(self):
        return [f"{d.device_type}:{d.name.rsplit(':', 1)[-1]}" for d in tf.config.list_physical_devices()]

    def default_rows(self, layer, device, dtype):
        """Dense / ConvND: kernel GlorotUniform, U(+-sqrt(6 / (fan_in + fan_out))); bias zeros."""
        if len(layer.kernel) > 3:
            return [("kernel", Skip(self.name, "keras.layers", f"keras.layers has no {len(layer.kernel)}-d convolution"))]
        if layer.kernel:
            name = f"Conv{len(layer.kernel)}D"
            args = (layer.out_features, layer.kernel)
            input_shape = (None, *([None] * len(layer.kernel)), layer.in_features)
        else:
            name, args, input_shape = "Dense", (layer.out_features,), (None, layer.in_features)
        call = f"keras.layers.{name}({', '.join(map(str, args))})"
        bound = math.sqrt(6.0 / (layer.fan_in + layer.fan_out))

        def parameter(attribute):
            def draw(seed: int):
                keras.utils.set_random_seed(seed % (2**31 - 1))  # unseeded layers draw from the global seed
                with tf.device(tf_device(device)):
                    built = getattr(keras.layers, name)(*args, dtype=dtype)
                    built.build(input_shape)
                    return tf.convert_to_tensor(getattr(built, attribute))

            return draw

        kernel = Plan(self.name, f"{call}.kernel", Uniform(-bound, bound), layer.shape("keras"), device, dtype,
                      parameter("kernel"))
        bias = Plan(self.name, f"{call}.bias", Constant(0.0), (layer.out_features,), device, dtype,
                    parameter("bias"), samples=10 * layer.out_features)
        return [("kernel", kernel), ("bias", bias)]

    def plan(self, spec, layer, device, dtype):
        shape = layer.shape("keras")
        found = _initializer(spec, layer)
        if isinstance(found, str):
            return Skip(self.name, "keras.initializers", found, device, dtype, shape)
        name, kwargs, law = found
        initializer_class = getattr(keras.initializers, name)

        def draw(seed: int):
            initializer = initializer_class(**kwargs, seed=seed % (2**31 - 1))
            with tf.device(tf_device(device)):
                return initializer(shape, dtype=dtype)

        return Plan(self.name, _call_text(name, kwargs), law, shape, device, dtype, draw)


def _initializer(spec, layer):
    """(class name, kwargs, law) or the reason to skip."""
    if spec.uses_fans:
        call = scaling.resolve(spec, normal_means="truncated-normal")
        law = call.law(layer.fan_in, layer.fan_out)
        if call.named:
            return f"{_CLASS[call.named]}{'Uniform' if call.uniform else 'Normal'}", {}, law
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
