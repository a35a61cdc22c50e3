"""Glorot and Bengio's experiment: how variance flows through a deep stack.

A stack of ``L`` dense layers of widths ``n_0 -> n_1 -> ... -> n_L``, no bias
(Glorot and Bengio, 2010, section 4.2, biases start at 0), the activation
``f`` after every layer:

    s^l = h^{l-1} W^l,   h^l = f(s^l),   h^0 = x,

with ``W^l`` of shape ``(n_{l-1}, n_l)`` drawn by the framework's REAL
initializer: each layer's weight is ``Plan.draw(seed)`` of the framework
adapter (:mod:`initcheck.frameworks`) for the scheme's
:class:`~initcheck.schemes.InitSpec` on :meth:`Layer.dense(n_{l-1}, n_l)
<initcheck.layers.Layer.dense>`, in the framework's own layout, turned to
``(in, out)`` here; the paper's ``standard`` initialization U(+-1/sqrt(n_in))
is drawn with NumPy.  The weights are the framework's; the propagation
arithmetic is initcheck's, in NumPy float64, so every framework's weights go
through exactly the same forward and backward pass.

Forward: ``x`` is ``batch`` rows of iid N(0, 1) values.  Backward: the
gradient of the cost with respect to the output ``h^L`` is iid N(0, 1) (a
random unit-variance output gradient, independent of everything else), and

    d^L = g * f'(s^L),   d^{l-1} = (d^l W^lᵀ) * f'(s^{l-1}),

``d^l = ∂C/∂s^l`` the back-propagated gradient of the paper's figure 7.

Per layer the run keeps (all are mean squares over the batch and the units):

* ``forward_mean_square`` = mean (h^l)²: the activations' variance for the odd
  activations (linear, tanh, softsign: their mean is exactly 0, ``s^l`` being
  symmetric), the second moment E[h²] that He et al. (2015) keep for ReLU;
* ``backward_mean_square`` = mean (d^l)², the variance of ∂C/∂s^l (mean 0:
  ``g`` is symmetric);
* ``weight_gradient_mean_square``: the variance of the per-example weight
  gradient ∂C/∂W^l_jk = h^{l-1}_j d^l_k, mean_b(|h^{l-1}_b|² |d^l_b|²) /
  (n_{l-1} n_l) (the paper's Var[∂C/∂w]);
* ``saturated``: the share of saturated units (|tanh| or |softsign| > 0.99,
  sigmoid outside [0.01, 0.99], ReLU zeros; None for linear);
* the conditional spreads :mod:`initcheck.propagate_checks` turns into a
  sampling tolerance (computed only where the theory is exact):
  ``forward_increment`` (the conditional relative variance of layer l's
  factor given the layers below, see there) and ``backward_increment`` (of
  the step from d^l down to d^{l-1});
* a thinned sample of the activations and of the gradients, for the plots.

Every result is immutable (frozen dataclasses, read-only arrays).
"""

from __future__ import annotations

import math
import sys
import time
import types
from dataclasses import dataclass
from typing import Callable

import numpy as np

from initcheck.errors import InputError
from initcheck.frameworks.base import Plan, Skip
from initcheck.layers import Layer
from initcheck.schemes import InitSpec

#: Initializations the command knows; ``standard`` is the paper's, from NumPy.
INITS = ("standard", "xavier", "kaiming", "lecun")
#: Distributions of the framework schemes (the paper's are uniform).
DISTS = ("uniform", "normal", "truncated-normal")
#: Values kept per layer for the histograms.
HISTOGRAM_VALUES = 20_000
#: Largest batch x width of one layer's activations (float64, 8 bytes each).
MAX_ACTIVATIONS = 50_000_000
#: Saturation threshold of the bounded activations (Glorot and Bengio's figure 6 reads |tanh| near 1).
SATURATION = 0.99


@dataclass(frozen=True)
class Activation:
    """A nonlinearity, its derivative (from ``s`` and ``h = f(s)``) and its saturation."""

    name: str
    function: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray, np.ndarray], np.ndarray]
    #: Share of saturated units of ``(s, h)``, or None when the activation cannot saturate.
    saturation: Callable[[np.ndarray, np.ndarray], float] | None


