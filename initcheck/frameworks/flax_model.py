"""Flax models for ``initcheck model`` (NNX modules, and linen modules with an
example input): seeding, parameter names, layer defaults.

Flax is imported only when an NNX model is checked (:meth:`FlaxModels.accepts`
looks at ``sys.modules`` and imports nothing).

Seeding.  NNX has no global generator: every key a module draws comes from the
``nnx.Rngs`` it is given.  So the factory must take one of them: a factory with
a parameter ``rngs`` is called ``factory(rngs=nnx.Rngs(seed))``, else one with
a parameter ``seed`` is called ``factory(seed=seed)``; a factory that takes
neither and returns an NNX module is an :class:`InputError` (every instance
would be the same).  Nothing global is seeded or changed.  What is not an NNX
module is handed back as it is (:meth:`FlaxModels.accepts` then says no).

Names.  Every ``nnx.Param`` (not ``BatchStat`` or other variables), by its
dotted graph path (``layers.0.kernel``); a Param reached by a second path (a
shared submodule, ``self.head = self.embed.embedding``) is listed again under
that path, ``tied_to`` the first (paths are visited in NNX's own attribute
order).

Laws.  An NNX module does not keep the init functions it was given, so while
the factory runs, :meth:`FlaxModels.build` notes the ``*_init`` arguments each
of the layers below receives in its ``__init__`` (the class's ``__init__`` is
wrapped for the duration of the call only, and put back after); a layer's
default applies when its init function *is* the default object of flax's source
(the ``__init__`` signature default: ``flax/nnx/nn/linear.py``
``default_kernel_init = initializers.lecun_normal()``, ``default_bias_init =
initializers.zeros_init()``, ``default_embed_init =
initializers.variance_scaling(1.0, 'fan_in', 'normal', out_axis=0)``;
``flax/nnx/nn/normalization.py`` ``scale_init = initializers.ones_init()`` /
``initializers.ones``, ``bias_init = initializers.zeros_init()``), and the
Param is still the one that ``__init__`` made.  ``zeros_init()`` and
``ones_init()`` return JAX's ``zeros`` and ``ones`` themselves, so a configured
``zeros`` / ``ones`` is recognised too.  Any other init function has no
documented law here: :class:`Unknown` ("add a rule").

===============================  ================================================================
layer                            law
===============================  ================================================================
Linear, LinearGeneral, Einsum,   kernel: ``lecun_normal`` = ``variance_scaling(1, "fan_in",
Conv, ConvTranspose              "truncated_normal")``: N(0, σ) cut at ±2σ with
                                 σ = sqrt(1 / fan_in) / 0.87962566103423978, a truncated normal
                                 *corrected* so that the truncated law's variance is exactly
                                 1 / fan_in; bias: zeros
Embed                            embedding: ``variance_scaling(1, "fan_in", "normal",
                                 out_axis=0)``: a plain (untruncated) normal N(0, sqrt(1 / F))
LayerNorm, RMSNorm, BatchNorm,   scale: ones; bias: zeros
GroupNorm, InstanceNorm
===============================  ================================================================

Flax linen.  A linen module holds no parameters until ``module.init(key,
*inputs)`` makes them, so a linen factory returns ``(module, *inputs)``, the
module and an example input (``(nn.Dense(10), jnp.ones((1, 784)))``); it is
called as an NNX factory is (with ``seed=`` when it takes one), and instance
``seed`` is ``module.init(jax.random.key(seed), *inputs)``, so the factory
itself need not be seeded.  A bare linen module, with no input, is an
:class:`InputError`.  Names are the paths of the ``params`` collection
(``Dense_0.kernel``; other collections, ``batch_stats`` say, are state, not
parameters).  A linen layer keeps its init functions as fields, so while
``init`` runs, the bound layer at each path is noted
(``flax.linen.intercept_methods``, for that call only), and its
``kernel_init`` (``bias_init``, ``embedding_init``, ``scale_init``) is
compared with the field's default in flax's own class
(``flax/linen/linear.py``: ``default_kernel_init = initializers.lecun_normal()``,
``bias_init = initializers.zeros_init()``, ``default_embed_init``;
``flax/linen/normalization.py``: ``initializers.ones`` / ``zeros``).  The laws
are the table's: ``Dense`` has ``Linear``'s, ``Einsum``, ``Conv``,
``ConvTranspose``, ``Embed`` and the norms their NNX namesakes'.
``DenseGeneral`` (its kernel initialized flattened over ``axis`` and
``batch_dims``) has no rule here.

Fans are JAX's (``jax._src.nn.initializers._compute_fans``): ``in_axis=-2``,
``out_axis=-1``, the other axes the receptive field, fan_in = in × receptive
field.  A Conv kernel is ``(*k, in / feature_group_count, out)``, so a grouped
Conv's fan_in is prod(k) · in / groups; a ConvTranspose kernel ``(*k, in,
out)`` (``(*k, out, in)`` with ``transpose_kernel``) is read the same way.
LinearGeneral initializes the flattened kernel (prod(batch) · prod(in),
prod(out)).  An ``(num_embeddings, F)`` table with ``out_axis=0`` has
in = out = num_embeddings and receptive field F / num_embeddings, so
fan_in = F.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import sys
import threading
import weakref
from contextlib import contextmanager

import numpy as np

from initcheck.errors import InputError
from initcheck.expectation import Expectation, Unknown
from initcheck.frameworks.custom import callable_name, takes_keyword
from initcheck.frameworks.model_base import ModelFramework, ParameterRef, PerModel
from initcheck.laws import Constant
from initcheck.schemes import variance_scaling

#: The layers with documented defaults: class -> {init parameter: the Param it makes}.
LAYERS = {
    "Linear": {"kernel_init": "kernel", "bias_init": "bias"},
    "LinearGeneral": {"kernel_init": "kernel", "bias_init": "bias"},
    "Einsum": {"kernel_init": "kernel", "bias_init": "bias"},
    "Conv": {"kernel_init": "kernel", "bias_init": "bias"},
    "ConvTranspose": {"kernel_init": "kernel", "bias_init": "bias"},
    "Embed": {"embedding_init": "embedding"},
    "LayerNorm": {"scale_init": "scale", "bias_init": "bias"},
    "RMSNorm": {"scale_init": "scale"},
    "BatchNorm": {"scale_init": "scale", "bias_init": "bias"},
    "GroupNorm": {"scale_init": "scale", "bias_init": "bias"},
    "InstanceNorm": {"scale_init": "scale", "bias_init": "bias"},
}
_KERNEL_LAYERS = ("Linear", "LinearGeneral", "Einsum", "Conv", "ConvTranspose")
#: The linen layers with documented defaults -> the NNX layer of :data:`LAYERS` whose law they share.
LINEN_LAYERS = {"Dense": "Linear", "Einsum": "Einsum", "Conv": "Conv", "ConvTranspose": "ConvTranspose",
                "Embed": "Embed", "LayerNorm": "LayerNorm", "RMSNorm": "RMSNorm", "BatchNorm": "BatchNorm",
                "GroupNorm": "GroupNorm", "InstanceNorm": "InstanceNorm"}


class _BelowError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def _nnx():
    """flax.nnx, imported with JAX's "no GPU" backend warnings kept out."""
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None:
        return nnx
    logger, quiet = logging.getLogger("jax._src.xla_bridge"), _BelowError()
    logger.addFilter(quiet)
    try:
        from flax import nnx
    except ImportError as error:
        raise InputError(f"flax cannot be imported ({error}); pip install flax") from None
    finally:
        logger.removeFilter(quiet)
    return nnx


