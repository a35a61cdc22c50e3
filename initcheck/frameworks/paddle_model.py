"""PaddlePaddle models for ``initcheck model``: parameters, seeding, layer defaults.

Seeding.  A factory that takes ``seed`` is called ``factory(seed=seed)``; in
every case the global generators a layer's ``__init__`` draws from are seeded
first: the CPU's and, in a CUDA build, every GPU's (``paddle.seed`` does the
same), with the program's random seed 0 so that Paddle's initializers draw
from them, and the caller's states put back afterwards.  The factory runs
inside ``paddle.utils.unique_name.guard()``: the instances' parameter names
start afresh and the caller's name counters do not move.

Names.  ``named_parameters(remove_duplicate=False)``: a parameter reached under
two names (a shared layer) is verified once, under the first, and the other
names are reported as tied to it.  Its layer is the sublayer that owns the
name (``RNN``'s weights are registered on ``LSTM`` itself, as Paddle does).

Layer defaults, as each layer's ``__init__`` asks for them (``paddle/nn/layer``):
a parameter created with no ``default_initializer`` takes ``ParamAttr``'s
default, ``XavierUniform()`` for a weight and ``Constant(0.0)`` for a bias
(``base/param_attr.py``), with fans from ``Initializer._compute_fans``
(``(in, out)`` for a 2-d weight: fan_in = shape[0]).

=====================================  =====================================================
layer                                  law
=====================================  =====================================================
Linear                                 weight XavierUniform: U(±√(6/(in+out))); bias 0
Conv1D/2D/3D                           weight Normal(0, √(2/(in_channels·prod(kernel)))),
                                       the full in_channels even when groups > 1; bias 0
Conv1D/2D/3DTranspose                  weight XavierUniform on (in, out/groups, *kernel),
                                       Paddle's fans; bias 0
Embedding                              weight XavierUniform on (num_embeddings, dim): U(±√(6/
                                       (num_embeddings+dim))); the padding_idx row exactly 0
LayerNorm, GroupNorm, BatchNorm,       weight (InstanceNorm's scale) 1, bias 0; BatchNorm's
BatchNorm1D-3D, SyncBatchNorm,         _mean 0 and _variance 1
InstanceNorm1D-3D
SimpleRNN, LSTM, GRU and their cells   every weight and bias U(±1/√hidden_size)
PReLU                                  weight ``init`` (0.25)
=====================================  =====================================================

A parameter created with a ``ParamAttr`` initializer, or by a subclass that
re-initializes it, is checked against its layer's default all the same (and
fails where it differs: a rule names its law).  With
``paddle.nn.initializer.set_global_initializer`` in effect, no layer default
holds: every parameter is a SKIP with that reason.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

from initcheck.errors import InputError
from initcheck.expectation import Expectation, Unknown
from initcheck.frameworks.custom import takes_keyword
from initcheck.frameworks.model_base import ModelFramework, ParameterRef, PerModel
from initcheck.frameworks.paddle_nn import core, framework, paddle, to_numpy
from initcheck.laws import Constant, Normal, Uniform

nn = paddle.nn

_CONVOLUTIONS = (nn.Conv1D, nn.Conv2D, nn.Conv3D)
_TRANSPOSED = (nn.Conv1DTranspose, nn.Conv2DTranspose, nn.Conv3DTranspose)
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm, nn.BatchNorm1D, nn.BatchNorm2D, nn.BatchNorm3D,
          nn.SyncBatchNorm, nn.InstanceNorm1D, nn.InstanceNorm2D, nn.InstanceNorm3D)
_RECURRENT = (nn.SimpleRNNCell, nn.LSTMCell, nn.GRUCell, nn.SimpleRNN, nn.LSTM, nn.GRU)
#: Constant parameters of the norms, by attribute.
_NORM_VALUES = {"weight": 1.0, "scale": 1.0, "bias": 0.0, "_mean": 0.0, "_variance": 1.0}


def _dtype_name(dtype) -> str:
    return str(dtype).removeprefix("paddle.")


def _generators() -> list:
    """Every global generator a layer's construction may draw from."""
    found = [core.default_cpu_generator()]
    if paddle.is_compiled_with_cuda():
        found += [core.default_cuda_generator(i) for i in range(core.get_cuda_device_count())]
    return found


@contextmanager
def _all_seeded(seed: int):
    """Paddle's global generators seeded with ``seed`` (``paddle.seed``'s), the
    program's random seed 0, fresh parameter names; all put back afterwards."""
    generators = _generators()
    states = [generator.get_state() for generator in generators]
    program = framework.default_main_program()
    program_seed = program.random_seed
    try:
        if program_seed:
            program.random_seed = 0
        for generator in generators:
            generator.manual_seed(seed)
        with paddle.utils.unique_name.guard():
            yield
    finally:
        for generator, state in zip(generators, states):
            generator.set_state(state)
        if program_seed:
            program.random_seed = program_seed


def _fans(parameter) -> tuple[int, int]:
    fan_in, fan_out = nn.initializer.Initializer()._compute_fans(parameter)
    return int(fan_in), int(fan_out)


def _xavier_uniform(parameter, source: str, note: str = "") -> Expectation:
    fan_in, fan_out = _fans(parameter)
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return Expectation(Uniform(-bound, bound), source,
                       f"XavierUniform: U(±√(6/(fan_in+fan_out))), fans {fan_in}, {fan_out}" + note)


