"""Keras 3 models for ``initcheck model``: seeding, weight names, layer defaults.

Keras is imported only when a Keras model is checked (:meth:`KerasModels.accepts`
looks at ``sys.modules`` and imports nothing), with any backend: the weights are
read through ``keras.ops.convert_to_numpy``.

Seeding.  An unseeded Keras initializer (``GlorotUniform()``, the string
``"glorot_uniform"`` a layer resolves in its ``__init__``) takes its seed
*when it is constructed*: ``RandomInitializer.__init__`` calls
``keras.src.random.seed_generator.make_default_seed()``, which is
``random.randint(1, 10**9)`` from Python's global ``random``
(``keras/src/initializers/random_initializers.py``,
``keras/src/random/seed_generator.py``), and every call of that initializer
then draws with that integer seed.  Unseeded ``keras.random`` ops draw from a
global ``SeedGenerator`` which is itself seeded from ``make_default_seed()``.
So :meth:`KerasModels.build` does what a training script does,
``keras.utils.set_random_seed(seed)`` (Python's ``random``, NumPy's global
generator, ``tf.random.set_seed`` when TensorFlow is importable, the global
``SeedGenerator`` dropped; ``torch.manual_seed`` on the torch backend), before
the factory is called (``factory(seed=seed)`` when it takes ``seed``): the same
seed builds the same weights, two seeds different ones.  What the factory
returns that is not a Keras layer is handed back as it is (:meth:`accepts`
then says no); a Keras model whose weights do not exist yet (no input shape) is
an :class:`InputError`.  An initializer
constructed with an integer ``seed=`` draws the same values in every instance
(Keras documents that); the row's text says so.

Afterwards the caller's state is put back: Python's ``random`` and NumPy's
global states, Keras' global seed and global ``SeedGenerator``, TensorFlow's
global seed (its eager context's seed and operation-seed generator), torch's
CPU generator on the torch backend, and Keras' automatic layer-name counters.
Those counters start from zero for each build, so every instance names its
layers alike (``dense``, ``dense_1``) and a parameter has one name across
instances.

Names.  A weight is named by its Keras ``path`` with ``/`` as ``.`` and the
model's own name left out (``sequential/dense_1/kernel`` is ``dense_1.kernel``).
Every weight is listed, trainable or not (BatchNormalization's
``moving_mean`` and ``moving_variance`` too), not a ``SeedGenerator``'s state.
A variable that another layer also holds (a tied output layer) is listed again
under that layer's path and attribute, ``tied_to`` the first name.

Laws.  A weight's law is that of the initializer its layer is configured with,
``layer.<name>_initializer`` for the weight ``<name>`` (``kernel``, ``bias``,
``embeddings``, ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``,
``alpha``, ``recurrent_kernel`` -> ``recurrent_initializer``,
``depthwise_kernel`` -> ``depthwise_initializer``; a DepthwiseConv's ``kernel``
-> ``depthwise_initializer``; RMSNormalization's ``scale`` is ones, hard-coded
in its ``build``).  Keras' layer defaults: Dense, EinsumDense and Conv*
kernels ``glorot_uniform``, biases ``zeros``; Embedding ``uniform`` =
RandomUniform(-0.05, 0.05); normalization gamma ones and beta zeros,
BatchNormalization's moving mean zeros and variance ones; LSTM/GRU recurrent
kernels ``orthogonal``.  The standard initializers, as Keras documents and
draws them:

=============================  ===========================================================
GlorotUniform, HeUniform,      U(±sqrt(3 variance)), variance = scale / n
LecunUniform, VarianceScaling  (n = fan_in, fan_out or (fan_in + fan_out) / 2, at least 1)
(distribution "uniform")
GlorotNormal, HeNormal,        N(0, sqrt(variance) / 0.87962566103423978) cut at ±2σ:
LecunNormal, VarianceScaling   the truncated law has exactly ``variance``
("truncated_normal", "normal")
VarianceScaling                N(0, sqrt(variance))
("untruncated_normal")
RandomNormal(mean, stddev)     N(mean, stddev)
RandomUniform(minval, maxval)  U(minval, maxval)
TruncatedNormal(mean, stddev)  N(mean, stddev) cut at mean ± 2 stddev, no correction
Zeros, Ones, Constant(value)   every value 0, 1, value
=============================  ===========================================================

Fans as Keras' ``compute_fans`` computes them from the weight's shape: a 1-d
shape (n,) has fans (n, n), a 2-d shape (in, out), a longer one
``(*k, in, out)`` has fan_in = prod(k)·in and fan_out = prod(k)·out, whatever
the layer: a grouped Conv's kernel ``(*k, in / groups, out)``, a
DepthwiseConv's ``(*k, in, depth_multiplier)`` and a ConvTranspose's
``(*k, filters, in)`` are read the same way.  EinsumDense (and so
MultiHeadAttention) hands a VarianceScaling kernel initializer the kernel's
input and output axes of its equation; then fan_in and fan_out are the
products of those axes.  An LSTM with ``unit_forget_bias`` (the default) has
its forget gate's slice of the bias exactly 1.

Orthogonal and Identity are structured laws, handed to
:func:`initcheck.structured.expectation` when that module exists; a user's own
initializer (a function, a subclass) and a weight whose layer has no such
initializer attribute have no documented law: :class:`Unknown`, with the
reason.
"""

