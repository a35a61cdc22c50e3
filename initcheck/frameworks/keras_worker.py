"""The child process that calls Keras 3 on the JAX or the PyTorch backend.

Keras fixes its backend when it is first imported (``KERAS_BACKEND``), once per
process, and the process that runs initcheck may hold Keras on TensorFlow
already; so the ``keras-jax`` and ``keras-torch`` rows run here, one long-lived
process per backend, started by :mod:`initcheck.frameworks.keras_backends`
with ``KERAS_BACKEND`` in this process's environment only::

    python -m initcheck.frameworks.keras_worker FD

``FD`` is this end of a socket pair, spoken as
:mod:`initcheck.frameworks.worker_process` describes; nothing of TensorFlow
is imported.

Seeds, as Keras takes them (``keras/src/random/seed_generator.py``
``draw_seed``): an integer seed ``s`` is the pair ``[s, 0]``; call j of an
initializer seeded with ``SeedGenerator(a)`` gets the pair ``[a, j]``.  Then

* JAX (``keras/src/backend/jax/random.py``): the pair, as uint32, *is* the
  ``jax.random`` key; a seed that is already a ``jax.Array`` is used as it is
  (``jax_draw_seed``), a traced one included.  A batch is ``jax.vmap`` of the
  real initializer, on the real shape, over the pairs ``[a, j]``, jitted once
  per row: draw j is bit for bit call j of ``X(seed=SeedGenerator(a))``.
* PyTorch (``keras/src/backend/torch/random.py`` ``torch_seed_generator``):
  a fresh ``torch.Generator`` seeded with ``(first + second) & 0xFFFFFFFF`` for
  every call; a ``torch.Generator`` cannot be vmapped, so a batch is a loop of
  real calls of ``X(seed=SeedGenerator(a))``, in this process, one request.

Layer defaults build a real, named ``keras.layers.Dense`` / ``ConvND`` with
Python's ``random`` seeded (an unseeded initializer takes
``make_default_seed()`` from it when the layer is constructed); the kernel's
batch calls the layer's own ``kernel_initializer`` with the seeds those layers
would take, checked once against really built layers (else every draw builds).
"""

from __future__ import annotations

import copy
import os
import sys
from contextlib import contextmanager, nullcontext

import numpy as np

from initcheck.frameworks.keras_common import generator_pairs, integer_seed, python_random_seeded
from initcheck.frameworks.worker_process import one_line, run_child

BACKEND = os.environ.get("KERAS_BACKEND", "")


class Backend:
    """What differs between Keras' JAX and PyTorch backends: devices,
    precision, host arrays and the batch."""

    def __init__(self, keras):
        self.keras = keras

    def device_name(self, device: str) -> str:
        raise NotImplementedError

    def scope(self, device: str, dtype: str):
        return self.keras.device(self.device_name(device))

    def host(self, x) -> np.ndarray:
        raise NotImplementedError

    def batch(self, make, shape, dtype, device, pairs):
        """``count`` draws: ``make(seed)`` is the initializer seeded with
        ``seed`` (an int, a SeedGenerator or a backend seed pair)."""
        raise NotImplementedError


