"""PyTorch adapter: ``torch.nn.init`` on a real tensor of the layer's shape.

PyTorch documents the paper laws: ``xavier_normal_`` and ``kaiming_normal_`` are
plain normals, the ``*_uniform_`` variants U(+-sqrt(3) std), and ``trunc_normal_``
cuts N(mean, std) at absolute bounds ``a``, ``b``.  It has no LeCun, no truncated
Glorot/He and no ``variance_scaling``; those rows are skipped, not imitated.

Each draw seeds a ``torch.Generator`` on the row's device and passes it to the
initializer, so draws are reproducible and independent of global state.

Small draws come in batches (:attr:`~initcheck.frameworks.base.Plan.draw_batch`):
``torch.func.vmap(initializer, randomness="different")`` over a
``(count, *shape)`` tensor, so the real ``torch.nn.init`` function runs on a
tensor whose per-sample shape is the layer's (``_calculate_fan_in_and_fan_out``
sees the real shape) and every draw of the batch gets its own values.  vmap
passes the generator through: it is seeded once per batch with the batch's
seed, and the batch is drawn from it.  Under vmap the initializer's random op
runs once over the whole batch, so on the CPU a uniform batch is bit for bit
``count`` real calls in a row from that generator (tested); torch's ``normal_``
takes a scalar path for tensors under 16 values and a vectorized one above, so
the batch of a normal initializer on a tensor that small has the values of the
vectorized path (the same law).  An initializer that vmap cannot run
(``trunc_normal_`` where, as in torch 2.13, its rejection loop asks ``mask.any()``,
data-dependent control flow) is called once on the whole ``(count, *shape)``
batch when its law takes nothing from the shape (``trunc_normal_``'s absolute
bounds, mean and std, like ``normal_`` and ``uniform_``: every value is still
the real function's, under the same law), and once per draw otherwise, on each
``(shape)`` slice of the batch in turn, from the same generator seeded once per
batch.

Structured initializers (``orthogonal_``, ``sparse_``, ``eye_``, ``dirac_``,
``constant_``, ``zeros_``, ``ones_``) are checked against the law and the
per-draw checks of :func:`initcheck.structured.expectation` on the weight's
torch shape.  ``orthogonal_`` batches under vmap (its ``normal_`` takes the
generator, ``linalg.qr`` is batched); the others are called once per draw of a
batch, each on a ``(shape)`` slice: ``sparse_`` draws its zeros' rows with
``torch.randperm``, which takes no generator, so its draws (and batches) run
with the CPU's global generator seeded inside ``fork_rng``, as layer defaults
do; the deterministic ones take no generator at all and are drawn ten times.
A dtype or device the initializer raises on (``orthogonal_``'s QR has no
16-bit kernel on the CPU) is a SKIP with torch's message.

Layer defaults (``default_rows``) run the module's own ``reset_parameters()``,
the code ``__init__`` runs, on a module built once on the meta device, with its
``weight`` and ``bias`` swapped for batched tensors under vmap
(``torch.nn.utils.stateless._reparametrize_module``).  Modules take no
generator, so the row device's global generator is seeded per batch inside
``torch.random.fork_rng``, which restores the caller's RNG state afterwards.
The bias row's weight is a batched tensor of the real shape on the meta device:
``reset_parameters`` reads the real fan_in off it, as it does in ``__init__``,
and no weight values are computed (a meta tensor's ``kaiming_uniform_`` is a
no-op), so a bias row costs its own values only and gets the full N.  The
weight row runs the whole ``reset_parameters`` on real tensors.  Large weights
are drawn one call each by building the real layer, inside ``fork_rng`` too.
"""

from __future__ import annotations

import contextlib
import itertools
import math

import torch

from initcheck.errors import InputError
from initcheck.frameworks.base import Framework, Plan, Skip
from initcheck.laws import Uniform

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}


