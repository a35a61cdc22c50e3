"""Equinox models for ``initcheck model``: seeding, parameter names, layer defaults.

Equinox is imported only when an Equinox model is checked
(:meth:`EquinoxModels.accepts` looks at ``sys.modules`` and imports nothing).

Seeding.  Equinox has no global generator: every layer draws from the
``key=`` it is given.  So the factory must take one: a factory with a
parameter ``key`` is called ``factory(key=jax.random.PRNGKey(seed))`` (the
raw ``uint32[2]`` key every JAX function and every Equinox layer accepts),
else one with a parameter ``seed`` is called ``factory(seed=seed)``; a factory
that takes neither and returns an ``eqx.Module`` (or a list, tuple or dict of
them) is an :class:`InputError`
(every instance would be the same).  Nothing global is seeded or changed.
What is not an ``eqx.Module`` is handed back as it is
(:meth:`EquinoxModels.accepts` then says no).

Names.  Every inexact array leaf of the module's pytree (what
``eqx.is_inexact_array`` keeps, what an optimizer trains) by its pytree path,
``layers.0.weight``; static fields are not leaves, and a
``eqx.nn.StateIndex`` (BatchNorm's running statistics) is state, not a
parameter.  No parameter is ``tied_to`` another: in a pytree, the same array
at two leaves is two parameters, which training updates apart, so the model
engine's duplicate check reports it as a copy; Equinox ties with
``eqx.nn.Shared``, whose shared leaves are not in the pytree (a
``SharedNode`` stands in their place).

Laws.  An Equinox layer takes no init function: its arrays are always
drawn by its own ``__init__`` (``equinox/nn/``), so the law is the layer's
documented one, for a layer found by its class (the nearest base among the
table's).  An array the user replaced afterwards (``eqx.tree_at``, or an
``Embedding(weight=...)``) is checked against that same law, and a different
law FAILs: that is what this command is for; give such a parameter a rule.

=========================  ===========================================================
layer                      law (``equinox/nn/`` file)
=========================  ===========================================================
Linear                     weight ``(out, in)`` and bias ``(out,)``: U(±1/sqrt(in))
                           (``_linear.py``, ``default_init`` of ``_misc.py``: the bias
                           too; ``"scalar"`` features count 1, 0 in-features give
                           U(±1))
Conv, Conv1d/2d/3d,        weight ``(out, in / groups, *kernel)`` and bias
ConvTranspose(1d/2d/3d)    ``(out, 1, ..., 1)``: U(±1/sqrt(in / groups · prod(kernel)))
                           (``_conv.py``)
Embedding                  weight ``(num_embeddings, size)``: N(0, 1), ``jax.random.
                           normal`` (``_embedding.py``)
GRUCell, LSTMCell          every weight and bias: U(±1/sqrt(hidden_size)) (``_rnn.py``)
LayerNorm, RMSNorm,        weight: ones; bias: zeros (``_normalisation.py``,
GroupNorm, BatchNorm       ``_batch_norm.py``)
=========================  ===========================================================

Other arrays (``PReLU``'s ``init_alpha``, a user module's own arrays) have no
documented default here: :class:`Unknown` ("add a rule").
"""

from __future__ import annotations

import logging
import math
import sys

import numpy as np

from initcheck.errors import InputError
from initcheck.expectation import Expectation, Unknown
from initcheck.frameworks.custom import callable_name, takes_keyword
from initcheck.frameworks.model_base import ModelFramework, ParameterRef, PerModel
from initcheck.laws import Constant, Normal, Uniform


class _BelowError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def _eqx():
    """equinox, imported with JAX's "no GPU" backend warnings kept out."""
    eqx = sys.modules.get("equinox")
    if eqx is not None:
        return eqx
    logger, quiet = logging.getLogger("jax._src.xla_bridge"), _BelowError()
    logger.addFilter(quiet)
    try:
        import equinox as eqx
    except ImportError as error:
        raise InputError(f"equinox cannot be imported ({error}); pip install equinox") from None
    finally:
        logger.removeFilter(quiet)
    return eqx


# --- the documented defaults: layer class -> attribute -> (law, how) ----------


def _features(value) -> int:
    return 1 if value == "scalar" else int(value)


def _uniform(bound: float, how: str):
    return Uniform(-bound, bound), how


def _linear(module, attribute):
    fan_in = _features(module.in_features)
    bound = 1.0 if fan_in == 0 else 1.0 / math.sqrt(fan_in)
    return _uniform(bound, f"default_init: U(±1/sqrt(in_features)), in_features {fan_in}")


def _conv(module, attribute):
    grouped = module.in_channels // module.groups
    fan_in = grouped * math.prod(module.kernel_size)
    groups = f" / groups {module.groups}" if module.groups != 1 else ""
    return _uniform(1.0 / math.sqrt(fan_in),
                    f"default_init: U(±1/sqrt(fan_in)), fan_in {fan_in} = in_channels {module.in_channels}"
                    f"{groups} × kernel {tuple(module.kernel_size)}")


def _recurrent(module, attribute):
    return _uniform(1.0 / math.sqrt(module.hidden_size),
                    f"default_init: U(±1/sqrt(hidden_size)), hidden_size {module.hidden_size}")


def _embedding(module, attribute):
    return Normal(0.0, 1.0), "jax.random.normal: N(0, 1)"


