"""Keras 3 on its JAX and PyTorch backends: ``-f keras-jax`` and ``-f keras-torch``.

The same ``keras.initializers`` classes as the ``keras`` framework, with the
same documented laws (:mod:`initcheck.frameworks.keras_common`), drawn by
Keras' JAX or PyTorch backend.  Keras fixes its backend once per process, so
the calls run in a child process per backend
(:mod:`initcheck.frameworks.keras_worker`, started on first use with
``KERAS_BACKEND`` in its own environment only); the plans, the table and the
reports stay here, in the caller's process, which never imports Keras for
these rows.  ``draw(seed)`` asks the worker for one real call; ``draw_batch``
for a whole batch in one request (JAX: ``jax.vmap`` of the real initializer
over the seed pairs of a ``SeedGenerator``; PyTorch: a loop of real calls in
the worker).  Arrays come back as raw bytes.

What the backends really do (``keras/src/backend/{jax,torch}/random.py``):

* JAX: ``truncated_normal`` is ``jax.random.truncated_normal(lower=-2,
  upper=2)`` (inverse CDF, exactly within the bounds).  ``dtype="float64"``
  needs JAX's x64 mode (without it Keras returns float32); float64 rows run
  in ``jax.enable_x64``.  ``Orthogonal``'s QR has no float16/bfloat16 kernel:
  a Skip.
* PyTorch: ``truncated_normal`` draws four normals per value and keeps the
  first inside (-2, 2); when none of the four is inside (probability
  P(|Z| > 2)^4, about 4.3e-6) it keeps the first anyway, so about 4 values in
  a million lie beyond two stddevs, against Keras' documentation ("values
  more than two standard deviations from the mean are discarded and
  re-drawn"): every truncated-normal row (``GlorotNormal``, ``HeNormal``,
  ``LecunNormal``, ``VarianceScaling`` truncated, ``TruncatedNormal``) fails
  its bounds at enough samples.  A seed is ``(first + second) & 0xFFFFFFFF``
  of the pair: 32 bits, and ``SeedGenerator(a)``'s call j is
  ``SeedGenerator(a + 1)``'s call j - 1.  ``Orthogonal`` on float16/bfloat16:
  ``geqrf`` has no CPU kernel, a Skip.

Errors (the worker cannot start, dies, or Keras raises) are one-line
:class:`InputError`\\ s.  The worker's stderr goes to a temporary file (its last
line is the message when it dies), its stdout to /dev/null; it is closed and
reaped when the caller's process exits.
"""

from __future__ import annotations

import math

from initcheck.errors import InputError
from initcheck.frameworks.base import Framework, Plan, Skip
from initcheck.frameworks.worker_process import Skipped, WorkerProcess
from initcheck.frameworks.keras_common import call_text, default_layer, initializer_spec
from initcheck.laws import Constant, Uniform

_WORKERS: dict[str, WorkerProcess] = {}


def new_worker(backend: str) -> WorkerProcess:
    """A child process for Keras on ``backend`` (not started yet)."""
    return WorkerProcess(f"keras-{backend}", "initcheck.frameworks.keras_worker", env={"KERAS_BACKEND": backend},
                         requires=("keras", "pip install keras"), what=f"Keras on {backend}")


def worker(backend: str) -> WorkerProcess:
    """The one child process of ``backend`` (started on its first request)."""
    if backend not in _WORKERS:
        _WORKERS[backend] = new_worker(backend)
    return _WORKERS[backend]


_ROW_KEYS = iter(range(1, 2**62))


class _KerasOnBackend(Framework):
    backend = ""
    layout = "keras"

    @property
    def worker(self) -> WorkerProcess:
        return worker(self.backend)

    def version(self) -> str:
        info = self.worker.request("hello")
        return f"keras {info['keras']} ({self.backend} {info['backend_version']})"

    def check_device(self, device: str) -> None:
        if device == "cpu":
            self.worker.request("hello")
            return
        gpus = self.worker.request("gpus")
        if int(device.split(":")[1]) >= gpus:
            raise InputError(f"Keras on {self.backend} cannot use {device}: it sees {gpus} GPU(s)")

    def fans(self, layer):
        return tuple(self.worker.request("fans", layer.shape("keras")))

    def devices(self):
        return self.worker.request("devices")

    def _row(self, description: dict):
        """(row key, None) once the worker holds the row, or (None, reason)."""
        key = next(_ROW_KEYS)
        answer = self.worker.request("plan", key, description)
        return (None, str(answer)) if isinstance(answer, Skipped) else (key, None)

    def _draws(self, key: int, batched: bool = True):
        request = self.worker.request

        def draw(seed: int):
            return request("draw", key, seed)

        def draw_batch(seed: int, count: int):
            return request("batch", key, seed, count)

        return draw, (draw_batch if batched else None)

    def plan(self, spec, layer, device, dtype):
        shape = layer.shape("keras")
        found = initializer_spec(spec, layer)
        if isinstance(found, str):
            return Skip(self.name, "keras.initializers", found, device, dtype, shape)
        name, kwargs, law = found
        api = call_text(name, kwargs)
        draw_checks, samples = None, None
        if spec.structured:
            from initcheck.structured import expectation

            law, draw_checks = expectation(spec, shape, "keras")
            samples = 10 * math.prod(shape) if spec.deterministic else None
        key, reason = self._row({
            "kind": "initializer", "name": name, "kwargs": kwargs, "shape": shape, "dtype": dtype,
            "device": device, "deterministic": bool(spec.structured and spec.deterministic),
            "probe": bool(spec.structured),  # Orthogonal's QR on a dtype without a kernel
        })
        if reason:
            return Skip(self.name, api, f"{api} raises on {dtype} {device}: {reason}", device, dtype, shape)
        draw, draw_batch = self._draws(key, batched=not (spec.structured and spec.deterministic))
        return Plan(self.name, api, law, shape, device, dtype, draw, samples=samples, draw_batch=draw_batch,
                    draw_checks=draw_checks)

    def default_rows(self, layer, device, dtype):
        """Dense / ConvND: kernel GlorotUniform, U(+-sqrt(6 / (fan_in + fan_out))); bias zeros."""
        found = default_layer(layer)
        if isinstance(found, str):
            return [("kernel", Skip(self.name, "keras.layers", found))]
        name, args, input_shape, call = found
        bound = math.sqrt(6.0 / (layer.fan_in + layer.fan_out))
        rows = []
        for attribute, law, shape in (("kernel", Uniform(-bound, bound), layer.shape("keras")),
                                      ("bias", Constant(0.0), (layer.out_features,))):
            key, reason = self._row({"kind": "layer", "name": name, "args": args, "input_shape": input_shape,
                                     "shape": shape, "dtype": dtype, "device": device, "attribute": attribute})
            if reason:
                rows.append((attribute, Skip(self.name, f"{call}.{attribute}", reason, device, dtype, shape)))
                continue
            draw, draw_batch = self._draws(key, batched=attribute == "kernel")
            samples = 10 * layer.out_features if attribute == "bias" else None
            rows.append((attribute, Plan(self.name, f"{call}.{attribute}", law, shape, device, dtype, draw,
                                         samples=samples, draw_batch=draw_batch)))
        return rows


class KerasJax(_KerasOnBackend):
    name = "keras-jax"
    title = "Keras (JAX backend)"
    backend = "jax"


class KerasTorch(_KerasOnBackend):
    name = "keras-torch"
    title = "Keras (PyTorch backend)"
    backend = "torch"