def _walk(model) -> tuple[list[ParameterRef], dict]:
    """(every named parameter, name -> tensor), tied ones included."""
    layers = dict(model.named_sublayers(include_self=True, remove_duplicate=False))
    refs, owners, tensors = [], {}, {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        prefix, _, attribute = name.rpartition(".")
        layer = layers.get(prefix, model)
        refs.append(ParameterRef(name, tuple(parameter.shape), _dtype_name(parameter.dtype), type(layer).__name__,
                                 attribute, owners.get(id(parameter))))
        owners.setdefault(id(parameter), name)
        tensors[name] = (parameter, layer)
    return refs, tensors


class PaddleModels(ModelFramework):
    name = "paddle"
    title = "PaddlePaddle"
    #: Paddle's own: a 2-d weight is (in, out), a convolution's (out, in / groups, *kernel).
    layout = "paddle"

    def __init__(self):
        self._walked = PerModel(_walk)

    def version(self) -> str:
        return paddle.__version__

    @staticmethod
    def accepts(model) -> bool:
        return isinstance(model, nn.Layer)

    def build(self, factory, seed: int):
        with _all_seeded(seed):
            return factory(seed=seed) if takes_keyword(factory, "seed") else factory()

    def parameters(self, model) -> list[ParameterRef]:
        return list(self._walked(model)[0])

    def values(self, model, ref: ParameterRef):
        return to_numpy(self._walked(model)[1][ref.name][0], ref.dtype)

    def default(self, model, ref: ParameterRef) -> Expectation | Unknown:
        from paddle.base.initializer import _global_bias_initializer, _global_weight_initializer

        if _global_weight_initializer() is not None or _global_bias_initializer() is not None:
            return Unknown("paddle.nn.initializer.set_global_initializer is in effect: no layer default holds; "
                           "add a rule")
        parameter, layer = self._walked(model)[1][ref.name]
        return layer_default(layer, ref.attribute, parameter)

    def check_model(self, model) -> None:
        if not list(model.parameters()):
            raise InputError(f"the model ({type(model).__name__}) has no parameters")
        if any(not parameter._is_initialized() for parameter in model.parameters()):
            raise InputError("the model has parameters that are not initialized (built under paddle.LazyGuard): "
                             "call each parameter's initialize() in the factory")


def _base_of(layer, bases):
    return next((base for base in bases if isinstance(layer, base)), None)


def layer_default(layer, attribute: str, parameter) -> Expectation | Unknown:
    """The documented default law of ``layer.<attribute>`` (module docstring)."""
    kind = type(layer).__name__
    unknown = Unknown(f"no documented default for {kind}.{attribute}; add a rule")
    if isinstance(layer, nn.Linear) and attribute in ("weight", "bias"):
        if attribute == "bias":
            return Expectation(Constant(0.0), "paddle.nn.Linear default", "Constant(0.0)")
        return _xavier_uniform(parameter, "paddle.nn.Linear default")
    base = _base_of(layer, _CONVOLUTIONS)
    if base is not None and attribute in ("weight", "bias"):
        source = f"paddle.nn.{base.__name__} default"
        if attribute == "bias":
            return Expectation(Constant(0.0), source, "Constant(0.0)")
        elements = layer._in_channels * math.prod(layer._kernel_size)
        groups = f", groups {layer._groups}" if layer._groups != 1 else ""
        return Expectation(Normal(0.0, math.sqrt(2.0 / elements)), source,
                           f"Normal(0, √(2/filter_elem_num)), filter_elem_num = in_channels·prod(kernel) = "
                           f"{elements}{groups}")
    base = _base_of(layer, _TRANSPOSED)
    if base is not None and attribute in ("weight", "bias"):
        source = f"paddle.nn.{base.__name__} default"
        if attribute == "bias":
            return Expectation(Constant(0.0), source, "Constant(0.0)")
        return _xavier_uniform(parameter, source)
    if isinstance(layer, nn.Embedding) and attribute == "weight":
        padding, rows = layer._padding_idx, parameter.shape[0]
        exact = ((int(padding) % rows, 0.0),) if padding is not None else ()
        note = f"; padding_idx {padding} row exactly 0" if exact else ""
        found = _xavier_uniform(parameter, "paddle.nn.Embedding default", note)
        return Expectation(found.law, found.source, found.text, exact_rows=exact)
    base = _base_of(layer, _NORMS)
    if base is not None and attribute in _NORM_VALUES:
        value = _NORM_VALUES[attribute]
        return Expectation(Constant(value), f"paddle.nn.{base.__name__} default", f"Constant({value})")
    base = _base_of(layer, _RECURRENT)
    if base is not None and attribute.startswith(("weight_", "bias_")):
        bound = 1.0 / math.sqrt(layer.hidden_size)
        return Expectation(Uniform(-bound, bound), f"paddle.nn.{base.__name__} default",
                           f"Uniform(±1/√hidden_size), hidden_size {layer.hidden_size}")
    if isinstance(layer, nn.PReLU) and attribute == "_weight":
        return Expectation(Constant(float(layer._init)), "paddle.nn.PReLU default", f"init {layer._init:g}")
    return unknown