def _relu(s):
    return np.maximum(s, 0.0)


def _sigmoid(s):
    return 0.5 * (1.0 + np.tanh(0.5 * s))  # no overflow for large |s|


def _softsign(s):
    return s / (1.0 + np.abs(s))


ACTIVATIONS = {
    "linear": Activation("linear", lambda s: s, lambda s, h: np.ones_like(s), None),
    "tanh": Activation("tanh", np.tanh, lambda s, h: 1.0 - h * h,
                       lambda s, h: float(np.mean(np.abs(h) > SATURATION))),
    "relu": Activation("relu", _relu, lambda s, h: (s > 0.0).astype(np.float64),
                       lambda s, h: float(np.mean(s <= 0.0))),
    "sigmoid": Activation("sigmoid", _sigmoid, lambda s, h: h * (1.0 - h),
                          lambda s, h: float(np.mean((h < 1.0 - SATURATION) | (h > SATURATION)))),
    "softsign": Activation("softsign", _softsign, lambda s, h: 1.0 / (1.0 + np.abs(s)) ** 2,
                           lambda s, h: float(np.mean(np.abs(h) > SATURATION))),
}


@dataclass(frozen=True)
class LayerRun:
    """One layer of one stack, measured (see the module docstring)."""

    index: int
    fan_in: int
    fan_out: int
    #: E[W²] of the law the framework documents for this layer's weight.
    weight_second_moment: float
    #: Kurtosis E[W⁴] / E[W²]² of that law.
    weight_kurtosis: float
    forward_mean_square: float
    backward_mean_square: float
    weight_gradient_mean_square: float
    saturated: float | None
    #: Conditional relative variance of layer l's forward factor; None where not computed.
    forward_increment: float | None
    #: Conditional relative variance of the step d^l -> d^{l-1}; None where not computed (and for layer 1).
    backward_increment: float | None
    activations: np.ndarray
    gradients: np.ndarray


@dataclass(frozen=True)
class StackRun:
    """One initialization in one framework, propagated (or skipped, with ``reason``)."""

    init: str
    framework: str
    api: str
    activation: str
    widths: tuple[int, ...]
    batch: int
    layers: tuple[LayerRun, ...] = ()
    #: Relative variance of mean(x²) (2 / (batch n_0), x Gaussian).
    input_spread: float = 0.0
    #: Relative variance of mean(g²) (2 / (batch n_L), g Gaussian).
    output_spread: float = 0.0
    reason: str = ""
    seconds: float = 0.0

    @property
    def skipped(self) -> bool:
        return not self.layers


def parse_widths(text, layers: int | None) -> tuple[int, ...]:
    """``--width``: one width for every layer (``layers + 1`` sizes, input
    included) or the list of sizes ``n_0, ..., n_L`` (then ``layers``, when
    given, must be ``L``).  At least 2 layers, every width a positive integer."""
    items = [item.strip() for item in str(text).split(",") if item.strip()]
    try:
        sizes = [int(item) for item in items]
    except ValueError:
        raise InputError(f"--width {text!r} is not an integer or a comma-separated list of integers") from None
    if not sizes:
        raise InputError("--width is empty")
    bad = [n for n in sizes if n < 1]
    if bad:
        raise InputError(f"--width must be positive integers, got {bad[0]}")
    if layers is not None and (isinstance(layers, bool) or not isinstance(layers, int)):
        raise InputError(f"--layers must be an integer, got {layers!r}")
    if len(sizes) == 1:
        count = 5 if layers is None else layers
        if count < 2:
            raise InputError(f"--layers must be at least 2 (a stack), got {count}")
        return tuple(sizes * (count + 1))
    if len(sizes) - 1 < 2:
        raise InputError(f"--width {text}: {len(sizes) - 1} layer; a stack needs at least 2 (3 sizes or more)")
    if layers is not None and layers != len(sizes) - 1:
        raise InputError(f"--layers {layers} disagrees with --width {text} ({len(sizes) - 1} layers)")
    return tuple(sizes)