class PyTorch(Framework):
    name = "torch"
    title = "PyTorch"
    layout = "torch"

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
        # Built on the meta device: no values, no RNG used; reset_parameters() is
        # what its __init__ ran, and what every batch runs again.
        template = module(*args, device="meta", dtype=torch_dtype)
        shapes = {"weight": tuple(template.weight.shape), "bias": tuple(template.bias.shape)}

        def layer_parameter(name):
            def draw(seed: int) -> torch.Tensor:
                with _seeded_global_rng(device, seed):  # layers take no generator
                    return getattr(module(*args, device=device, dtype=torch_dtype), name).detach()

            return draw

        def reset(weight, bias):
            from torch.nn.utils.stateless import _reparametrize_module

            with _reparametrize_module(template, {"weight": weight, "bias": bias}):
                template.reset_parameters()
            return weight, bias

        reset_batch = torch.func.vmap(reset, randomness="different")

        def batched_parameter(name):
            # The bias row's weight lives on the meta device: real shape, real fan_in, no values.
            weight_device = device if name == "weight" else "meta"
            buffers = _Buffers(shapes[name], torch_dtype, device)

            def draw_batch(seed: int, count: int) -> torch.Tensor:
                weight = torch.empty((count, *shapes["weight"]), dtype=torch_dtype, device=weight_device) \
                    if name == "bias" else buffers.next(count)
                bias = buffers.next(count) if name == "bias" else \
                    torch.empty((count, *shapes["bias"]), dtype=torch_dtype, device=device)
                with _seeded_global_rng(device, seed):
                    weight, bias = reset_batch(weight, bias)
                return weight if name == "weight" else bias

            return draw_batch

        bias_batch = batched_parameter("bias")

        def bias_draw(seed: int) -> torch.Tensor:  # a bias too large to batch: one draw at a time
            return bias_batch(seed, 1)[0]

        weight = Plan(self.name, f"{call}.weight", law, shapes["weight"], device, dtype, layer_parameter("weight"),
                      draw_batch=batched_parameter("weight"))
        bias = Plan(self.name, f"{call}.bias", law, shapes["bias"], device, dtype, bias_draw, draw_batch=bias_batch)
        return [("weight", weight), ("bias", bias)]

    def plan(self, spec, layer, device, dtype):
        shape = layer.shape("torch")
        skip = _unsupported(spec)
        if skip:
            return Skip(self.name, skip[0], skip[1], device, dtype, shape)
        function, kwargs = _initializer(spec)
        api = f"torch.nn.init.{function.__name__}(w{''.join(f', {k}={v!r}' for k, v in kwargs.items())})"
        torch_dtype = _DTYPES[dtype]
        if spec.structured:
            return self._structured_plan(spec, function, kwargs, api, shape, device, dtype)
        law = spec.law(layer.fan_in, layer.fan_out)

        def drawer():
            """A draw function with a generator and two weights of its own, used
            in turn: the runner folds one while the next is drawn (a fresh
            allocation per draw costs more than the initializer itself)."""
            own_generator = torch.Generator(device=device)
            weights = [torch.empty(shape, dtype=torch_dtype, device=device) for _ in range(2)]
            turn = itertools.count()

            def draw(seed: int) -> torch.Tensor:
                weight = weights[next(turn) % 2]
                own_generator.manual_seed(seed)
                function(weight, **kwargs, generator=own_generator)
                return weight

            return draw

        draw = drawer()
        generator = torch.Generator(device=device)

        def one(weight):
            return function(weight, **kwargs, generator=generator)

        vectorized = torch.func.vmap(one, randomness="different")
        buffers = _Buffers(shape, torch_dtype, device)
        looped = []  # [True] once vmap has refused this initializer

        def draw_batch(seed: int, count: int) -> torch.Tensor:
            batch = buffers.next(count)
            generator.manual_seed(seed)
            if not looped:
                try:
                    return vectorized(batch)
                except RuntimeError as error:
                    if "vmap" not in str(error):
                        raise
                    looped.append(True)
                    generator.manual_seed(seed)
            if not spec.uses_fans:  # an explicit law takes nothing from the shape: one real call on the whole batch
                function(batch, **kwargs, generator=generator)
                return batch
            for one_draw in batch:  # each a view of the real shape
                function(one_draw, **kwargs, generator=generator)
            return batch

        # draws on two threads only on the host (a device's draws are queued work)
        return Plan(self.name, api, law, shape, device, dtype, draw, draw_batch=draw_batch,
                    drawer=drawer if device == "cpu" else None)


    def _structured_plan(self, spec, function, kwargs, api, shape, device, dtype):
        """orthogonal_, sparse_, eye_, dirac_, constant_ and its aliases (module docstring)."""
        from initcheck.structured import expectation

        law, draw_checks = expectation(spec, shape, "torch")
        torch_dtype = _DTYPES[dtype]
        random = not spec.deterministic
        generator = torch.Generator(device=device) if random else None
        extra = {"generator": generator} if random else {}
        if spec.scheme == "orthogonal":  # its QR has no kernel for some dtypes and devices
            try:
                function(torch.empty((2, 2), dtype=torch_dtype, device=device), **kwargs, **extra)
            except (RuntimeError, NotImplementedError) as error:
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                return Skip(self.name, api, f"{api} raises on {dtype} {device}: {reason}", device, dtype, shape)
        global_rng = spec.scheme == "sparse"  # torch.randperm in sparse_ takes no generator

        def seeded(seed):
            if generator is not None:
                generator.manual_seed(seed)
            return _seeded_global_rng("cpu", seed) if global_rng else contextlib.nullcontext()

        weights = [torch.empty(shape, dtype=torch_dtype, device=device) for _ in range(2)]
        turn = itertools.count()

        def draw(seed: int) -> torch.Tensor:
            weight = weights[next(turn) % 2]
            with seeded(seed):
                function(weight, **kwargs, **extra)
            return weight

        buffers = _Buffers(shape, torch_dtype, device)
        vectorized = torch.func.vmap(lambda w: function(w, **kwargs, **extra), randomness="different") \
            if spec.scheme == "orthogonal" else None

        def draw_batch(seed: int, count: int) -> torch.Tensor:
            batch = buffers.next(count)
            with seeded(seed):
                if vectorized is not None:
                    return vectorized(batch)
                for one_draw in batch:  # each a view of the real shape
                    function(one_draw, **kwargs, **extra)
            return batch

        samples = 10 * math.prod(shape) if spec.deterministic else None
        return Plan(self.name, api, law, shape, device, dtype, draw, samples=samples, draw_batch=draw_batch,
                    draw_checks=draw_checks)


