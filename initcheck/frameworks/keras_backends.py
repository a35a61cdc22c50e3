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

import atexit
import importlib.util
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
from multiprocessing.connection import Connection

import numpy as np

from initcheck.errors import InputError
from initcheck.frameworks.base import Framework, Plan, Skip
from initcheck.frameworks.keras_common import call_text, default_layer, initializer_spec
from initcheck.laws import Constant, Uniform

#: Seconds the worker has to import Keras and its backend.
START_TIMEOUT = 300.0


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class WorkerError(InputError):
    """The worker failed; one line."""


class KerasWorker:
    """One child process running Keras on ``backend``; requests in order, one
    at a time (a lock), started lazily by :func:`worker`."""

    def __init__(self, backend: str):
        self.backend = backend
        self.title = f"keras-{backend}"
        self.lock = threading.Lock()
        self.process = None
        self.connection = None
        self.log = None
        self.info = None
        self.failure: str | None = None

    # ---------------------------------------------------------------- lifetime

    def start(self) -> None:
        if self.failure:
            raise WorkerError(self.failure)
        if importlib.util.find_spec("keras") is None:
            self._fail("keras is not installed (pip install keras)")
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["KERAS_BACKEND"] = self.backend
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_root(), env.get("PYTHONPATH")]))
        self.log = tempfile.TemporaryFile(prefix="initcheck-keras-worker-")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "initcheck.frameworks.keras_worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=self.log, env=env, close_fds=True,
            )
        except OSError as error:
            ours.close()
            self._fail(f"cannot start the worker: {error}")
        finally:
            theirs.close()
        self.connection = Connection(ours.detach())
        _STARTED.append(self)
        if not self.connection.poll(START_TIMEOUT):
            self.close()
            self._fail(f"the worker did not start in {START_TIMEOUT:g} s")
        self.info = self._answer()

    def _fail(self, message: str):
        self.failure = f"{self.title}: {message}"
        raise WorkerError(self.failure)

    def close(self) -> None:
        """Ask the worker to stop, then make sure it has (and reap it)."""
        process, connection = self.process, self.connection
        self.process = self.connection = None
        if connection is not None:
            try:
                connection.send(("close",))
            except (OSError, ValueError):
                pass
            connection.close()
        if process is not None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.log is not None:
            self.log.close()
            self.log = None

    def _last_log_line(self) -> str:
        if self.log is None:
            return ""
        self.log.flush()
        self.log.seek(0)
        lines = [line.strip() for line in self.log.read().decode(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def _died(self, doing: str):
        """The worker is gone: close it and raise its last words."""
        code = None
        if self.process is not None:
            try:
                code = self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        said = self._last_log_line()
        self.close()
        reason = said or (f"exit status {code}" if code is not None else "no answer")
        self.info = None
        raise WorkerError(f"{self.title}: the worker stopped while {doing}: {reason}")

    # ---------------------------------------------------------------- requests

    def _answer(self):
        try:
            answer = self.connection.recv()
        except (EOFError, OSError):
            self._died("starting" if self.info is None else "drawing")
        kind = answer[0]
        if kind == "error":
            if self.info is None:  # it could not start
                message = answer[1]
                self.close()
                self._fail(f"cannot start Keras on {self.backend}: {message}")
            raise WorkerError(f"{self.title}: {answer[1]}")
        if kind == "array":
            _, dtype, shape = answer
            from initcheck.lowp import sample_dtype

            out = np.empty(shape, dtype=sample_dtype(dtype))
            try:
                self.connection.recv_bytes_into(memoryview(out.reshape(-1).view(np.uint8)))
            except (EOFError, OSError):
                self._died("sending an array")
            return out
        if kind == "skip":
            return Skipped(answer[1])
        return answer[1]

    def request(self, *message):
        with self.lock:
            if self.connection is None:
                self.start()
            try:
                self.connection.send(message)
            except (OSError, ValueError):
                self._died(f"asked to {message[0]}")
            return self._answer()


class Skipped(str):
    """The worker's reason for a row it cannot draw."""


_WORKERS: dict[str, KerasWorker] = {}
_STARTED: list[KerasWorker] = []


def worker(backend: str) -> KerasWorker:
    if backend not in _WORKERS:
        _WORKERS[backend] = KerasWorker(backend)
    return _WORKERS[backend]


@atexit.register
def close_workers() -> None:
    """Every worker this process started, closed and reaped."""
    while _STARTED:
        _STARTED.pop().close()


_ROW_KEYS = iter(range(1, 2**62))


class _KerasOnBackend(Framework):
    backend = ""
    layout = "keras"

    @property
    def worker(self) -> KerasWorker:
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

