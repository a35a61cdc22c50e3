"""PyTorch adapter: ``torch.nn.init`` on a real tensor of the layer's shape.

PyTorch documents the paper laws: ``xavier_normal_`` and ``kaiming_normal_`` are
plain normals, the ``*_uniform_`` variants U(+-sqrt(3) std), and ``trunc_normal_``
cuts N(mean, std) at absolute bounds ``a``, ``b``.  It has no LeCun, no truncated
Glorot/He and no ``variance_scaling``; those rows are skipped, not imitated.

Each draw seeds a fresh ``torch.Generator`` on the row's device and passes it to
the initializer, so draws are reproducible and independent of global state.

:class:`TorchReducer` folds tensors that live on an accelerator where they live,
without a host synchronization per draw.
"""

from __future__ import annotations

import itertools
import math

import torch

from initcheck.errors import InputError
from initcheck.frameworks.base import BIAS_SAMPLES, Framework, Plan, Skip
from initcheck.laws import Law, Uniform
from initcheck.grid import Grid
from initcheck.reducers import lag_of_rows
from initcheck.summary import Summary

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


def as_torch(x) -> torch.Tensor:
    """A torch view of a PyTorch, JAX or TensorFlow array, on its own device (DLPack)."""
    if isinstance(x, torch.Tensor):
        return x
    if type(x).__module__.startswith("tensorflow"):
        import tensorflow as tf

        return torch.from_dlpack(tf.experimental.dlpack.to_dlpack(x))
    return torch.from_dlpack(x)