def parse_activation(name: str) -> Activation:
    if name not in ACTIVATIONS:
        raise InputError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def init_spec(init: str, dist: str) -> InitSpec | None:
    """The framework scheme of an initialization name (None for the paper's ``standard``):
    xavier = Glorot's normalized initialization (fan_avg, gain 1), kaiming = He's
    (fan_in, ReLU gain sqrt 2), lecun (fan_in, gain 1)."""
    if init == "standard":
        return None
    if init == "xavier":
        return InitSpec("xavier", dist)
    if init == "kaiming":
        return InitSpec("kaiming", dist, mode="fan_in", nonlinearity="relu")
    if init == "lecun":
        return InitSpec("lecun", dist)
    raise InputError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")


def standard_plan(layer: Layer) -> Plan:
    """The paper's "commonly used heuristic" (its equation 1): W ~ U(-1/sqrt(n), 1/sqrt(n)),
    n = fan_in, drawn with NumPy in the (in, out) layout."""
    from initcheck.frameworks.reference import law_plan
    from initcheck.laws import Uniform

    bound = 1.0 / math.sqrt(layer.fan_in)
    plan = law_plan("numpy", Uniform(-bound, bound), layer.shape("keras"), "float64")
    plan.api = "numpy U(-1/sqrt(n_in), 1/sqrt(n_in)) (Glorot and Bengio's standard)"
    return plan


def oriented(weight, layer: Layer, layout: str) -> np.ndarray:
    """The framework's weight as a float64 ``(in, out)`` matrix: PyTorch and MLX
    store a dense weight ``(out, in)``, Keras, JAX and Paddle ``(in, out)``
    (the reference sampler draws the torch shape whatever its layout: its
    entries are iid, so only the shape is read off it)."""
    array = np.asarray(weight).astype(np.float64, copy=True)  # a copy: the adapter may reuse its buffer
    if array.shape not in ((layer.fan_in, layer.fan_out), (layer.fan_out, layer.fan_in)):
        raise InputError(f"the initializer returned shape {array.shape} for the dense layer {layer.describe()}")
    if layer.fan_in == layer.fan_out:
        return array.T if layout in ("torch", "mlx") else array
    return array if array.shape == (layer.fan_in, layer.fan_out) else array.T


def layer_seed(seed: int, key: str, index: int) -> int:
    """The seed of layer ``index``'s weight (from the command's seed, the row and the layer)."""
    from initcheck.sampling import draw_seed

    return draw_seed(seed, f"propagate|{key}", index)


def _relative_quadratic_variance(matrix: np.ndarray, kurtosis: float, count: int) -> float:
    """Conditional relative variance of mean |M w_k|² over ``count`` iid vectors
    w_k of iid entries with ``kurtosis`` (E[w⁴] / E[w²]²), M fixed:

        [2 tr(G²) + (kurtosis - 3) sum_j G_jj²] / (count (tr G)²),   G = MᵀM.

    (Var(wᵀGw) = E[w²]² (2 tr(G²) + (kurtosis - 3) sum G_jj²) for iid entries.)"""
    small = matrix @ matrix.T if matrix.shape[0] <= matrix.shape[1] else matrix.T @ matrix
    trace_square = float(np.vdot(small, small))
    diagonal = np.einsum("bj,bj->j", matrix, matrix)
    trace = float(diagonal.sum())
    if trace <= 0.0:
        return math.inf
    return (2.0 * trace_square + (kurtosis - 3.0) * float(np.vdot(diagonal, diagonal))) / (count * trace * trace)


def _sign_flip_variance(s: np.ndarray) -> float:
    """ReLU: conditional relative variance of 2 mean (s⁺)² / mean s² given the
    columns of s up to sign (each column of W, hence of s, is as likely as its
    negative): sum_k (A_k - B_k)² / (sum_k (A_k + B_k))², A_k and B_k the
    column's sums of (s⁺)² and (s⁻)²."""
    positive = np.einsum("bk,bk->k", np.maximum(s, 0.0), np.maximum(s, 0.0))
    total = np.einsum("bk,bk->k", s, s)
    negative = total - positive
    whole = float(total.sum())
    return float(np.sum((positive - negative) ** 2)) / (whole * whole) if whole > 0.0 else math.inf