from __future__ import annotations

import inspect
import math
import random
import re
import sys
from contextlib import contextmanager
from dataclasses import replace

import numpy as np

from initcheck.errors import InputError
from initcheck.expectation import Expectation, Unknown
from initcheck.frameworks.custom import callable_name, takes_keyword
from initcheck.frameworks.keras_common import tensorflow_import_hygiene, tensorflow_quiet
from initcheck.frameworks.model_base import ModelFramework, ParameterRef, PerModel
from initcheck.laws import Constant, Normal, TruncatedNormal, Uniform
from initcheck.schemes import InitSpec, variance_scaling

try:  # structured laws (orthogonal, eye), written alongside
    from initcheck import structured as _structured
except ImportError:  # pragma: no cover - depends on the tree
    _structured = None

#: VarianceScaling and the classes that only fix its scale, mode and distribution.
_VARIANCE_SCALING = ("VarianceScaling", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform",
                     "LecunNormal", "LecunUniform")
#: Keras' global-state keys build() saves and restores.
_GLOBAL_KEYS = ("global_random_seed", "global_seed_generator", "object_name_uids")


def _keras():
    """keras, imported (with its backend, as the caller configured it) quietly
    and without leaving settings behind; the caller's import is used as it is."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "ops"):
        return keras
    try:
        with tensorflow_import_hygiene():
            import keras
            if keras.backend.backend() == "tensorflow":
                # TensorFlow's context logs its devices on fd 2 when it starts
                import tensorflow as tf

                tf.config.list_logical_devices()
    except ImportError as error:
        raise InputError(f"keras cannot be imported ({error}); pip install keras") from None
    return keras


class _TFSeed:
    """TensorFlow's global seed (eager context seed and its operation-seed
    generator, the default graph's seed), saved and put back; only when
    TensorFlow is imported, and only where its internals are as expected."""

    def __init__(self):
        self.imported = "tensorflow" in sys.modules
        self.saved = None
        if not self.imported:
            return
        try:
            from tensorflow.python.eager import context
            from tensorflow.python.framework import ops

            ctx = context.context()
            rng = getattr(ctx, "_rng", None)
            self.saved = (ctx, ctx._seed, None if rng is None else rng.getstate(), ops.get_default_graph().seed)
        except Exception:  # noqa: BLE001 - TensorFlow's internals moved: nothing to restore
            self.saved = None

    def restore(self) -> None:
        if self.saved is None:
            if not self.imported and "tensorflow" in sys.modules:
                # imported during the build (Keras seeds TensorFlow when it can): back to unseeded
                try:
                    from tensorflow.python.eager import context

                    ctx = context.context()
                    ctx._seed = None
                    ctx.__dict__.pop("_rng", None)
                except Exception:  # noqa: BLE001
                    pass
            return
        try:
            from tensorflow.python.framework import ops

            ctx, seed, rng_state, graph_seed = self.saved
            if seed is None:
                ctx._seed = None
                ctx.__dict__.pop("_rng", None)
            else:
                ctx._set_global_seed(seed)
                if rng_state is not None:
                    ctx._rng.setstate(rng_state)
            ops.get_default_graph().seed = graph_seed
        except Exception:  # noqa: BLE001
            pass


@contextmanager
def _seeded(keras, seed: int):
    """``keras.utils.set_random_seed(seed)`` with fresh layer-name counters for
    the duration; every global state it touches put back afterwards."""
    from keras.src.backend.common import global_state

    python_state, numpy_state = random.getstate(), np.random.get_state()
    tf_seed = _TFSeed()
    saved = {key: global_state.get_global_attribute(key) for key in _GLOBAL_KEYS}
    torch_state = None
    if keras.backend.backend() == "torch":
        import torch

        torch_state = torch.get_rng_state()
    try:
        global_state.set_global_attribute("object_name_uids", None)  # Keras makes a fresh one
        with tensorflow_quiet():  # Keras may import TensorFlow here to seed it
            keras.utils.set_random_seed(int(seed) % 2**32)
        yield
    finally:
        for key, value in saved.items():
            global_state.set_global_attribute(key, value)
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        tf_seed.restore()
        if torch_state is not None:
            import torch

            torch.set_rng_state(torch_state)


def keras_fans(shape, input_axes=None, output_axes=None) -> tuple[int, int]:
    """(fan_in, fan_out) as Keras' ``compute_fans`` computes them (module docstring)."""
    shape = tuple(int(d) for d in shape)
    if input_axes is not None and output_axes is not None:
        return math.prod(shape[a] for a in input_axes), math.prod(shape[a] for a in output_axes)
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def einsum_axes(equation: str):
    """(input_axes, output_axes) of an EinsumDense kernel, as its ``build`` hands
    them to a VarianceScaling initializer: kernel axes named in the output are
    output axes, the others (named in the input) input axes; None when the
    equation is not one EinsumDense takes."""
    text = re.sub(r"\.\.\.", "0", equation)
    for pattern in (r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)", r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)",
                    r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0"):
        match = re.match(pattern, text)
        if match:
            inputs, weight, outputs = match.groups()
            input_axes = [i for i, d in enumerate(weight) if d not in outputs and d in inputs]
            output_axes = [i for i, d in enumerate(weight) if d in outputs]
            return input_axes, output_axes
    return None


