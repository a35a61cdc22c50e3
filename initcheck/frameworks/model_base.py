"""What a framework provides to verify a whole model (``initcheck model``).

A model adapter knows how one framework builds, names and stores a model's
parameters; the model engine (:mod:`initcheck.model`) does the rest (which
law each parameter must follow, how many instances to build, the folding and
the model-level checks), the same for every framework.

An adapter:

* recognises its models (:meth:`ModelFramework.accepts`);
* builds one instance from the user's factory with a given seed
  (:meth:`ModelFramework.build`): a factory that takes ``seed`` gets it
  (a Flax NNX factory that takes ``rngs`` gets ``nnx.Rngs(seed)``); otherwise
  the framework's global generators are seeded before the call, and the
  caller's generator state is restored after it;
* lists every named parameter (:meth:`ModelFramework.parameters`), tied ones
  included (the same object under two names), with its layer type;
* hands out the values of one parameter (:meth:`ModelFramework.values`) as an
  array the reducers accept (NumPy, or a PyTorch / JAX / TensorFlow array);
* knows the documented default law of each of its layer types
  (:meth:`ModelFramework.default`), in its own weight layout (``layout``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable

from initcheck.expectation import Expectation, Unknown


@dataclass(frozen=True)
class ParameterRef:
    """One named parameter of a model instance.

    ``name``        dotted path, as the framework names it (``encoder.layer.0.attention.self.query.weight``);
    ``shape``       in the framework's own layout;
    ``dtype``       ``float32``, ``bfloat16``, ...;
    ``layer_type``  class name of the layer that owns it (``Linear``);
    ``attribute``   its name in that layer (``weight``, ``kernel``);
    ``tied_to``     the name of the parameter it is the same object as (then it is not verified again).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    layer_type: str
    attribute: str
    tied_to: str | None = None


class ModelFramework:
    """Interface of a model adapter; see the module docstring."""

    #: Name on the command line and in reports (``torch``, ``keras``, ``flax``).
    name: str = ""
    #: Name for people.
    title: str = ""
    #: Weight layout of its parameters: ``torch`` (out, in, *kernel) or ``keras`` (*kernel, in, out).
    layout: str = "torch"

    def version(self) -> str | None:
        raise NotImplementedError

    @staticmethod
    def accepts(model: Any) -> bool:
        """Whether ``model`` is one of this framework's models."""
        raise NotImplementedError

    def build(self, factory: Callable[..., Any], seed: int) -> Any:
        """One freshly built instance, with the framework seeded by ``seed``
        (the caller's generator state restored afterwards)."""
        raise NotImplementedError

    def parameters(self, model: Any) -> list[ParameterRef]:
        """Every named parameter of ``model``, tied ones included."""
        raise NotImplementedError

    def values(self, model: Any, ref: ParameterRef) -> Any:
        """The values of ``ref`` in ``model``, shape ``ref.shape``."""
        raise NotImplementedError

    def default(self, model: Any, ref: ParameterRef) -> Expectation | Unknown:
        """The documented default law of ``ref``'s layer type, or why there is none."""
        raise NotImplementedError

    def check_model(self, model: Any) -> None:
        """InputError for a model that cannot be verified (its weights not
        materialized, say); nothing by default."""


class PerModel:
    """``walk(model)`` computed once per live model and forgotten with it (a
    model is built once and its parameters read many times).  Keyed by
    identity; a model that takes no weak reference is walked every time."""

    def __init__(self, walk: Callable[[Any], Any]):
        self._walk = walk
        self._found: dict[int, tuple] = {}

    def __call__(self, model: Any):
        found = self._found.get(id(model))
        if found is not None and found[0]() is model:
            return found[1]
        value = self._walk(model)
        self._found = {key: item for key, item in self._found.items() if item[0]() is not None}
        try:
            self._found[id(model)] = (weakref.ref(model), value)
        except TypeError:
            pass
        return value