def _mean_square(a: np.ndarray) -> float:
    return float(np.vdot(a, a)) / a.size


def _thinned(a: np.ndarray, count: int = HISTOGRAM_VALUES) -> np.ndarray:
    flat = a.ravel()
    step = max(1, flat.size // count)
    kept = np.array(flat[::step][:count])
    kept.setflags(write=False)
    return kept


def run_stack(init: str, framework: str, api: str, plans: list[Plan], widths: tuple[int, ...],
              activation: Activation, batch: int, seed: int, layout: str, exact_forward: bool,
              exact_backward: bool) -> StackRun:
    """Draw each layer's weight from its plan, propagate, measure.

    ``exact_forward`` / ``exact_backward``: compute the conditional spreads of
    that direction (the theory is exact there, :mod:`initcheck.propagate_checks`)."""
    started = time.perf_counter()
    count = len(widths) - 1
    layers_ = [Layer.dense(widths[i], widths[i + 1]) for i in range(count)]
    weights = [oriented(plan.draw(layer_seed(seed, f"{init}|{framework}|{plan.api}", i)), layer, layout)
               for i, (plan, layer) in enumerate(zip(plans, layers_))]
    data = np.random.default_rng(np.random.SeedSequence([seed, 0x9E0])).standard_normal  # same x, g for every init
    x = data((batch, widths[0]))
    g = data((batch, widths[-1]))
    moments = [(plan.law.variance + plan.law.mean**2, plan.law.fourth_moment / plan.law.variance**2 + 0.0)
               for plan in plans]

    inputs, pre, post, forward_increments = [x], [], [], []
    h = x
    for weight, (_, kurtosis) in zip(weights, moments):
        increment = _relative_quadratic_variance(h, kurtosis, weight.shape[1]) if exact_forward else None
        s = h @ weight
        h = activation.function(s)
        if exact_forward and activation.name == "relu":
            increment += _sign_flip_variance(s)
        pre.append(s)
        post.append(h)
        inputs.append(h)
        forward_increments.append(increment)

    deltas: list[np.ndarray] = [None] * count
    backward_increments: list[float | None] = [None] * count
    delta = g * activation.derivative(pre[-1], post[-1])
    for index in range(count - 1, -1, -1):
        deltas[index] = delta
        if index == 0:
            break
        if exact_backward:
            backward_increments[index] = _relative_quadratic_variance(delta, moments[index][1], widths[index])
        delta = (delta @ weights[index].T) * activation.derivative(pre[index - 1], post[index - 1])

    results = []
    for index in range(count):
        below = np.einsum("bj,bj->b", inputs[index], inputs[index])
        above = np.einsum("bk,bk->b", deltas[index], deltas[index])
        saturated = activation.saturation(pre[index], post[index]) if activation.saturation else None
        results.append(LayerRun(
            index=index + 1, fan_in=widths[index], fan_out=widths[index + 1],
            weight_second_moment=moments[index][0], weight_kurtosis=moments[index][1],
            forward_mean_square=_mean_square(post[index]), backward_mean_square=_mean_square(deltas[index]),
            weight_gradient_mean_square=float(np.mean(below * above)) / (widths[index] * widths[index + 1]),
            saturated=saturated, forward_increment=forward_increments[index],
            backward_increment=backward_increments[index],
            activations=_thinned(post[index]), gradients=_thinned(deltas[index]),
        ))
    return StackRun(init, framework, api, activation.name, tuple(widths), batch, tuple(results),
                    input_spread=2.0 / (batch * widths[0]), output_spread=2.0 / (batch * widths[-1]),
                    seconds=time.perf_counter() - started)


def stack_plans(init: str, spec: InitSpec | None, framework, widths: tuple[int, ...]) -> list[Plan] | Skip:
    """The plan of every layer's weight (``standard``: NumPy's), or the framework's Skip."""
    plans = []
    for i in range(len(widths) - 1):
        layer = Layer.dense(widths[i], widths[i + 1])
        plan = standard_plan(layer) if spec is None else framework.plan(spec, layer, "cpu", "float32")
        if isinstance(plan, Skip):
            return plan
        plans.append(plan)
    return plans


def check_size(widths: tuple[int, ...], batch: int) -> None:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 2:
        raise InputError(f"--batch must be an integer of at least 2, got {batch!r}")
    widest = max(widths)
    if batch * widest > MAX_ACTIVATIONS:
        raise InputError(f"--batch {batch} x width {widest} = {batch * widest:,} activations a layer; "
                         f"at most {MAX_ACTIVATIONS:,}")
    if widest * widest > MAX_ACTIVATIONS:
        raise InputError(f"width {widest}: a {widest}x{widest} weight is above {MAX_ACTIVATIONS:,} values")


def propagate(layers: int | None = 5, width=1000, activation: str = "tanh",
              inits=("standard", "xavier", "kaiming"), frameworks: str | None = "torch", batch: int = 1000,
              seed: int = 0, alpha: float = 1e-6, dist: str = "uniform",
              progress: Callable[[str], None] | None = None):
    """Glorot and Bengio's experiment, checked: every init of ``inits`` (a list
    or a comma string of standard, xavier, kaiming, lecun) in every framework
    of ``frameworks`` (a comma string, as ``-f``; ``standard`` is NumPy's, once)
    on a stack of ``layers`` dense layers of ``width`` (an int, or the sizes
    ``n_0, ..., n_L`` as a list or comma string), ``activation`` after each.

    Returns the frozen :class:`initcheck.propagate_checks.Propagation`: per
    init and layer the measured variances beside the theory's, the checks
    (Holm over the whole call at family-wise ``alpha``) where the theory is
    exact, ``bool()`` True unless a check failed.  ``progress(text)``, when
    given, is told which stack is being propagated."""
    from initcheck import frameworks as registry
    from initcheck.propagate_checks import REGIMES, decide

    if not 0.0 < alpha < 1.0:
        raise InputError(f"--alpha must be between 0 and 1, got {alpha}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"--seed must be an integer of 0 or more, got {seed!r}")
    if dist not in DISTS:
        raise InputError(f"unknown --dist {dist!r}; expected one of {', '.join(DISTS)}")
    widths = parse_widths(",".join(map(str, width)) if isinstance(width, (list, tuple)) else width, layers)
    chosen = parse_activation(activation)
    check_size(widths, batch)
    names = [n.strip() for n in inits.split(",")] if isinstance(inits, str) else list(inits)
    names = list(dict.fromkeys(n for n in names if n))
    if not names:
        raise InputError("--init is empty")
    specs = {name: init_spec(name, dist) for name in names}
    adapters = registry.resolve(frameworks) if any(spec is not None for spec in specs.values()) else []
    regime = REGIMES[chosen.name]
    runs = []
    for name, spec in specs.items():
        targets = [None] if spec is None else adapters
        for adapter in targets:
            framework = "numpy" if adapter is None else adapter.name
            plans = stack_plans(name, spec, adapter, widths)
            if isinstance(plans, Skip):
                runs.append(StackRun(name, framework, plans.api, chosen.name, widths, batch, reason=plans.reason))
                continue
            api = plans[0].api
            if progress is not None:
                progress(f"{name} · {framework}")
            layout = "keras" if adapter is None else adapter.layout
            runs.append(run_stack(name, framework, api, plans, widths, chosen, batch, seed, layout,
                                  regime.exact_forward, regime.exact_backward))
    settings = {"layers": len(widths) - 1, "widths": list(widths), "activation": chosen.name, "batch": batch,
                "seed": seed, "alpha": alpha, "dist": dist, "inits": names,
                "frameworks": sorted({run.framework for run in runs})}
    return decide(runs, alpha, settings)


class _CallableModule(types.ModuleType):
    """``initcheck.propagate`` is both this module and the API function: once
    the module is imported, the package attribute of that name is the module,
    so calling it calls :func:`propagate`."""

    def __call__(self, *args, **kwargs):
        return propagate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