def _g(value: float) -> str:
    return f"{value:.6g}"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def variance_formula(scale: float, mode: str, distribution: str) -> str:
    """``U(±sqrt(6/(fan_in+fan_out)))`` and the like, for people."""
    coefficient = scale * (2.0 if mode == "fan_avg" else 1.0)
    denominator = {"fan_in": "fan_in", "fan_out": "fan_out", "fan_avg": "(fan_in+fan_out)"}[mode]
    variance = f"{_g(coefficient)}/{denominator}"
    if distribution == "uniform":
        return f"U(±sqrt({_g(3.0 * coefficient)}/{denominator}))"
    if distribution == "untruncated_normal":
        return f"N(0, sqrt({variance}))"
    return f"N(0, sqrt({variance})/0.87962566) cut at ±2σ (variance {variance})"


def keras_law(initializer, shape, axes=None):
    """(law, text) of a standard Keras initializer on a weight of ``shape``, or
    None when it is not one (a function, a subclass, Orthogonal, ...).

    ``axes``: (input_axes, output_axes) a layer hands a VarianceScaling it
    clones (EinsumDense); the initializer's own axes come first."""
    kind = type(initializer)
    if not (kind.__module__ or "").startswith("keras."):
        return None
    name = kind.__name__
    if name in _VARIANCE_SCALING:
        input_axes = getattr(initializer, "input_axes", None)
        output_axes = getattr(initializer, "output_axes", None)
        if (input_axes is None or output_axes is None) and axes is not None:
            input_axes, output_axes = axes
        fan_in, fan_out = keras_fans(shape, input_axes, output_axes)
        scale, mode = float(initializer.scale), initializer.mode
        distribution = initializer.distribution.lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
        n = max(1.0, n)  # Keras divides by max(1, n)
        ours = {"truncated_normal": "truncated-normal", "untruncated_normal": "normal", "uniform": "uniform"}
        law = variance_scaling(scale, "fan_in", ours[distribution], n, n)
        if name == "VarianceScaling":
            head = f"variance_scaling(scale={_g(scale)}, mode={mode}, distribution={distribution})"
        else:
            head = _snake(name)
        fans = f"fans {fan_in}, {fan_out}"
        if input_axes is not None and output_axes is not None:
            fans += f" (input axes {tuple(input_axes)}, output axes {tuple(output_axes)})"
        return law, f"{head}: {variance_formula(scale, mode, distribution)}, {fans}"
    if name == "RandomNormal":
        mean, std = float(initializer.mean), float(initializer.stddev)
        return Normal(mean, std), f"random_normal(mean={_g(mean)}, stddev={_g(std)}): N({_g(mean)}, {_g(std)})"
    if name == "RandomUniform":
        low, high = float(initializer.minval), float(initializer.maxval)
        return Uniform(low, high), f"random_uniform(minval={_g(low)}, maxval={_g(high)}): U({_g(low)}, {_g(high)})"
    if name == "TruncatedNormal":
        mean, std = float(initializer.mean), float(initializer.stddev)
        law = TruncatedNormal(mean, std, mean - 2.0 * std, mean + 2.0 * std)
        return law, (f"truncated_normal(mean={_g(mean)}, stddev={_g(std)}): N({_g(mean)}, {_g(std)}) "
                     "cut at mean ± 2 stddev, no variance correction")
    if name == "Zeros":
        return Constant(0.0), "zeros: every value 0"
    if name == "Ones":
        return Constant(1.0), "ones: every value 1"
    if name == "Constant":
        value = np.asarray(initializer.value)
        if value.ndim != 0:
            return None
        return Constant(float(value)), f"constant({_g(float(value))}): every value {_g(float(value))}"
    return None