def jax_fans(shape, in_axis=-2, out_axis=-1, batch_axis=()) -> tuple[float, float]:
    """(fan_in, fan_out) as JAX's ``_compute_fans`` computes them (floats when
    the receptive field is not whole, as for an embedding table)."""
    shape = tuple(int(d) for d in shape)

    def size(axes):
        return shape[axes] if isinstance(axes, int) else math.prod(shape[a] for a in axes)

    in_size, out_size, batch_size = size(in_axis), size(out_axis), size(batch_axis)
    receptive = math.prod(shape) / in_size / out_size / batch_size
    fan_in, fan_out = in_size * receptive, out_size * receptive
    as_int = lambda x: int(round(x)) if abs(x - round(x)) < 1e-9 else x  # noqa: E731
    return as_int(fan_in), as_int(fan_out)


# --- what each layer's __init__ was given ------------------------------------


class _Built:
    """The layers one build constructed: per module, its class and init functions."""

    def __init__(self):
        #: id(module) -> (weakref to module, flax class name, {init param: fn}, {attr: (Param, value)})
        self.modules: dict[int, tuple] = {}
        #: (flax class name, init param) -> whether each construction passed flax's default
        self.by_class: dict[tuple[str, str], set[bool]] = {}

    def add(self, module, kind: str, inits: dict, defaults: dict) -> None:
        made = {}
        for param, attribute in LAYERS[kind].items():
            variable = vars(module).get(attribute)
            if variable is not None and hasattr(variable, "get_raw_value"):
                made[attribute] = (variable, variable.get_raw_value())
            self.by_class.setdefault((kind, param), set()).add(inits.get(param) is defaults.get(param))
        key = id(module)
        try:
            ref = weakref.ref(module, lambda _, key=key, modules=self.modules: modules.pop(key, None))
        except TypeError:
            return
        self.modules[key] = (ref, kind, inits, made)

    def module(self, module):
        found = self.modules.get(id(module))
        if found is not None and found[0]() is module:
            return found
        return None


