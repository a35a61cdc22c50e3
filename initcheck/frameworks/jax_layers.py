"""The JAX layer libraries' own dense and conv layers, built for real (``initcheck defaults -f jax``).

One table, :data:`LIBRARIES`, says for each library its dense and conv call,
how it builds them, the law it documents for the weight and the bias, and its
weight layout; :func:`default_rows` makes the rows of every library from it.
Each row's ``Plan.framework`` is the library's name and its ``api`` the call.
The laws, from the libraries' sources:

* **Flax linen** ``Dense(out)`` / ``Conv(out, kernel)`` and **Flax NNX**
  ``nnx.Linear(in, out)`` / ``nnx.Conv(in, out, kernel)`` (``flax/linen/linear.py``,
  ``flax/nnx/nn/linear.py``: ``default_kernel_init = initializers.lecun_normal()``,
  ``default_bias_init = initializers.zeros_init()``).  Kernel ``(*kernel, in,
  out)``: ``lecun_normal`` = ``variance_scaling(1, "fan_in",
  "truncated_normal")``, N(0, σ) cut at ±2σ with σ = sqrt(1 / fan_in) /
  0.87962566103423978, a truncated normal **corrected** so that its variance
  is exactly 1 / fan_in.  Bias ``(out,)``: zeros.

* **Equinox** ``eqx.nn.Linear(in, out)`` / ``eqx.nn.Conv2d(in, out, kernel)``
  (``equinox/nn/_linear.py``, ``equinox/nn/_conv.py``, ``default_init`` in
  ``equinox/nn/_misc.py``).  PyTorch's layout: weight ``(out, in)`` /
  ``(out, in / groups, *kernel)``, bias ``(out,)`` / ``(out, 1, ..., 1)`` (one
  1 per spatial dimension).  Both are ``jax.random.uniform(key, shape,
  minval=-lim, maxval=lim)`` with lim = 1 / sqrt(fan_in), fan_in = in / groups
  · prod(kernel): U(±1/sqrt(fan_in)), the *bias too* (PyTorch's law for both,
  variance 1 / (3 fan_in)).  The layer's key is split once, ``wkey, bkey =
  jax.random.split(key, 2)``: the weight is drawn from ``wkey``, the bias from
  ``bkey``, so within one layer they are independent.

* **Haiku** ``hk.Linear(out)`` / ``hk.Conv2D(out, kernel)`` (``haiku/_src/basic.py``
  ``Linear.__call__``, ``haiku/_src/conv.py`` ``ConvND.__call__``).  Weight
  ``w`` ``(*kernel, in / groups, out)``: when ``w_init`` is None, both
  layers use ``hk.initializers.TruncatedNormal(stddev=1 / sqrt(fan_in))``
  (the conv's fan_in = prod(w_shape[:-1])), not ``VarianceScaling``.
  Haiku's ``TruncatedNormal(stddev=s)`` (``haiku/_src/initializers.py``) is
  ``s · jax.random.truncated_normal(key, -2, 2)``: N(0, s) cut at ±2s, with
  **no correction**, so its standard deviation is 0.87962566 s and its
  variance 0.77374 / fan_in, not 1 / fan_in.  Only ``hk.initializers.
  VarianceScaling(..., "truncated_normal")`` (and so Haiku's named
  ``lecun_normal`` / ``he_normal`` / ``glorot_normal`` spellings of it)
  divides by 0.87962566103423978.  Bias ``b`` ``(out,)``: zeros (``b_init or
  jnp.zeros``).  Parameters take the input's dtype.

So of the three "truncated normal" defaults, Flax's is corrected (variance
1 / fan_in) and Haiku's is not (variance 0.7737 / fan_in); the laws below say
so exactly (:class:`~initcheck.laws.TruncatedNormal` takes the bounds in
absolute units: ``TruncatedNormal(0, s, -2s, 2s)``).

Drawing.  Draw i builds the real layer on the real shape from the key
``jax.random.key(seed_i)``: linen ``module.init(key, x)``, NNX the
constructor with ``rngs=nnx.Rngs(params=key)``, Equinox the constructor with
``key=key``, Haiku ``hk.transform(f).init(key, x)`` (``x`` an input of ones
of the row's dtype, made inside the trace), and the row keeps one parameter.
Batches (:class:`~initcheck.frameworks.jax_nn._Batched`) ``jax.vmap`` that
same per-key build over ``jax.random.split(jax.random.key(seed), count)``,
so draw j of a batch is exactly the layer built from ``keys[j]``; for
Equinox this is what ``eqx.filter_vmap`` of the constructor does (its
arrays are the mapped outputs).  A library that is not installed gives one
Skip row, "X is not installed (pip install X)".
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from typing import Callable

import jax
import numpy as np

from initcheck.frameworks.base import Plan, Skip
from initcheck.frameworks.jax_nn import _Batched, _precision, jax_device
from initcheck.laws import Constant, Law, TruncatedNormal, Uniform
from initcheck.schemes import variance_scaling


def _conv_name(prefix: str, layer, suffix: str) -> str:
    """``Conv2d`` for 1-3 spatial dimensions (the library's own class), else ``Conv``."""
    return f"{prefix}{len(layer.kernel)}{suffix}" if 1 <= len(layer.kernel) <= 3 else "Conv"


# --- each library's build: layer, dtype -> (key -> {parameter name: array}) --


def _example(layer, dtype):
    import jax.numpy as jnp

    return jnp.ones((1, *layer.kernel, layer.in_features), dtype)


def _linen(layer, dtype):
    import flax.linen as nn

    if layer.kernel:
        module = nn.Conv(layer.out_features, layer.kernel, padding="VALID", dtype=dtype, param_dtype=dtype)
    else:
        module = nn.Dense(layer.out_features, dtype=dtype, param_dtype=dtype)
    return lambda key: module.init(key, _example(layer, dtype))["params"]


def _nnx(layer, dtype):
    from flax import nnx

    def build(key):
        rngs = nnx.Rngs(params=key)
        if layer.kernel:
            module = nnx.Conv(layer.in_features, layer.out_features, layer.kernel, padding="VALID",
                              dtype=dtype, param_dtype=dtype, rngs=rngs)
        else:
            module = nnx.Linear(layer.in_features, layer.out_features, dtype=dtype, param_dtype=dtype, rngs=rngs)
        return {"kernel": module.kernel.get_value(), "bias": module.bias.get_value()}

    return build


def _equinox(layer, dtype):
    import equinox as eqx
    import jax.numpy as jnp

    dtype = jnp.dtype(dtype)

    def build(key):
        if not layer.kernel:
            module = eqx.nn.Linear(layer.in_features, layer.out_features, dtype=dtype, key=key)
        elif 1 <= len(layer.kernel) <= 3:
            cls = getattr(eqx.nn, _conv_name("Conv", layer, "d"))
            module = cls(layer.in_features, layer.out_features, layer.kernel, dtype=dtype, key=key)
        else:
            module = eqx.nn.Conv(len(layer.kernel), layer.in_features, layer.out_features, layer.kernel,
                                 dtype=dtype, key=key)
        return {"weight": module.weight, "bias": module.bias}

    return build


def _haiku(layer, dtype):
    import haiku as hk

    def forward(x):
        if not layer.kernel:
            return hk.Linear(layer.out_features)(x)
        if 1 <= len(layer.kernel) <= 3:
            return getattr(hk, _conv_name("Conv", layer, "D"))(layer.out_features, layer.kernel, padding="VALID")(x)
        return hk.ConvND(len(layer.kernel), layer.out_features, layer.kernel, padding="VALID")(x)

    init = hk.transform(forward).init

    def build(key):
        (params,) = init(key, _example(layer, dtype)).values()  # the one module's {"w", "b"}
        return params

    return build


# --- laws ------------------------------------------------------------------


def _lecun_normal(layer) -> Law:
    """Flax's ``lecun_normal``: the corrected truncated normal, variance 1 / fan_in."""
    return variance_scaling(1.0, "fan_in", "truncated-normal", layer.fan_in, layer.fan_out)


def _torch_uniform(layer) -> Law:
    """Equinox's ``default_init``: U(±1 / sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(layer.fan_in)
    return Uniform(-bound, bound)


def _uncorrected_truncated_normal(layer) -> Law:
    """Haiku's ``TruncatedNormal(stddev=s)``, s = 1 / sqrt(fan_in): N(0, s) cut at ±2s, variance 0.7737 s²."""
    stddev = 1.0 / math.sqrt(layer.fan_in)
    return TruncatedNormal(0.0, stddev, -2.0 * stddev, 2.0 * stddev)


def _zeros(layer) -> Law:
    return Constant(0.0)


@dataclass(frozen=True)
class LayerLibrary:
    """One library's dense and conv layers: how to build them and what they document."""

    #: ``Plan.framework``: the library's name.
    name: str
    #: The package to find, and to pip install.
    package: str
    pip: str
    #: The layout of its weight (:data:`initcheck.layers.WEIGHT_LAYOUTS`).
    layout: str
    #: (weight, bias): the parameters' names in the library.
    parameters: tuple[str, str]
    #: The call, for the row's api: dense and conv.
    dense: Callable[[object], str]
    conv: Callable[[object], str]
    #: layer, dtype -> a function of one key returning {parameter: array}.
    build: Callable
    weight_law: Callable[[object], Law]
    bias_law: Callable[[object], Law]
    #: The bias's shape, when not ``(out,)``.
    bias_shape: Callable[[object], tuple[int, ...]] = lambda layer: (layer.out_features,)

    def call(self, layer) -> str:
        return self.conv(layer) if layer.kernel else self.dense(layer)


LIBRARIES = (
    LayerLibrary(
        "flax", "flax", "flax", "keras", ("kernel", "bias"),
        dense=lambda l: f"flax.linen.Dense({l.out_features})",
        conv=lambda l: f"flax.linen.Conv({l.out_features}, {l.kernel})",
        build=_linen, weight_law=_lecun_normal, bias_law=_zeros),
    LayerLibrary(
        "flax", "flax", "flax", "keras", ("kernel", "bias"),
        dense=lambda l: f"flax.nnx.Linear({l.in_features}, {l.out_features})",
        conv=lambda l: f"flax.nnx.Conv({l.in_features}, {l.out_features}, {l.kernel})",
        build=_nnx, weight_law=_lecun_normal, bias_law=_zeros),
    LayerLibrary(
        "equinox", "equinox", "equinox", "torch", ("weight", "bias"),
        dense=lambda l: f"equinox.nn.Linear({l.in_features}, {l.out_features})",
        conv=lambda l: (f"equinox.nn.{_conv_name('Conv', l, 'd')}({l.in_features}, {l.out_features}, {l.kernel})"
                        if 1 <= len(l.kernel) <= 3 else
                        f"equinox.nn.Conv({len(l.kernel)}, {l.in_features}, {l.out_features}, {l.kernel})"),
        build=_equinox, weight_law=_torch_uniform, bias_law=_torch_uniform,
        bias_shape=lambda l: (l.out_features, *(1,) * len(l.kernel))),
    LayerLibrary(
        "haiku", "haiku", "dm-haiku", "keras", ("w", "b"),
        dense=lambda l: f"haiku.Linear({l.out_features})",
        conv=lambda l: (f"haiku.{_conv_name('Conv', l, 'D')}({l.out_features}, {l.kernel})"
                        if 1 <= len(l.kernel) <= 3 else
                        f"haiku.ConvND({len(l.kernel)}, {l.out_features}, {l.kernel})"),
        build=_haiku, weight_law=_uncorrected_truncated_normal, bias_law=_zeros),
)


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def library_rows(library: LayerLibrary, layer, device: str, dtype: str) -> list[tuple[str, Plan | Skip]]:
    """(parameter, plan) for the weight and bias of ``library``'s layer."""
    weight_name, bias_name = library.parameters
    call = library.call(layer)
    if not installed(library.package):
        reason = f"{library.package} is not installed (pip install {library.pip})"
        return [(weight_name, Skip(library.name, call, reason, device, dtype, layer.shape(library.layout)))]
    target = jax_device(device)
    built = library.build(layer, dtype)
    init = jax.jit(lambda seed: built(jax.random.key(seed)))

    def draw_of(name):
        def draw(seed: int):
            with _precision(dtype), jax.default_device(target):
                return init(np.uint32(seed % 2**32))[name]

        return draw

    def batched(name):
        # Draw j of a batch is the whole layer built from keys[j], of which the row keeps one parameter.
        return _Batched(lambda key: built(key)[name], target, dtype)

    rows = []
    for name, law, shape in ((weight_name, library.weight_law(layer), layer.shape(library.layout)),
                             (bias_name, library.bias_law(layer), library.bias_shape(layer))):
        constant = isinstance(law, Constant)
        rows.append((name, Plan(library.name, f"{call}.{name}", law, shape, device, dtype, draw_of(name),
                                samples=10 * math.prod(shape) if constant else None,
                                draw_batch=None if constant else batched(name))))
    return rows


def default_rows(layer, device: str, dtype: str, libraries=LIBRARIES) -> list[tuple[str, Plan | Skip]]:
    """Every library's weight and bias rows for ``layer``, in :data:`LIBRARIES`' order."""
    return [row for library in libraries for row in library_rows(library, layer, device, dtype)]