def _structured_expectation(initializer, shape, source: str):
    """Orthogonal / Identity through initcheck.structured, or None when it has no law for it."""
    name = type(initializer).__name__
    scheme = {"Orthogonal": "orthogonal", "OrthogonalInitializer": "orthogonal",
              "Identity": "eye", "IdentityInitializer": "eye"}.get(name)
    if scheme is None or _structured is None or not hasattr(_structured, "expectation"):
        return None
    gain = float(initializer.gain)
    text = f"{_snake(name.replace('Initializer', ''))}(gain={_g(gain)})"
    try:
        found = _structured.expectation(InitSpec(scheme, gain=gain), tuple(shape), "keras")
    except InputError as error:
        return Unknown(f"{source}: {error}")
    if isinstance(found, Expectation):
        return replace(found, source=source, text=found.text or text)
    if isinstance(found, Unknown):
        return found
    law, draw_checks = found  # (law, per-draw checks factory or None)
    return Expectation(law, source, f"{text}: {law.describe()}", draw_checks=draw_checks)


def _seed_note(initializer) -> str:
    seed = getattr(initializer, "_init_seed", None)
    if isinstance(seed, int) and not isinstance(seed, bool):
        return f"; seeded with {seed}: every instance draws the same values"
    return ""


class KerasModels(ModelFramework):
    """Keras 3 models and layers (module docstring)."""

    name = "keras"
    title = "Keras"
    layout = "keras"

    def __init__(self):
        #: model -> its walk (every named weight, once per live model)
        self._entries = PerModel(_walk)

    def version(self) -> str:
        keras = _keras()
        return f"{keras.__version__} ({keras.backend.backend()} backend)"

    @staticmethod
    def accepts(model) -> bool:
        keras = sys.modules.get("keras")
        layers = getattr(keras, "layers", None)
        layer = getattr(layers, "Layer", None)
        return isinstance(layer, type) and isinstance(model, layer)

    def build(self, factory, seed: int):
        keras = _keras()
        with _seeded(keras, seed):
            model = factory(seed=seed) if takes_keyword(factory, "seed") else factory()
        if not isinstance(model, keras.layers.Layer):
            return model  # another framework's: the engine tries the next adapter (accepts())
        unbuilt = _unbuilt(model)
        if unbuilt is not None:
            what = "model" if unbuilt is model else f"model's layer {unbuilt.name!r}"
            raise InputError(
                f"{callable_name(factory)} returned a Keras {what} that is not built (its weights do not exist "
                "yet): give it an input shape (keras.Input(shape=...) as its first layer) or call "
                "model.build(input_shape) in the factory")
        return model

    # names -----------------------------------------------------------------

    def parameters(self, model) -> list[ParameterRef]:
        refs = []
        for name, (layer, variable, attribute, tied_to) in self._entries(model).items():
            refs.append(ParameterRef(name, tuple(int(d) for d in variable.shape), str(variable.dtype),
                                     type(layer).__name__, attribute, tied_to))
        return refs

    def values(self, model, ref: ParameterRef):
        keras = _keras()
        variable = self._entries(model)[ref.name][1]
        if hasattr(variable, "numpy"):
            return np.asarray(variable.numpy())
        return np.asarray(keras.ops.convert_to_numpy(variable))

    # laws ------------------------------------------------------------------

    def default(self, model, ref: ParameterRef) -> Expectation | Unknown:
        keras = _keras()
        entry = self._entries(model).get(ref.name)
        if entry is None:
            return Unknown(f"{ref.name} is not a weight of this model")
        layer, variable, attribute, _ = entry
        return layer_default(keras, layer, attribute, tuple(int(d) for d in variable.shape))