_RECORDING = threading.local()
_PATCH_LOCK = threading.RLock()
_PATCH_DEPTH = [0]
_ORIGINALS: dict[type, tuple] = {}


def _wrap(kind: str, original, signature, defaults):
    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        stack = getattr(_RECORDING, "stack", None)
        if not stack:
            return original(self, *args, **kwargs)
        try:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            inits = {param: bound.arguments.get(param) for param in LAYERS[kind]}
        except TypeError:
            inits = None
        result = original(self, *args, **kwargs)
        if inits is not None:
            stack[-1].add(self, kind, inits, defaults)
        return result

    return __init__


def _flax_kind(module) -> str | None:
    """The flax layer of :data:`LAYERS` that ``module`` is (its nearest base among them)."""
    nnx = sys.modules.get("flax.nnx")
    if nnx is None:
        return None
    for cls in type(module).__mro__:
        if cls.__name__ in LAYERS and getattr(nnx, cls.__name__, None) is cls:
            return cls.__name__
    return None


def _defaults(kind: str) -> dict:
    """The default init functions of flax's ``kind.__init__`` (its signature defaults)."""
    parameters = inspect.signature(getattr(_nnx(), kind).__init__).parameters  # follows a wrapper's __wrapped__
    return {param: parameters[param].default for param in LAYERS[kind] if param in parameters}


@contextmanager
def _recording(nnx):
    """Note, in a :class:`_Built`, the init functions each layer of
    :data:`LAYERS` receives while the block runs; their ``__init__`` is put
    back afterwards."""
    built = _Built()
    with _PATCH_LOCK:
        if _PATCH_DEPTH[0] == 0:
            for kind in LAYERS:
                cls = getattr(nnx, kind, None)
                if not isinstance(cls, type) or "__init__" not in vars(cls):
                    continue
                original = vars(cls)["__init__"]
                signature = inspect.signature(original)
                defaults = {p: signature.parameters[p].default for p in LAYERS[kind] if p in signature.parameters}
                _ORIGINALS[cls] = (original, defaults)
                cls.__init__ = _wrap(kind, original, signature, defaults)
        _PATCH_DEPTH[0] += 1
    stack = getattr(_RECORDING, "stack", None)
    if stack is None:
        stack = _RECORDING.stack = []
    stack.append(built)
    try:
        yield built
    finally:
        stack.pop()
        with _PATCH_LOCK:
            _PATCH_DEPTH[0] -= 1
            if _PATCH_DEPTH[0] == 0:
                for cls, (original, _) in _ORIGINALS.items():
                    cls.__init__ = original
                _ORIGINALS.clear()