class JaxBackend(Backend):
    name = "jax"

    def __init__(self, keras):
        super().__init__(keras)
        import jax

        self.jax = jax
        self.version = jax.__version__
        self._compiled = {}

    def device_name(self, device: str) -> str:
        return "cpu:0" if device == "cpu" else f"gpu:{device.split(':')[1]}"

    def devices(self):
        return [f"{d.platform}:{d.id} ({d.device_kind})" for d in self.jax.devices()]

    def gpus(self) -> int:
        try:
            return len(self.jax.devices("gpu"))
        except RuntimeError:
            return 0

    @contextmanager
    def scope(self, device, dtype):
        # float64 needs x64, for this row's traces and calls only (Keras on JAX
        # without it returns float32 for dtype="float64")
        with (self.jax.enable_x64(True) if dtype == "float64" else nullcontext()):
            with self.keras.device(self.device_name(device)):
                yield

    def host(self, x):
        return np.asarray(x)

    def single(self, row, make, seed: int):
        """``X(seed=seed)(shape, dtype)``, jitted once per row: the integer
        seed is the pair ``[seed, 0]`` (``draw_seed``), passed as that pair."""
        if "single" not in row:
            row["single"] = self.jax.jit(lambda pair: make(pair)(row["shape"], dtype=row["dtype"]))
        with self.scope(row["device"], row["dtype"]):
            return row["single"](np.array([seed, 0], dtype=np.uint32))

    def batch(self, key, make, shape, dtype, device, pairs):
        """``jax.vmap`` of ``make(pair)(shape, dtype)`` over the pairs, jitted
        once per (row, count); a shorter batch runs a larger compile and keeps
        its first draws (the pairs ``[a, j]`` of a longer run start with them)."""
        jax = self.jax
        count = len(pairs)
        larger = [c for (k, c) in self._compiled if k == key and c >= count]
        size = min(larger) if larger else count
        if (key, size) not in self._compiled:
            def one(pair):
                return make(pair)(shape, dtype=dtype)

            self._compiled[(key, size)] = jax.jit(jax.vmap(one))
        if size != count:
            pairs = np.concatenate([pairs, np.repeat(pairs[-1:], size - count, axis=0)])
        with self.scope(device, dtype):
            out = self._compiled[(key, size)](pairs.astype(np.uint32))
        return out if size == count else out[:count]


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, keras):
        super().__init__(keras)
        import torch

        self.torch = torch
        self.version = torch.__version__

    def device_name(self, device: str) -> str:
        return device

    def devices(self):
        found = ["cpu"]
        if self.torch.cuda.is_available():
            found += [f"cuda:{i} ({self.torch.cuda.get_device_name(i)})" for i in range(self.torch.cuda.device_count())]
        return found

    def gpus(self) -> int:
        return self.torch.cuda.device_count() if self.torch.cuda.is_available() else 0

    def single(self, row, make, seed: int):
        """``X(seed=seed)(shape, dtype)``, a real call."""
        with self.scope(row["device"], row["dtype"]):
            return row["class"](**row["kwargs"], seed=seed)(row["shape"], dtype=row["dtype"])

    def host(self, x):
        tensor = x.detach().cpu().contiguous()
        if tensor.dtype == self.torch.bfloat16:
            import ml_dtypes

            return tensor.view(self.torch.int16).numpy().view(ml_dtypes.bfloat16)
        return tensor.numpy()

    def batch(self, key, make, shape, dtype, device, pairs):
        """A loop of real calls: ``make(seed)`` once per draw.  With pairs
        ``[a, j]`` it is call j of one ``X(seed=SeedGenerator(a))``; pairs
        ``[s_j, 0]`` are the integer seeds ``s_j``."""
        torch, keras = self.torch, self.keras
        with self.scope(device, dtype):
            if np.all(pairs[:, 1] == np.arange(len(pairs))) and np.all(pairs[:, 0] == pairs[0, 0]):
                initializer = make(keras.random.SeedGenerator(int(pairs[0, 0])))
                drawn = [initializer(shape, dtype=dtype) for _ in range(len(pairs))]
            else:
                drawn = [make(int(first))(shape, dtype=dtype) for first in pairs[:, 0]]
            return torch.stack(drawn)