class Batches:
    """Stacks small draws of one shape into ``(K, n)`` device tensors.

    A fold costs a few dozen kernel launches whatever its size, so folding a
    200,000-value draw at a time leaves a GPU idle behind the launch queue.
    Draws are copied into a staging tensor of about ``values`` values and handed
    to ``fold_batch(batch, row_length)`` when it is full, when the draw shape
    changes, or at :meth:`flush`.  A draw of ``values / 2`` or more is folded
    alone, without a copy."""

    #: Values per batch: a fold's float64 temporaries take about 100 bytes a value (~0.8 GB).
    values = 1 << 23

    def __init__(self, fold_batch, device):
        self._fold_batch, self._device = fold_batch, torch.device(device)
        self._stage: torch.Tensor | None = None
        self._staged = 0
        self._row_length = 0

    def add(self, x) -> None:
        """Add one draw: a torch tensor, or a JAX or TensorFlow array (DLPack)."""
        x = as_torch(x)
        row_length = lag_of_rows(x.shape)
        flat = x.detach().reshape(-1).to(self._device)
        n = flat.numel()
        if 2 * n >= self.values:
            self.flush()
            self._fold_batch(flat.unsqueeze(0), row_length)
            return
        stage = self._stage
        if stage is None or stage.shape[1] != n or stage.dtype != flat.dtype or self._row_length != row_length:
            self.flush()
            self._stage = stage = torch.empty((self.values // n, n), dtype=flat.dtype, device=self._device)
            self._row_length = row_length
        stage[self._staged].copy_(flat)
        self._staged += 1
        if self._staged == stage.shape[0]:
            self.flush()

    def flush(self) -> None:
        """Fold whatever is staged."""
        if self._staged:
            self._fold_batch(self._stage[: self._staged], self._row_length)
            self._staged = 0


class TorchPairs:
    """Lag-1 product sums (see :class:`~initcheck.reducers.HostReducer`) of
    centred draws on their device: within each draw, between its rows, and
    between consecutive draws.  A draw holding NaN or Inf adds none and is no
    one's neighbour; the flags saying so stay on the device: no sync per draw."""

    def __init__(self, device):
        self._device = torch.device(device)
        self._sums = torch.zeros((3, 4), dtype=torch.float64, device=self._device)
        self._previous: torch.Tensor | None = None  # the last draw folded, (1, n)
        self._previous_clean = torch.zeros(1, dtype=torch.bool, device=self._device)

    @staticmethod
    def _pair_sums(a: torch.Tensor, b: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
        """[sum ab, sum a, sum b, count] over the rows of a and b where ``clean``."""
        per_draw = torch.stack([(a * b).sum(1), a.sum(1), b.sum(1), torch.full_like(a[:, 0], a.shape[1])], dim=1)
        return torch.where(clean[:, None], per_draw, 0.0).sum(0)

    def fold(self, d: torch.Tensor, row_length: int, clean: torch.Tensor) -> None:
        """Add the pairs of ``d``, K draws of n values minus the law's mean, shape
        (K, n); ``clean``, shape (K,), says which draws are all finite."""
        n = d.shape[1]
        zero = torch.zeros(4, dtype=torch.float64, device=self._device)
        chain, chain_clean = d, clean
        if self._previous is not None and self._previous.shape[1] == n:
            chain, chain_clean = torch.cat([self._previous, d]), torch.cat([self._previous_clean, clean])
        self._sums += torch.stack([
            self._pair_sums(d[:, :-1], d[:, 1:], clean) if n > 1 else zero,
            self._pair_sums(d[:, :-row_length], d[:, row_length:], clean) if 0 < row_length < n else zero,
            self._pair_sums(chain[:-1], chain[1:], chain_clean[:-1] & chain_clean[1:]) if len(chain) > 1 else zero,
        ])
        self._previous, self._previous_clean = d[-1:].clone(), clean[-1:]

    def numpy(self):
        return self._sums.cpu().numpy().copy()


class TorchReducer:
    """Streaming statistics of torch tensors, computed on the tensor's device.

    The same quantities as :class:`~initcheck.reducers.HostReducer`, with torch
    ops and float64 accumulators on the device, folded a batch of draws at a
    time (:class:`Batches`).  JAX and TensorFlow draws on a GPU come in through
    DLPack, without a copy.  Non-finite values are masked rather than removed
    (removing them would need a device-to-host sync): they are replaced by the
    reference point, which adds nothing to the power sums, and taken back out of
    the histogram cell the reference point falls in.
    """

    #: ``fold`` only queues device work and returns (on a CPU device it computes).
    asynchronous = True

    def __init__(self, law: Law, device, grid: Grid | None = None):
        grid = grid or Grid.for_law(law)
        self._summary = Summary(ref=law.mean, grid=grid)
        self._device = torch.device(device)
        f64 = {"dtype": torch.float64, "device": self._device}
        self._cum = torch.tensor(grid.cum, **f64)
        self._slope = torch.tensor(grid.slope, **f64)
        self._ref_cell = int(grid.cell_of(law.mean))
        self._sums = torch.zeros(4, **f64)
        self._extremes = torch.tensor([math.inf, -math.inf], **f64)
        self._counts = torch.zeros(4, dtype=torch.int64, device=self._device)  # finite, nan, +inf, -inf
        self._hist = torch.zeros(grid.cells + 2, dtype=torch.int64, device=self._device)
        self._pairs = TorchPairs(self._device)
        self._batches = Batches(self._fold_batch, self._device)

    def _cells(self, values: torch.Tensor) -> torch.Tensor:
        """The grid's cell rule (initcheck/grid.py), with the same float64 rounding."""
        grid = self._summary.grid
        t = (values - grid.lo) * grid.segment_scale
        j = t.floor().clamp_(0, grid.segments - 1)
        index = j.long()
        inner = (self._cum[index] + (t - j) * self._slope[index]).floor_().clamp_(max=grid.cells - 1) + 1
        below, above = t < 0, t >= grid.segments
        return torch.where(below, 0.0, torch.where(above, float(grid.cells + 1), inner)).long()

    def fold(self, x) -> None:
        self._batches.add(x)

    def _fold_batch(self, x: torch.Tensor, row_length: int) -> None:
        """Fold K draws of n values, shape (K, n)."""
        ref = self._summary.ref
        finite = torch.isfinite(x)
        nonfinite_per_draw = x.shape[1] - finite.sum(1)
        nonfinite = nonfinite_per_draw.sum()
        nan = torch.isnan(x).sum()
        posinf = (x == math.inf).sum()
        self._counts += torch.stack([x.numel() - nonfinite, nan, posinf, nonfinite - nan - posinf])
        values = torch.where(finite, x.double(), ref)
        d = values - ref
        d2 = d * d
        self._sums += torch.stack([d.sum(), d2.sum(), (d2 * d).sum(), (d2 * d2).sum()])
        low = torch.where(finite, values, math.inf).min()
        high = torch.where(finite, values, -math.inf).max()
        self._extremes = torch.stack([torch.minimum(self._extremes[0], low), torch.maximum(self._extremes[1], high)])
        self._hist += torch.bincount(self._cells(values).reshape(-1), minlength=self._summary.grid.cells + 2)
        self._hist[self._ref_cell] -= nonfinite
        self._pairs.fold(d, row_length, nonfinite_per_draw == 0)

    def summary(self) -> Summary:
        self._batches.flush()
        s = self._summary
        s.count, s.nan, s.posinf, s.neginf = (int(v) for v in self._counts.cpu())
        s.sums = self._sums.cpu().numpy().copy()
        s.minimum, s.maximum = (float(v) for v in self._extremes.cpu())
        s.hist = self._hist.cpu().numpy().copy()
        s.pairs = self._pairs.numpy()
        return s