#: id(model) -> (weakref to model, _Built): what build() saw, for default().
_BUILDS: dict[int, tuple] = {}


def _remember(model, built: _Built) -> None:
    key = id(model)
    try:
        ref = weakref.ref(model, lambda _, key=key: _BUILDS.pop(key, None))
    except TypeError:
        return
    _BUILDS[key] = (ref, built)


def _built_of(model) -> _Built | None:
    found = _BUILDS.get(id(model))
    if found is not None and found[0]() is model:
        return found[1]
    return None


# --- the adapter --------------------------------------------------------------


class FlaxModels(ModelFramework):
    """Flax NNX modules, and linen modules with an example input (module docstring)."""

    name = "flax"
    title = "Flax"
    layout = "keras"

    def __init__(self):
        #: model -> its walk (every named weight, once per live model)
        self._entries = PerModel(_walk)

    def version(self) -> str:
        import flax
        import jax

        return f"{flax.__version__} (jax {jax.__version__})"

    @staticmethod
    def accepts(model) -> bool:
        nnx = sys.modules.get("flax.nnx")
        module = getattr(nnx, "Module", None)
        return (isinstance(module, type) and isinstance(model, module)) or isinstance(model, LinenModel) \
            or _linen_pair(model) is not None

    def build(self, factory, seed: int):
        nnx = _nnx()
        if takes_keyword(factory, "rngs"):
            def call():
                return factory(rngs=nnx.Rngs(seed))
        elif takes_keyword(factory, "seed"):
            def call():
                return factory(seed=seed)
        else:
            call = factory
        with _recording(nnx) as built:
            model = call()
        pair = _linen_pair(model)
        if pair is not None:
            return _linen_init(*pair, seed)
        linen = sys.modules.get("flax.linen")
        if linen is not None and isinstance(model, linen.Module):
            raise InputError(
                f"{callable_name(factory)} returned a flax.linen {type(model).__name__} alone: a linen module has no "
                "parameters until init(key, x), so return the module and an example input, (module, x)")
        if not isinstance(model, nnx.Module):
            return model  # another framework's: the engine tries the next adapter (accepts())
        if call is factory:
            raise InputError(
                f"{callable_name(factory)} takes neither `seed` nor `rngs`: NNX has no global generator to seed, "
                "so an NNX factory must take `seed` (an int) or `rngs` (an nnx.Rngs) and build the model from it")
        _remember(model, built)
        return model

    def parameters(self, model) -> list[ParameterRef]:
        if isinstance(model, LinenModel):
            return [ParameterRef(name, tuple(int(d) for d in value.shape), str(value.dtype),
                                 type(layer).__name__ if layer is not None else "", attribute)
                    for name, (layer, attribute, value) in self._entries(model).items()]
        refs = []
        for name, (parent, key, variable, tied_to) in self._entries(model).items():
            value = variable.get_raw_value()
            refs.append(ParameterRef(name, tuple(int(d) for d in value.shape), str(value.dtype),
                                     type(parent).__name__, str(key), tied_to))
        return refs

    def values(self, model, ref: ParameterRef):
        variable = self._entries(model)[ref.name][2]
        return np.asarray(variable if isinstance(model, LinenModel) else variable.get_value())

    def default(self, model, ref: ParameterRef) -> Expectation | Unknown:
        entry = self._entries(model).get(ref.name)
        if entry is None:
            return Unknown(f"{ref.name} is not a Param of this model")
        if isinstance(model, LinenModel):
            return linen_default(*entry)
        parent, key, variable, _ = entry
        return layer_default(parent, str(key), variable, _built_of(model))