def _unbuilt(model):
    """The model when it is not built, or (a model built without weights) its
    first unbuilt layer; None when its weights exist."""
    if not getattr(model, "built", False):
        return model
    if model.weights:
        return None
    for layer in _layers(model):
        if not getattr(layer, "built", True):
            return layer
    return None


def _layers(layer, seen=None):
    """``layer`` and its sublayers, depth first in Keras' own order (that of ``weights``)."""
    seen = set() if seen is None else seen
    if id(layer) in seen:
        return
    seen.add(id(layer))
    yield layer
    for sub in getattr(layer, "_layers", ()):
        yield from _layers(sub, seen)


def _own_weights(layer):
    """The variables ``layer`` holds itself (its own ``weights`` before its sublayers')."""
    seen, own = set(), []
    for variable in list(getattr(layer, "_trainable_variables", ())) + list(
            getattr(layer, "_non_trainable_variables", ())):
        if id(variable) not in seen:
            seen.add(id(variable))
            own.append(variable)
    return own


def _strip(path: str, root: str) -> str:
    if path.startswith(root + "/"):
        path = path[len(root) + 1:]
    return path.replace("/", ".")


def _attribute_of(layer, variable) -> str:
    """The attribute under which ``layer`` holds ``variable`` (leading ``_`` dropped), or its name."""
    for key, value in vars(layer).items():
        if value is variable and not key.startswith("__"):
            return key.lstrip("_") or variable.name
    return variable.name


def _walk(model) -> dict:
    """name -> (layer, variable, attribute, tied_to), in the order of ``model.weights``,
    each variable's other holders right after it."""
    holders: dict[int, list] = {}
    for layer in _layers(model):
        for variable in _own_weights(layer):
            holders.setdefault(id(variable), []).append(layer)
    root = model.name
    entries: dict = {}

    def unique(name):
        if name not in entries:
            return name
        k = 2
        while f"{name}#{k}" in entries:
            k += 1
        return f"{name}#{k}"

    for variable in model.weights:
        layers = holders.get(id(variable), [model])
        path = getattr(variable, "path", None) or variable.name
        # the layer that created it (its path is the variable's), else the first holder
        owner = next((layer for layer in layers if getattr(layer, "path", None)
                      and path == f"{layer.path}/{variable.name}"), layers[0])
        name = unique(_strip(path, root))
        entries[name] = (owner, variable, variable.name, None)
        for other in layers:
            if other is owner:
                continue
            attribute = _attribute_of(other, variable)
            base = getattr(other, "path", None) or other.name
            alias = _strip(f"{base}/{attribute}", root) if other is not model else attribute
            if alias in entries:
                continue
            entries[alias] = (other, variable, attribute, name)
    return entries