class Worker:
    """The handler of :func:`~initcheck.frameworks.worker_process.serve`: one
    method per request."""

    def __init__(self):
        self.rows: dict[int, dict] = {}
        import keras

        self.keras = keras
        if keras.backend.backend() != BACKEND:
            raise RuntimeError(f"keras imported with the {keras.backend.backend()} backend, not {BACKEND}")
        self.backend = {"jax": JaxBackend, "torch": TorchBackend}[BACKEND](keras)

    # ------------------------------------------------------------------ requests

    def hello(self):
        import keras

        return {"keras": keras.__version__, "backend": self.backend.name, "backend_version": self.backend.version,
                "tensorflow_imported": "tensorflow" in sys.modules}

    def devices(self):
        return self.backend.devices()

    def gpus(self):
        return self.backend.gpus()

    def fans(self, shape):
        from keras.src.initializers.random_initializers import compute_fans

        return compute_fans(tuple(shape))

    def plan(self, key: int, row: dict):
        """Make row ``key`` ready; a dtype or shape the backend refuses is
        ``("skip", reason)`` for a probe row, else an error."""
        row = dict(row)
        row["shape"] = tuple(row["shape"])
        if row["kind"] == "initializer":
            row["class"] = getattr(self.keras.initializers, row["name"])
        else:
            row["class"] = getattr(self.keras.layers, row["name"])
            row["faithful"] = None
            row["own"] = None
        if row.get("probe"):
            try:
                self._draw(row, 0)
            except Exception as error:  # the backend's own error types
                return ("skip", one_line(error))
        self.rows[key] = row
        return ("ok", None)

    def draw(self, key: int, seed: int):
        return self._array(self._draw(self.rows[key], seed))

    def batch(self, key: int, seed: int, count: int):
        row = self.rows[key]
        if row["kind"] == "initializer":
            drawn = self._initializer_batch(key, row, generator_pairs(integer_seed(seed), count))
        else:
            drawn = self._kernel_batch(key, row, seed, count)
        return self._array(drawn)

    # ------------------------------------------------------------------ drawing

    @staticmethod
    def _make(row):
        """``make(seed)``: the row's initializer with ``seed`` as its seed (an
        int, a SeedGenerator, or a backend seed pair, traced or not, which
        the constructor would refuse: a copy of a real instance takes it)."""
        prototype = row["class"](**row["kwargs"], seed=0)

        def make(seed):
            called = copy.copy(prototype)
            called.seed = seed
            return called

        return make

    def _draw(self, row, seed: int):
        if row["kind"] == "layer":
            return getattr(self._build(row, seed), row["attribute"]).value
        if row.get("deterministic"):
            with self.backend.scope(row["device"], row["dtype"]):
                return row["class"](**row["kwargs"])(row["shape"], dtype=row["dtype"])
        if "make" not in row:
            row["make"] = self._make(row)
        return self.backend.single(row, row["make"], integer_seed(seed))

    def _initializer_batch(self, key, row, pairs):
        return self.backend.batch(key, self._make(row), row["shape"], row["dtype"], row["device"], pairs)

    def _build(self, row, seed: int):
        """One real layer, named (Keras' name counters untouched), its unseeded
        initializers seeded from Python's ``random`` seeded with ``seed``."""
        with python_random_seeded(seed), self.backend.scope(row["device"], row["dtype"]):
            layer = row["class"](*row["args"], dtype=row["dtype"], name=f"initcheck_{row['name'].lower()}")
            layer.build(tuple(row["input_shape"]))
            return layer

    def _kernel_batch(self, key, row, seed: int, count: int):
        """Draw j: the kernel of the j-th of ``count`` unseeded layers built one
        after another with Python's ``random`` seeded with ``seed``: the
        layer's own ``kernel_initializer`` called with ``[make_default_seed(), 0]``."""
        from keras.src.random.seed_generator import make_default_seed

        def really_built(n):
            # consecutive constructions under one seeding, as a user's script makes them
            with python_random_seeded(seed), self.backend.scope(row["device"], row["dtype"]):
                kernels = []
                for _ in range(n):
                    layer = row["class"](*row["args"], dtype=row["dtype"], name=f"initcheck_{row['name'].lower()}")
                    layer.build(tuple(row["input_shape"]))
                    kernels.append(self.backend.host(layer.kernel.value))
            return np.stack(kernels)

        if row["faithful"] is False:
            return really_built(count)
        if row["own"] is None:
            row["own"] = self._build(row, 0).kernel_initializer
        own = row["own"]
        with python_random_seeded(seed):
            firsts = [make_default_seed() for _ in range(count)]
        pairs = np.zeros((count, 2), dtype=np.int64)
        pairs[:, 0] = firsts

        def make(seed_value):
            called = copy.copy(own)
            called.seed = seed_value
            return called

        drawn = self.backend.batch(key, make, row["shape"], row["dtype"], row["device"], pairs)
        if row["faithful"] is None:
            check = min(count, 2)
            row["faithful"] = bool(np.array_equal(self.backend.host(drawn)[:check], really_built(check)))
            if not row["faithful"]:
                return really_built(count)
        return drawn

    def _array(self, x):
        return self.backend.host(x) if not isinstance(x, np.ndarray) else x


def main(argv=None) -> int:
    return run_child(sys.argv[1:] if argv is None else argv, lambda _args: Worker())


if __name__ == "__main__":
    sys.exit(main())