def _walk(model) -> dict:
    """name -> (parent node, key, Param, tied_to) for every path to every Param;
    for a linen model, name -> (bound layer or None, attribute, array)."""
    if isinstance(model, LinenModel):
        return _linen_walk(model)
    nnx = _nnx()
    from flax.nnx import graphlib

    entries: dict = {}
    first: dict[int, str] = {}
    active: set[int] = set()

    def visit(node, path):
        impl = graphlib.get_node_impl(node)
        if impl is None or id(node) in active:  # not a node, or a cycle
            return
        active.add(id(node))
        try:
            for key, child in impl.node_dict(node).items():
                if isinstance(child, nnx.Variable):
                    if isinstance(child, nnx.Param):
                        name = ".".join(str(k) for k in (*path, key))
                        entries[name] = (node, key, child, first.get(id(child)))
                        first.setdefault(id(child), name)
                elif graphlib.is_node(child):
                    visit(child, (*path, key))
        finally:
            active.discard(id(node))

    visit(model, ())
    return entries


def _g(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def layer_default(module, attribute: str, variable, built: _Built | None) -> Expectation | Unknown:
    """The documented default law of ``module.<attribute>`` (module docstring)."""
    kind = type(module).__name__
    base = _flax_kind(module)
    params = {a: p for p, a in LAYERS.get(base, {}).items()}
    if base is None or attribute not in params:
        return Unknown(f"no documented default for {kind}.{attribute}; add a rule")
    param = params[attribute]
    defaults = _defaults(base)
    if built is None:
        return Unknown(f"{kind}.{attribute}: the model was not built by initcheck, so the {param} its "
                       f"{base} was given is unknown; add a rule")
    record = built.module(module)
    note = ""
    if record is not None:
        _, _, inits, made = record
        init = inits.get(param)
        original = made.get(attribute)
        if original is None or original[0] is not variable or original[1] is not variable.get_raw_value():
            return Unknown(f"{kind}.{attribute} was set again after {base}.__init__ made it; add a rule")
        is_default = init is defaults.get(param)
    else:
        # made outside the factory's own call (nnx.jit, eval_shape, split/merge): the
        # layers of its kind that were constructed all tell the same story, or nothing can be said
        seen = built.by_class.get((base, param), set())
        if seen != {True}:
            why = ("no " + base + " was constructed while the factory ran" if not seen
                   else f"not every {base} the factory made has the default {param}")
            return Unknown(f"{kind}.{attribute}: {why}, and this {kind} is not one initcheck saw built; add a rule")
        init, is_default = defaults.get(param), True
        note = f" (every {base} the factory constructed had the default {param})"
    shape = tuple(int(d) for d in variable.get_raw_value().shape)
    return _law(module, kind, base, param, attribute, init, is_default, shape, note, "flax")


def _law(module, kind: str, base: str, param: str, attribute: str, init, is_default: bool, shape, note: str,
         library: str) -> Expectation | Unknown:
    """The law of ``kind.attribute`` (a ``base`` layer, NNX's name for it)
    made by ``init``, flax's own default or not (module docstring)."""
    import jax

    how = "the default" if is_default else "configured"
    if init is jax.nn.initializers.zeros:
        return Expectation(Constant(0.0), f"{library} {kind}.{param} (zeros, {how})", "zeros: every value 0" + note)
    if init is jax.nn.initializers.ones:
        return Expectation(Constant(1.0), f"{library} {kind}.{param} (ones, {how})", "ones: every value 1" + note)
    if not is_default:
        return Unknown(f"{kind}.{attribute} has a custom {param}; add a rule")
    source = f"{library} {kind}.{param} ({'default_embed_init' if base == 'Embed' else 'lecun_normal'}, the default)"
    if base == "Embed":
        if len(shape) != 2:
            return Unknown(f"{kind}.{attribute} has shape {shape}, not (num_embeddings, features); add a rule")
        fan_in, _ = jax_fans(shape, -2, 0)
        law = variance_scaling(1.0, "fan_in", "normal", fan_in, fan_in)
        text = (f"variance_scaling(1.0, 'fan_in', 'normal', out_axis=0): N(0, sqrt(1/fan_in)), "
                f"fan_in {_g(fan_in)} = features of the ({shape[0]}, {shape[1]}) table")
        return Expectation(law, source, text + note)
    if base in _KERNEL_LAYERS and attribute == "kernel":
        extra = ""
        if base == "LinearGeneral":
            n_batch, n_in = len(getattr(module, "batch_axis", {}) or {}), len(module.in_features)
            flat = (math.prod(shape[:n_batch + n_in]), math.prod(shape[n_batch + n_in:]))
            fan_in, fan_out = jax_fans(flat)
            extra = f" of the flattened kernel {flat}"
        else:
            if len(shape) < 2:
                return Unknown(f"{kind}.{attribute} has {len(shape)} dimension(s); lecun_normal needs 2; add a rule")
            fan_in, fan_out = jax_fans(shape)
            groups = getattr(module, "feature_group_count", 1)
            if base == "Conv" and groups != 1:
                extra = f" (in_features / feature_group_count {groups})"
        law = variance_scaling(1.0, "fan_in", "truncated-normal", fan_in, fan_out)
        text = (f"lecun_normal: N(0, sqrt(1/fan_in)/0.87962566) cut at ±2σ (variance 1/fan_in), "
                f"fans {_g(fan_in)}, {_g(fan_out)}{extra}")
        return Expectation(law, source, text + note)
    return Unknown(f"no documented default for {kind}.{attribute}; add a rule")


# --- Flax linen ---------------------------------------------------------------


class LinenModel:
    """A flax.linen module as initcheck initialized it: ``variables`` from
    ``module.init(key, *inputs)``, and ``layers``, the bound layer at each
    path (a tuple of names) that ran during that call."""

    def __init__(self, module, variables, layers: dict):
        self.module, self.variables, self.layers = module, variables, layers


def _linen_pair(model):
    """(module, inputs) when ``model`` is a linen factory's ``(module, *inputs)``, else None."""
    module = getattr(sys.modules.get("flax.linen"), "Module", None)
    if isinstance(model, tuple) and len(model) >= 2 and isinstance(module, type) and isinstance(model[0], module):
        return model[0], tuple(model[1:])
    return None


def _linen_init(module, inputs: tuple, seed: int) -> LinenModel:
    """``module.init(jax.random.key(seed), *inputs)``, noting the bound layer at each path."""
    import flax.linen as nn
    import jax

    layers = {}

    def note(next_fun, args, kwargs, context):
        layers.setdefault(tuple(context.module.path), context.module)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(note):
        variables = module.init(jax.random.key(seed), *inputs)
    return LinenModel(module, variables, layers)


def _linen_walk(model: LinenModel) -> dict:
    import jax

    entries = {}
    for path, value in jax.tree_util.tree_leaves_with_path(dict(model.variables).get("params", {})):
        keys = tuple(str(getattr(entry, "key", entry)) for entry in path)
        entries[".".join(keys)] = (model.layers.get(keys[:-1]), keys[-1], value)
    return entries


def _linen_kind(layer) -> str | None:
    """The linen layer of :data:`LINEN_LAYERS` that ``layer`` is (its nearest base among them)."""
    linen = sys.modules.get("flax.linen")
    for cls in type(layer).__mro__:
        if cls.__name__ in LINEN_LAYERS and getattr(linen, cls.__name__, None) is cls:
            return cls.__name__
    return None


def linen_default(layer, attribute: str, value) -> Expectation | Unknown:
    """The documented default law of the linen ``layer``'s parameter ``attribute`` (module docstring)."""
    if layer is None:
        return Unknown(f"no layer was seen making {attribute}; add a rule")
    kind, base = type(layer).__name__, _linen_kind(layer)
    params = {a: p for p, a in LAYERS.get(LINEN_LAYERS.get(base), {}).items()}
    if base is None or attribute not in params:
        return Unknown(f"no documented default for {kind}.{attribute}; add a rule")
    param = params[attribute]
    field = getattr(sys.modules["flax.linen"], base).__dataclass_fields__.get(param)
    init = getattr(layer, param, None)
    is_default = field is not None and init is field.default
    shape = tuple(int(d) for d in value.shape)
    return _law(layer, kind, LINEN_LAYERS[base], param, attribute, init, is_default, shape, "", "flax.linen")