def _initializer_attribute(keras, layer, attribute: str) -> str | None:
    """The layer attribute holding the initializer of its weight ``attribute``."""
    from keras.src.layers.convolutional.base_depthwise_conv import BaseDepthwiseConv

    if isinstance(layer, BaseDepthwiseConv) and attribute == "kernel":
        return "depthwise_initializer"
    candidates = [f"{attribute}_initializer"]
    if attribute.endswith("_kernel"):
        candidates.append(f"{attribute[:-len('_kernel')]}_initializer")
    return next((c for c in candidates if hasattr(layer, c)), None)


def _keras_default(layer, parameter: str):
    """The default of ``parameter`` in the first Keras class of ``layer``'s MRO
    whose ``__init__`` takes it (a string such as ``"glorot_uniform"``), or None."""
    for cls in type(layer).__mro__:
        if not (cls.__module__ or "").startswith("keras.") or "__init__" not in vars(cls):
            continue
        try:
            found = inspect.signature(cls.__init__).parameters.get(parameter)
        except (TypeError, ValueError):
            continue
        if found is not None:
            return None if found.default is inspect.Parameter.empty else found.default
    return None


def _is_default(keras, initializer, default) -> bool:
    """Whether ``initializer`` is what the layer's default resolves to (same
    class, same settings, unseeded)."""
    if default is None:
        return False
    try:
        resolved = keras.initializers.get(default)
    except Exception:  # noqa: BLE001
        return False
    if type(resolved) is not type(initializer):
        return False
    if getattr(initializer, "_init_seed", None) is not None:
        return False
    try:
        ours = {k: v for k, v in initializer.get_config().items() if k != "seed"}
        theirs = {k: v for k, v in resolved.get_config().items() if k != "seed"}
    except Exception:  # noqa: BLE001
        return True
    return ours == theirs


def layer_default(keras, layer, attribute: str, shape: tuple[int, ...]) -> Expectation | Unknown:
    """The law of ``layer``'s weight ``attribute`` (module docstring)."""
    kind = type(layer).__name__
    rms = getattr(keras.layers, "RMSNormalization", None)
    if rms is not None and isinstance(layer, rms) and attribute == "scale":
        return Expectation(Constant(1.0), f"keras {kind}.scale (ones, the default)",
                           "ones: every value 1 (RMSNormalization.build)")
    init_attribute = _initializer_attribute(keras, layer, attribute)
    if init_attribute is None:
        return Unknown(f"no documented default for {kind}.{attribute}; add a rule")
    initializer = getattr(layer, init_attribute)
    if initializer is None:
        return Unknown(f"{kind}.{init_attribute} is None; add a rule")
    init_name = type(initializer).__name__ if not inspect.isfunction(initializer) else initializer.__name__
    how = "the default" if _is_default(keras, initializer, _keras_default(layer, init_attribute)) else "configured"
    source = f"keras {kind}.{init_attribute} ({init_name}, {how})"
    axes = None
    einsum_dense = getattr(keras.layers, "EinsumDense", None)
    if einsum_dense is not None and isinstance(layer, einsum_dense) and attribute == "kernel":
        axes = einsum_axes(layer.equation)
    found = keras_law(initializer, shape, axes)
    if found is None:
        structured = _structured_expectation(initializer, shape, source)
        if structured is not None:
            return structured
        if type(initializer).__name__ in ("Orthogonal", "OrthogonalInitializer", "Identity",
                                          "IdentityInitializer"):
            return Unknown(f"{kind}.{attribute} uses {type(initializer).__name__}, a structured law initcheck "
                           "cannot state here; add a rule")
        return Unknown(f"{kind}.{attribute} has a custom initializer ({init_name}); add a rule")
    law, text = found
    text += _seed_note(initializer)
    lstm_cell = getattr(keras.layers, "LSTMCell", None)
    if (lstm_cell is not None and isinstance(layer, lstm_cell) and attribute == "bias"
            and getattr(layer, "unit_forget_bias", False) and len(shape) == 1):
        units = int(layer.units)
        text += f"; unit_forget_bias: the forget gate's slice [{units}:{2 * units}] is exactly 1"
        rows = tuple((i, 1.0) for i in range(units, 2 * units))
        return Expectation(law, source, text, exact_rows=rows)
    return Expectation(law, source, text)
