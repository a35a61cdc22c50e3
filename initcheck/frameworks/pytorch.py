"""PyTorch adapter: ``torch.nn.init`` on a real tensor of the layer's shape.

PyTorch documents the paper laws: ``xavier_normal_`` and ``kaiming_normal_`` are
plain normals, the ``*_uniform_`` variants U(+-sqrt(3) std), and ``trunc_normal_``
cuts N(mean, std) at absolute bounds ``a``, ``b``.  It has no LeCun, no truncated
Glorot/He and no ``variance_scaling``; those rows are skipped, not imitated.

Each draw seeds a fresh ``torch.Generator`` on the row's device and passes it to
the initializer, so draws are reproducible and independent of global state.
"""

from __future__ import annotations

import itertools
import math

import torch

from initcheck.errors import InputError
from initcheck.frameworks.base import BIAS_SAMPLES, Framework, Plan, Skip
from initcheck.laws import Uniform

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}


class PyTorch(Framework):
    name = "torch"
    title = "PyTorch"

    def version(self) -> str:
        return torch.__version__

    def check_device(self, device: str) -> None:
        if device == "cpu":
            return
        index = int(device.split(":")[1])
        if not torch.cuda.is_available():
            raise InputError(f"PyTorch {torch.__version__} cannot use {device}: torch.cuda.is_available() is False")
        if index >= torch.cuda.device_count():
            raise InputError(
                f"PyTorch cannot use {device}: it sees {torch.cuda.device_count()} CUDA device(s)"
            )

    def fans(self, layer):
        weight = torch.empty(layer.shape("torch"), device="meta")
        return torch.nn.init._calculate_fan_in_and_fan_out(weight)

    def devices(self):
        cuda = [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
        return ["cpu", *cuda]

    def default_rows(self, layer, device, dtype):
        """nn.Linear / nn.ConvNd: weight and bias both U(+-1/sqrt(fan_in)), from
        kaiming_uniform_ with a = sqrt(5) (gain sqrt(1/3)) and the bias rule."""
        if len(layer.kernel) > 3:
            return [("weight", Skip(self.name, "torch.nn", f"torch.nn has no {len(layer.kernel)}-d convolution"))]
        if layer.kernel:
            module = getattr(torch.nn, f"Conv{len(layer.kernel)}d")
            args = (layer.in_features, layer.out_features, layer.kernel)
        else:
            module, args = torch.nn.Linear, (layer.in_features, layer.out_features)
        call = f"torch.nn.{module.__name__}({', '.join(map(str, args))})"
        bound = 1.0 / math.sqrt(layer.fan_in)
        law = Uniform(-bound, bound)
        torch_dtype = _DTYPES[dtype]

        def parameter(name):
            def draw(seed: int) -> torch.Tensor:
                torch.manual_seed(seed)  # layers take no generator: the global one is what they use
                return getattr(module(*args, device=device, dtype=torch_dtype), name).detach()

            return draw

        weight = Plan(self.name, f"{call}.weight", law, layer.shape("torch"), device, dtype, parameter("weight"))
        bias = Plan(self.name, f"{call}.bias", law, (layer.out_features,), device, dtype, parameter("bias"),
                    samples=BIAS_SAMPLES)
        return [("weight", weight), ("bias", bias)]

    def plan(self, spec, layer, device, dtype):
        shape = layer.shape("torch")
        skip = _unsupported(spec)
        if skip:
            return Skip(self.name, skip[0], skip[1], device, dtype, shape)
        function, kwargs = _initializer(spec)
        api = f"torch.nn.init.{function.__name__}(w{''.join(f', {k}={v!r}' for k, v in kwargs.items())})"
        law = spec.law(layer.fan_in, layer.fan_out)
        torch_dtype = _DTYPES[dtype]

        generator = torch.Generator(device=device)
        # Two weights, used in turn: the runner folds one while the next is drawn
        # (a fresh allocation per draw costs more than the initializer itself).
        weights = [torch.empty(shape, dtype=torch_dtype, device=device) for _ in range(2)]
        turn = itertools.count()

        def draw(seed: int) -> torch.Tensor:
            weight = weights[next(turn) % 2]
            generator.manual_seed(seed)
            function(weight, **kwargs, generator=generator)
            return weight

        return Plan(self.name, api, law, shape, device, dtype, draw)


def _unsupported(spec) -> tuple[str, str] | None:
    """(api, reason) when torch.nn.init has nothing that documents this law."""
    if spec.scheme == "lecun":
        return "torch.nn.init", "torch.nn.init has no LeCun initializer"
    if spec.scheme == "variance-scaling":
        return "torch.nn.init", "torch.nn.init has no variance_scaling initializer"
    if spec.scheme in ("xavier", "kaiming") and spec.dist == "truncated-normal":
        return f"torch.nn.init.{spec.scheme}_*", f"torch.nn.init has no truncated-normal {spec.scheme} initializer"
    if spec.scheme == "kaiming" and spec.effective_mode == "fan_avg":
        return "torch.nn.init.kaiming_*", "torch.nn.init.kaiming_* has no fan_avg mode"
    return None


def _initializer(spec):
    init = torch.nn.init
    if spec.scheme == "xavier":
        function = init.xavier_normal_ if spec.dist == "normal" else init.xavier_uniform_
        return function, {"gain": spec.effective_gain}
    if spec.scheme == "kaiming":
        function = init.kaiming_normal_ if spec.dist == "normal" else init.kaiming_uniform_
        kwargs = {
            "a": 0.0 if spec.slope is None else spec.slope,
            "mode": spec.effective_mode,
            "nonlinearity": spec.nonlinearity or "leaky_relu",
        }
        return function, kwargs
    if spec.scheme == "trunc-normal":
        return init.trunc_normal_, {"mean": spec.mean, "std": spec.std, "a": spec.low, "b": spec.high}
    if spec.scheme == "normal":
        return init.normal_, {"mean": spec.mean, "std": spec.std}
    if spec.scheme == "uniform":
        return init.uniform_, {"a": spec.low, "b": spec.high}
    raise AssertionError(spec.scheme)
