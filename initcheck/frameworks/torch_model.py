"""PyTorch models for ``initcheck model``: parameters, seeding, layer defaults.

Seeding.  A factory that takes ``seed`` is called ``factory(seed=seed)``; in
every case the global generators a module's ``__init__`` draws from are seeded
first (``torch.manual_seed``, which seeds the CPU and every CUDA device, inside
``torch.random.fork_rng``, which restores the caller's states afterwards).

Names.  ``named_parameters(remove_duplicate=False)``: a Parameter reached under
two names (``tie_word_embeddings``, a shared layer) is verified once, under the
first, and the other names are reported as tied to it.

Layer defaults, as each layer's ``reset_parameters`` (torch 2.x) computes them,
with ``fan_in`` from ``torch.nn.init._calculate_fan_in_and_fan_out`` on the
weight (``(out, in / groups, *kernel)`` for a convolution, ``(in, out / groups,
*kernel)`` for a transposed one, so its fan_in is ``out / groups × kernel``):

=====================================  =====================================================
layer                                  law
=====================================  =====================================================
Linear, Conv1-3d, ConvTranspose1-3d    weight: kaiming_uniform_(a=√5) = U(±1/√fan_in);
                                       bias: U(±1/√fan_in), fan_in of the weight
Bilinear                               weight and bias U(±1/√in1)
Embedding, EmbeddingBag                N(0, 1); the ``padding_idx`` row exactly 0
LayerNorm, RMSNorm, GroupNorm,         weight 1, bias 0
BatchNorm1-3d, InstanceNorm1-3d
MultiheadAttention                     in_proj_weight (3E, E) xavier_uniform_ on the fused
                                       tensor: U(±√(6 / (E + 3E))); q/k/v_proj_weight
                                       xavier_uniform_ each; in_proj_bias and out_proj.bias 0;
                                       bias_k, bias_v xavier_normal_; out_proj.weight is a
                                       Linear's default
RNN, LSTM, GRU and their cells         every weight and bias U(±1/√hidden_size)
PReLU                                  weight 0.25 (``init``)
Transformer (the whole nn.Transformer) every parameter of more than one dimension
                                       xavier_uniform_, the rest its layer's default
=====================================  =====================================================

A subclass that overrides ``reset_parameters`` (or ``_reset_parameters``) has
no documented default: its parameters are SKIP with the reason.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from initcheck.errors import InputError
from initcheck.expectation import Expectation, Unknown
from initcheck.frameworks.custom import takes_keyword
from initcheck.frameworks.model_base import ModelFramework, ParameterRef
from initcheck.laws import Constant, Normal, Uniform

_LINEAR_LIKE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                nn.ConvTranspose3d)
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d,
          nn.InstanceNorm2d, nn.InstanceNorm3d, *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))
_RECURRENT = (nn.RNN, nn.LSTM, nn.GRU, nn.RNNCell, nn.LSTMCell, nn.GRUCell)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


class TorchModels(ModelFramework):
    name = "torch"
    title = "PyTorch"
    layout = "torch"

    def version(self) -> str:
        return torch.__version__

    @staticmethod
    def accepts(model) -> bool:
        return isinstance(model, nn.Module)

    def build(self, factory, seed: int):
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return factory(seed=seed) if takes_keyword(factory, "seed") else factory()

    def parameters(self, model) -> list[ParameterRef]:
        refs, owners = [], {}
        modules = dict(model.named_modules(remove_duplicate=False))
        for name, parameter in model.named_parameters(remove_duplicate=False):
            prefix, _, attribute = name.rpartition(".")
            module = modules.get(prefix, model)
            refs.append(ParameterRef(name, tuple(parameter.shape), str(parameter.dtype).removeprefix("torch."),
                                     type(module).__name__, attribute, owners.get(id(parameter))))
            owners.setdefault(id(parameter), name)
        return refs

    def values(self, model, ref: ParameterRef):
        return model.get_parameter(ref.name).detach()

    def module_of(self, model, ref: ParameterRef) -> nn.Module:
        prefix = ref.name.rpartition(".")[0]
        return model.get_submodule(prefix) if prefix else model

    def default(self, model, ref: ParameterRef) -> Expectation | Unknown:
        module = self.module_of(model, ref)
        parameter = model.get_parameter(ref.name)
        found = _transformer_default(model, ref, parameter)
        if found is None:
            found = _mha_child_default(model, ref)
        if found is None:
            found = layer_default(module, ref.attribute, parameter)
        return found


    def check_model(self, model) -> None:
        _check_model(model)

    def duplicate_note(self, model, first: str, second: str) -> str | None:
        """Why two parameters came out equal, when torch itself made them so:
        ``nn.TransformerEncoder`` / ``nn.TransformerDecoder`` deep-copy the
        layer they are given, so their layers start identical
        (pytorch/pytorch#72253); re-initialize each layer after building."""
        prefixes = [name.split(".") for name in (first, second)]
        common = []
        for a, b in zip(*prefixes):
            if a != b:
                break
            common.append(a)
        for depth in range(len(common), -1, -1):
            prefix = ".".join(common[:depth])
            module = model.get_submodule(prefix) if prefix else model
            if isinstance(module, (nn.TransformerEncoder, nn.TransformerDecoder)):
                return (f"torch.nn.{type(module).__name__} deep-copies the layer it is given, so its layers start "
                        "identical (pytorch/pytorch#72253): re-initialize each layer after building")
        return None


def fan_in_of(weight: torch.Tensor) -> int:
    """torch's own fan_in of a weight."""
    return nn.init._calculate_fan_in_and_fan_out(weight)[0]


def _own_reset(module: nn.Module, base: type, method: str = "reset_parameters") -> bool:
    """Whether ``module`` initializes itself with ``base``'s method (a subclass
    that overrides it has no documented default)."""
    return getattr(type(module), method, None) is getattr(base, method)


def _base_of(module: nn.Module, bases) -> type | None:
    return next((base for base in bases if isinstance(module, base)), None)


def layer_default(module: nn.Module, attribute: str, parameter: torch.Tensor) -> Expectation | Unknown:
    """The documented default law of ``module.<attribute>`` (module docstring)."""
    kind = type(module).__name__
    unknown = Unknown(f"no documented default for {kind}.{attribute}; add a rule")
    base = _base_of(module, _LINEAR_LIKE)
    if base is not None:
        if not _own_reset(module, base):
            return Unknown(f"{kind} overrides reset_parameters: no documented default for {kind}.{attribute}; "
                           "add a rule")
        if attribute not in ("weight", "bias") or module.weight is None:
            return unknown
        fan_in = fan_in_of(module.weight)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        source = f"torch.nn.{base.__name__} default"
        if attribute == "weight":
            return Expectation(Uniform(-bound, bound), source,
                               f"kaiming_uniform_(a=√5): U(±1/√fan_in), fan_in {fan_in}")
        return Expectation(Uniform(-bound, bound), source, f"U(±1/√fan_in), fan_in {fan_in} of the weight")
    if isinstance(module, nn.Bilinear):
        if not _own_reset(module, nn.Bilinear):
            return unknown
        in1 = module.weight.shape[1]
        bound = 1.0 / math.sqrt(in1)
        return Expectation(Uniform(-bound, bound), "torch.nn.Bilinear default", f"U(±1/√in1), in1 {in1}")
    base = _base_of(module, (nn.Embedding, nn.EmbeddingBag))
    if base is not None and attribute == "weight":
        if not _own_reset(module, base):
            return Unknown(f"{kind} overrides reset_parameters; add a rule")
        padding = module.padding_idx
        exact = ((int(padding) % parameter.shape[0], 0.0),) if padding is not None else ()
        text = "normal_: N(0, 1)" + (f", padding_idx {padding} row exactly 0" if exact else "")
        return Expectation(Normal(0.0, 1.0), f"torch.nn.{base.__name__} default", text, exact_rows=exact)
    base = _base_of(module, _NORMS)
    if base is not None and attribute in ("weight", "bias"):
        if not _own_reset(module, base) and hasattr(base, "reset_parameters"):
            return Unknown(f"{kind} overrides reset_parameters; add a rule")
        value = 1.0 if attribute == "weight" else 0.0
        return Expectation(Constant(value), f"torch.nn.{base.__name__} default", f"{'ones_' if value else 'zeros_'}")
    base = _base_of(module, _RECURRENT)
    if base is not None:
        if not _own_reset(module, base):
            return Unknown(f"{kind} overrides reset_parameters; add a rule")
        bound = 1.0 / math.sqrt(module.hidden_size)
        return Expectation(Uniform(-bound, bound), f"torch.nn.{base.__name__} default",
                           f"U(±1/√hidden_size), hidden_size {module.hidden_size}")
    if isinstance(module, nn.MultiheadAttention):
        if not _own_reset(module, nn.MultiheadAttention, "_reset_parameters"):
            return Unknown("MultiheadAttention subclass overrides _reset_parameters; add a rule")
        source = "torch.nn.MultiheadAttention default"
        if attribute in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
            return _xavier(parameter, "uniform", source,
                           "the fused (3E, E) tensor" if attribute == "in_proj_weight" else "")
        if attribute == "in_proj_bias":
            return Expectation(Constant(0.0), source, "constant_(0)")
        if attribute in ("bias_k", "bias_v"):
            return _xavier(parameter, "normal", source, "")
        return unknown
    if isinstance(module, nn.PReLU) and attribute == "weight":
        return Expectation(Constant(float(module.init)), "torch.nn.PReLU default", f"init {module.init:g}")
    return unknown


def _xavier(parameter: torch.Tensor, dist: str, source: str, note: str) -> Expectation:
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(parameter)
    std = math.sqrt(2.0 / (fan_in + fan_out))
    if dist == "uniform":
        bound = math.sqrt(3.0) * std
        law, text = Uniform(-bound, bound), "xavier_uniform_: U(±√(6/(fan_in+fan_out)))"
    else:
        law, text = Normal(0.0, std), "xavier_normal_: N(0, √(2/(fan_in+fan_out)))"
    return Expectation(law, source, f"{text}, fans {fan_in}, {fan_out}" + (f" ({note})" if note else ""))


def _ancestors(model: nn.Module, name: str):
    """(prefix, module) of every module above the parameter ``name``, nearest first."""
    parts = name.split(".")[:-1]
    for depth in range(len(parts), -1, -1):
        prefix = ".".join(parts[:depth])
        yield prefix, (model.get_submodule(prefix) if prefix else model)


def _mha_child_default(model: nn.Module, ref: ParameterRef) -> Expectation | None:
    """``out_proj.bias`` of a MultiheadAttention: set to 0 by its parent's
    ``_reset_parameters`` (the weight keeps its Linear default)."""
    parts = ref.name.split(".")
    if len(parts) < 2 or parts[-2] != "out_proj" or ref.attribute != "bias":
        return None
    prefix = ".".join(parts[:-2])
    parent = model.get_submodule(prefix) if prefix else model
    if isinstance(parent, nn.MultiheadAttention) and _own_reset(parent, nn.MultiheadAttention, "_reset_parameters"):
        return Expectation(Constant(0.0), "torch.nn.MultiheadAttention default", "out_proj.bias: constant_(0)")
    return None


def _transformer_default(model: nn.Module, ref: ParameterRef, parameter: torch.Tensor) -> Expectation | None:
    """Inside an ``nn.Transformer``: its ``_reset_parameters`` applies
    xavier_uniform_ to every parameter of more than one dimension."""
    if parameter.dim() <= 1:
        return None
    for _, module in _ancestors(model, ref.name):
        if isinstance(module, nn.Transformer) and _own_reset(module, nn.Transformer, "_reset_parameters"):
            return _xavier(parameter, "uniform", "torch.nn.Transformer default", "its _reset_parameters")
    return None


def _check_model(model) -> None:
    """Refuse what cannot be verified: a model with no parameters, or on the meta device."""
    parameters = list(model.parameters())
    if not parameters:
        raise InputError(f"the model ({type(model).__name__}) has no parameters")
    if any(isinstance(p, nn.parameter.UninitializedParameter) for p in parameters):
        raise InputError("the model has lazy parameters that are not initialized yet (LazyLinear, LazyConv*): run "
                         "one forward pass in the factory so that they get their shapes and values")
    if any(p.device.type == "meta" for p in parameters):
        raise InputError("the model's parameters are on the meta device (not materialized): build it on a real "
                         "device, or call to_empty() and reset_parameters() in the factory")