def _ones(module, attribute):
    return Constant(1.0), "ones: every value 1"


def _zeros(module, attribute):
    return Constant(0.0), "zeros: every value 0"


_NORM = {"weight": _ones, "bias": _zeros}
#: Equinox layer class -> {attribute: its law}.
LAYERS = {
    "Linear": {"weight": _linear, "bias": _linear},
    "Conv": {"weight": _conv, "bias": _conv},
    "ConvTranspose": {"weight": _conv, "bias": _conv},
    "Embedding": {"weight": _embedding},
    "GRUCell": {"weight_ih": _recurrent, "weight_hh": _recurrent, "bias": _recurrent, "bias_n": _recurrent},
    "LSTMCell": {"weight_ih": _recurrent, "weight_hh": _recurrent, "bias": _recurrent},
    "LayerNorm": _NORM,
    "RMSNorm": _NORM,
    "GroupNorm": _NORM,
    "BatchNorm": _NORM,
}


def _equinox_kind(module) -> str | None:
    """The Equinox layer of :data:`LAYERS` that ``module`` is (its nearest base among them)."""
    nn = getattr(sys.modules.get("equinox"), "nn", None)
    for cls in type(module).__mro__:
        if cls.__name__ in LAYERS and getattr(nn, cls.__name__, None) is cls:
            return cls.__name__
    return None


def layer_default(module, attribute: str) -> Expectation | Unknown:
    """The documented default law of ``module.<attribute>`` (module docstring)."""
    kind = type(module).__name__
    base = _equinox_kind(module)
    law_of = LAYERS.get(base, {}).get(attribute)
    if law_of is None:
        return Unknown(f"no documented default for {kind}.{attribute}; add a rule")
    law, how = law_of(module, attribute)
    return Expectation(law, f"equinox.nn.{base} default", how)


# --- the adapter --------------------------------------------------------------


class EquinoxModels(ModelFramework):
    """Equinox modules (module docstring)."""

    name = "equinox"
    title = "Equinox"
    layout = "torch"

    def __init__(self):
        #: model -> its walk (every named array, once per live model)
        self._entries = PerModel(_walk)

    def version(self) -> str:
        import jax

        return f"{_eqx().__version__} (jax {jax.__version__})"

    @staticmethod
    def accepts(model) -> bool:
        """An ``eqx.Module``, or a list, tuple or dict of them (a pytree of
        modules, as Equinox code often keeps a model's parts)."""
        module = getattr(sys.modules.get("equinox"), "Module", None)
        if not isinstance(module, type):
            return False
        parts = list(model.values()) if isinstance(model, dict) else model if isinstance(model, (list, tuple)) else [model]
        return bool(parts) and all(isinstance(part, module) for part in parts)

    def build(self, factory, seed: int):
        eqx = _eqx()
        if takes_keyword(factory, "key"):
            import jax

            def call():
                return factory(key=jax.random.PRNGKey(seed))
        elif takes_keyword(factory, "seed"):
            def call():
                return factory(seed=seed)
        else:
            call = factory
        model = call()
        if not self.accepts(model):
            return model  # another framework's: the engine tries the next adapter (accepts())
        if call is factory:
            raise InputError(
                f"{callable_name(factory)} takes neither `seed` nor `key`: Equinox has no global generator to seed, "
                "so an Equinox factory must take `key` (a jax.random key) or `seed` (an int) and build the model "
                "from it")
        return model

    def parameters(self, model) -> list[ParameterRef]:
        return [ParameterRef(name, tuple(int(d) for d in value.shape), str(value.dtype), type(parent).__name__,
                             attribute)
                for name, (parent, attribute, value) in self._entries(model).items()]

    def values(self, model, ref: ParameterRef):
        return np.asarray(self._entries(model)[ref.name][2])

    def default(self, model, ref: ParameterRef) -> Expectation | Unknown:
        entry = self._entries(model).get(ref.name)
        if entry is None:
            return Unknown(f"{ref.name} is not an array of this model")
        parent, attribute, _ = entry
        return layer_default(parent, attribute)


def _walk(model) -> dict:
    """name -> (the nearest eqx.Module holding it, its path below that module, array)
    for every inexact array leaf of the pytree (module docstring)."""
    eqx = _eqx()
    import jax

    def is_state(node):
        return isinstance(node, eqx.nn.StateIndex)

    entries = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(model, is_leaf=is_state):
        if is_state(leaf) or not eqx.is_inexact_array(leaf):
            continue
        parent, below, node = model, [], model
        for entry in path:
            node = _child(node, entry)
            below.append(_key_text(entry))
            if isinstance(node, eqx.Module):
                parent, below = node, []
        name = ".".join(_key_text(entry) for entry in path)
        entries[name] = (parent, ".".join(below), leaf)
    return entries


def _child(node, entry):
    from jax import tree_util

    if isinstance(entry, tree_util.GetAttrKey):
        return getattr(node, entry.name)
    if isinstance(entry, tree_util.SequenceKey):
        return node[entry.idx]
    if isinstance(entry, tree_util.DictKey):
        return node[entry.key]
    return None  # a node without named children (FlattenedIndexKey): its arrays stay the last module's


def _key_text(entry) -> str:
    for field in ("name", "idx", "key"):
        if hasattr(entry, field):
            return str(getattr(entry, field))
    return str(entry)