class _Buffers:
    """Two batch tensors used in turn (the runner folds one while the next is
    drawn), allocated at the first batch's size; a shorter batch is a view."""

    def __init__(self, shape, dtype, device):
        self._shape, self._dtype, self._device = tuple(shape), dtype, device
        self._tensors: list[torch.Tensor] = []
        self._turn = itertools.count()

    def next(self, count: int) -> torch.Tensor:
        if not self._tensors or self._tensors[0].shape[0] < count:
            self._tensors = [torch.empty((count, *self._shape), dtype=self._dtype, device=self._device)
                             for _ in range(2)]
        return self._tensors[next(self._turn) % 2][:count]


class _seeded_global_rng:
    """The global generator of ``device`` seeded with ``seed`` inside
    ``torch.random.fork_rng``: what a layer's own initialization uses (it takes no
    generator), with the caller's CPU and device RNG states restored on exit."""

    def __init__(self, device: str, seed: int):
        self._device, self._seed = torch.device(device), seed

    def __enter__(self):
        if self._device.type == "cpu":
            devices, generator = [], torch.default_generator
        else:
            index = self._device.index or 0
            torch.cuda.init()
            devices, generator = [index], torch.cuda.default_generators[index]
        self._fork = torch.random.fork_rng(devices=devices, device_type=self._device.type)
        self._fork.__enter__()
        generator.manual_seed(self._seed)  # only this device's generator; the others are untouched
        return self

    def __exit__(self, *exc):
        return self._fork.__exit__(*exc)


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
    if spec.scheme == "eye" and spec.gain not in (None, 1.0):
        return "torch.nn.init.eye_", "torch.nn.init.eye_ has no gain (keras.initializers.Identity has)"
    if spec.scheme == "delta-orthogonal":
        return "torch.nn.init", ("torch.nn.init has no delta-orthogonal initializer (dirac_ is the deterministic "
                                 "identity; orthogonal_ fills the whole kernel)")
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
    if spec.scheme == "orthogonal":
        return init.orthogonal_, {"gain": 1.0 if spec.gain is None else spec.gain}
    if spec.scheme == "sparse":
        return init.sparse_, {"sparsity": spec.sparsity, "std": spec.effective_std}
    if spec.scheme == "eye":
        return init.eye_, {}
    if spec.scheme == "dirac":
        return init.dirac_, {"groups": spec.effective_groups}
    if spec.scheme == "constant":
        return init.constant_, {"val": spec.constant_value}
    if spec.scheme == "zeros":
        return init.zeros_, {}
    if spec.scheme == "ones":
        return init.ones_, {}
    raise AssertionError(spec.scheme)
