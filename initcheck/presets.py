"""Presets: a library's initialization convention as the law of each parameter.

    initcheck model net.py:build --preset transformers

A preset is consulted after the ``--rules`` and before the layer defaults.
``--preset auto`` (the default) applies ``transformers`` to a PyTorch model
that is, or holds, a ``transformers.PreTrainedModel`` (``post_init`` has
replaced its layers' defaults, so those would be the wrong law), and no preset
to any other model; ``--preset none`` turns presets off.  Chosen
automatically, the preset refuses nothing: a family it does not cover gets an
Unknown (SKIP, "add a rule") for every parameter its ``_init_weights`` writes.
:func:`load_preset` is called once, on instance 0, and returns a function of
one :class:`~initcheck.frameworks.model_base.ParameterRef` that gives

* an :class:`~initcheck.expectation.Expectation` (source ``transformers
  preset``; ``text`` says which rule applied), or
* an :class:`~initcheck.expectation.Unknown`: the preset knows the parameter
  and knows it has no law to check (DistilBERT's sinusoidal position table), or
* ``None``: the convention does not touch the parameter, so whatever its layer
  does applies (the layer default, else SKIP).

``transformers``
----------------

HuggingFace transformers initializes a freshly built model in ``post_init()``:
``PreTrainedModel.initialize_weights`` visits every module, children before
their parent, and calls ``_init_weights(module)`` of the nearest
``PreTrainedModel`` at or above it (a sub-model uses its own config).  A module
is visited once, so what a parent writes into a child's parameter wins.  The
preset replays that order on the model's structure, with the convention as
written in ``transformers/modeling_utils.py`` and each family's
``modeling_<family>.py`` (read from transformers 5.x), never with the model's
own ``_init_weights``: a model whose ``_init_weights`` departs from its
family's is what the check is for.

``std`` is ``config.initializer_range or 0.02`` if the config has
``initializer_range``, else ``config.init_std``, else
``config.initializer_factor``, else the text config's ``initializer_range``
(0.02 if none).  The base convention, by the type of the module that owns the
parameter, the first that matches:

==============================================  ==================================================
module                                          its parameters
==============================================  ==================================================
nn.Linear, Conv1-3d, ConvTranspose1d/2d          weight N(0, std), bias 0  (not ConvTranspose3d:
(and their subclasses)                           it keeps torch's default)
nn.LSTM                                          every ``weight*`` xavier_uniform_, every ``bias*`` 0
nn.Embedding (and subclasses)                    weight N(0, std), the ``padding_idx`` row exactly 0
nn.MultiheadAttention                            torch's own ``_reset_parameters`` (the layer
                                                 default); its ``out_proj`` is a Linear: N(0, std)
nn.GroupNorm, BatchNorm1-3d, a class whose       weight 1, bias 0
name holds ``LayerNorm`` or ``RMSNorm``
==============================================  ==================================================

and each family's overrides:

* GPT-2: ``Conv1D`` weight N(0, initializer_range), bias 0; ``c_proj.weight`` of
  ``GPT2Attention`` and ``GPT2MLP`` N(0, initializer_range / √(2·n_layer)).
  transformers itself drops that scaling for a ``GPT2Model`` subclass defined
  outside the library: for "custom code" ``initialize_weights`` skips every
  module with no parameter or buffer of its own, and those two blocks have
  none.  The preset still expects the convention (the row FAILs, and its law's
  text says why);
* BERT, RoBERTa, ALBERT, DeBERTa-v2: the LM head's ``bias`` 0;
* ViT: ``ViTEmbeddings`` ``position_embeddings`` and ``cls_token``
  ``trunc_normal_(0, initializer_range)`` cut at torch's absolute bounds
  [-2, 2], ``mask_token`` 0;
* DistilBERT: with ``sinusoidal_pos_embds`` the position table is a fixed
  sinusoid (no law: SKIP), otherwise N(0, std);
* BART: ``final_logits_bias`` 0 (a buffer in transformers 5, so no row);
* T5, mT5, UMT5 (``initializer_factor`` f, no ``initializer_range``): the
  layer norms' weight f; ``shared`` and an untied ``lm_head`` N(0, f); the
  feed-forward ``wi`` (``wi_0``, ``wi_1``) N(0, f·d_model^-½) and ``wo``
  N(0, f·d_ff^-½); attention ``q`` N(0, f·(d_model·d_kv)^-½), ``k`` and ``v``
  N(0, f·d_model^-½), ``o`` N(0, f·(num_heads·d_kv)^-½), the relative
  attention bias N(0, f·d_model^-½); the heads' (``qa_outputs``, the
  classification head) weights N(0, f·d_model^-½), the token classifier's
  N(0, f), their biases 0;
* XLM-RoBERTa, CamemBERT: the LM head's ``bias`` 0;
* Gemma, Gemma 2: every RMSNorm's ``weight`` 0 (the norm scales by 1 + weight);
* Mixtral: the experts' ``gate_up_proj`` and ``down_proj`` and the router's
  ``weight`` N(0, initializer_range);
* ELECTRA, OPT, Llama, Mistral, Qwen2, Falcon, GPT-Neo, GPT-J: the base
  convention only (the last three's overrides write buffers only);
* any other family whose ``PreTrainedModel`` class inherits ``_init_weights``
  unchanged (Bloom, GPT-NeoX, Phi, Phi-3, Qwen3, OLMo, StableLM, MPT, ...): the
  base convention, which is then all that initializes it.

A parameter shared by an ``nn.Embedding`` and another module (a tied LM
head) takes the embedding's law, padding row included, whichever of its names
comes first.

Not covered: every family not listed in :data:`TRANSFORMERS_FAMILIES`; for
those ``--preset transformers`` refuses the model and ``--rules`` says the
laws.  A parameter of a
module the convention does not touch (a user's ``nn.Parameter`` on their own
module, a GRU, a ConvTranspose3d) gets ``None``: its layer default, or SKIP.
"""

from __future__ import annotations

import importlib
import math
import sys
from typing import Any, Callable

from initcheck.errors import InputError
from initcheck.expectation import Expectation, Unknown
from initcheck.frameworks.model_base import ParameterRef
from initcheck.laws import Constant, Normal, TruncatedNormal, Uniform

PRESET_NAMES = ("transformers",)

#: What ``--preset`` and ``preset=`` accept.
PRESET_CHOICES = ("auto", "none", *PRESET_NAMES)
DEFAULT_PRESET = "auto"

SOURCE = "transformers preset"

#: config.model_type -> the modeling module's package (transformers.models.<package>.modeling_<package>),
#: each verified on real models built from small configs (tests/test_presets.py).
TRANSFORMERS_FAMILIES = {
    "albert": "albert",
    "camembert": "camembert",
    "falcon": "falcon",
    "gemma": "gemma",
    "gemma2": "gemma2",
    "gpt_neo": "gpt_neo",
    "gptj": "gptj",
    "mixtral": "mixtral",
    "xlm-roberta": "xlm_roberta",
    "bart": "bart",
    "bert": "bert",
    "deberta-v2": "deberta_v2",
    "distilbert": "distilbert",
    "electra": "electra",
    "gpt2": "gpt2",
    "llama": "llama",
    "mistral": "mistral",
    "opt": "opt",
    "qwen2": "qwen2",
    "roberta": "roberta",
    "t5": "t5",
    "mt5": "mt5",
    "umt5": "umt5",
    "vit": "vit",
}

#: Families left out on purpose, and why (said when one is refused).
NOT_COVERED: dict[str, str] = {}

PresetFunction = Callable[[ParameterRef], "Expectation | Unknown | None"]


def check_preset(name: str | None) -> None:
    """An InputError unless ``name`` is one of :data:`PRESET_CHOICES` (or None, no preset)."""
    if name is not None and name not in PRESET_CHOICES:
        raise InputError(f"unknown preset {name!r}; known: {', '.join(PRESET_CHOICES)}")


def load_preset(name: str | None, adapter, model) -> PresetFunction | None:
    """The preset ``name`` for ``model`` (instance 0), as a function of one
    parameter; None for ``"none"`` (or None), and for ``"auto"`` on a model
    no preset is for."""
    check_preset(name)
    if name is None or name == "none":
        return None
    if name == "auto":
        return TransformersPreset(adapter, model, chosen=True) if _holds_pretrained(adapter, model) else None
    return TransformersPreset(adapter, model)


def _pretrained_base():
    """transformers' PreTrainedModel if transformers is imported (a model of it
    was built), else None: detecting one never imports the library."""
    transformers = sys.modules.get("transformers")
    return getattr(transformers, "PreTrainedModel", None) if transformers is not None else None


def _holds_pretrained(adapter, model) -> bool:
    base = _pretrained_base()
    if base is None or getattr(adapter, "name", None) != "torch" or not hasattr(model, "modules"):
        return False
    return any(isinstance(module, base) for module in model.modules())


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _covered() -> str:
    return ", ".join(sorted(TRANSFORMERS_FAMILIES))


class _Std:
    """The std of a config, as the base ``_init_weights`` reads it, and its words."""

    def __init__(self, config):
        if hasattr(config, "initializer_range"):
            value = config.initializer_range
            self.value = value or 0.02
            self.words = f"initializer_range {_fmt(value)}" if value else f"0.02 (initializer_range is {value!r})"
        elif hasattr(config, "init_std"):
            self.value, self.words = config.init_std, f"init_std {_fmt(config.init_std)}"
        elif hasattr(config, "initializer_factor"):
            self.value = config.initializer_factor
            self.words = f"initializer_factor {_fmt(config.initializer_factor)}"
        else:
            value = getattr(config.get_text_config(), "initializer_range", 0.02)
            self.value, self.words = value, f"the text config's initializer_range {_fmt(value)}"

    def normal(self) -> Any:
        return _normal(self.value)


def _normal(std: float):
    return Normal(0.0, float(std)) if std > 0 else Constant(0.0)


class TransformersPreset:
    """HF transformers' convention for one model (module docstring)."""

    def __init__(self, adapter, model, chosen: bool = False):
        """``chosen``: applied by ``auto``, so an uncovered family is SKIP, not an error."""
        if getattr(adapter, "name", None) != "torch":
            title = getattr(adapter, "title", None) or getattr(adapter, "name", "another framework")
            raise InputError(f"--preset transformers applies to PyTorch transformers models; this one is a {title} "
                             "model: use --rules instead")
        base = _pretrained_base()
        if base is None or not _holds_pretrained(adapter, model):
            raise InputError(f"--preset transformers needs a transformers.PreTrainedModel; the factory returned a "
                             f"{type(model).__name__}: use --rules instead")
        model_type = getattr(getattr(model, "config", None), "model_type", None) or "(none)"
        if (not chosen and isinstance(model, base) and model_type not in TRANSFORMERS_FAMILIES
                and not _base_init_only(type(model), base)):
            why = f" ({NOT_COVERED[model_type]})" if model_type in NOT_COVERED else ""
            raise InputError(f"--preset transformers does not cover model_type {model_type!r}{why}; it covers "
                             f"{_covered()}: use --rules instead")
        self._base = base
        self._model = model
        self._families: dict[tuple[str, type], Family | None] = {}
        self._dispatch: dict[str, Any] = {}  # module prefix -> the PreTrainedModel whose _init_weights visits it
        self._aliases: dict[int, list[str]] = {}  # id of a parameter -> its names
        for alias, parameter in model.named_parameters(remove_duplicate=False):
            self._aliases.setdefault(id(parameter), []).append(alias)
        modules = model.named_modules(remove_duplicate=False)
        for prefix, module in modules:
            parent = self._dispatch.get(prefix.rpartition(".")[0]) if prefix else None
            self._dispatch[prefix] = module if isinstance(module, base) else parent

    def family(self, pretrained) -> Family | None:
        """The convention ``pretrained``'s ``_init_weights`` follows: a covered
        family's, the base one for a class that inherits
        ``PreTrainedModel._init_weights`` unchanged, else None."""
        model_type = getattr(pretrained.config, "model_type", None) or "(none)"
        key = (model_type, type(pretrained))
        if key not in self._families:
            package = TRANSFORMERS_FAMILIES.get(model_type)
            if package:
                self._families[key] = Family(model_type, package)
            else:
                self._families[key] = Family(model_type, None) if _base_init_only(type(pretrained), self._base) else None
        return self._families[key]

    def __call__(self, ref: ParameterRef) -> Expectation | Unknown | None:
        return self._law(self._embedding_alias(ref.name))

    def _embedding_alias(self, name: str) -> str:
        """The name under which an ``nn.Embedding`` holds this parameter, if one
        does: a tied output layer is a view of the input embedding, which HF
        initializes (its padding row zero) whichever name comes first."""
        from torch import nn

        for alias in self._aliases.get(id(self._model.get_parameter(name)), ()):
            prefix = alias.rpartition(".")[0]
            if alias != name and isinstance(self._model.get_submodule(prefix) if prefix else self._model, nn.Embedding):
                return alias
        return name

    def _law(self, name: str) -> Expectation | Unknown | None:
        parts = name.split(".")
        parameter = self._model.get_parameter(name)
        found = None
        # the owner first, then each module above it: the last to write the parameter wins
        for depth in range(len(parts) - 1, -1, -1):
            prefix = ".".join(parts[:depth])
            module = self._model.get_submodule(prefix) if prefix else self._model
            pretrained = self._dispatch.get(prefix)
            if pretrained is None:  # above every PreTrainedModel: post_init writes nothing here
                break
            family = self.family(pretrained)
            if family is None:
                model_type = getattr(pretrained.config, "model_type", None)
                why = f" ({NOT_COVERED[model_type]})" if model_type in NOT_COVERED else ""
                return Unknown(f"{prefix or 'the model'} is initialized by transformers' {model_type!r} "
                               f"_init_weights{why}, which the transformers preset does not cover; add a rule")
            written = family.law(module, tuple(parts[depth:]), parameter, pretrained)
            if written is not None:
                found = written
        return found


class Family:
    """One family's ``_init_weights``: the base convention and its overrides."""

    def __init__(self, model_type: str, package: str | None):
        """``package`` None: a family that keeps the base convention (no overrides)."""
        self.model_type = model_type
        self.package = package
        self._modeling = None

    def cls(self, name: str):
        """A class of the family's modeling module (None if this version has no such class)."""
        if self._modeling is None:
            self._modeling = importlib.import_module(f"transformers.models.{self.package}.modeling_{self.package}")
        return getattr(self._modeling, name, None)

    def isinstance(self, module, *names: str) -> bool:
        classes = tuple(c for c in (self.cls(n) for n in names) if c is not None)
        return bool(classes) and isinstance(module, classes)

    def law(self, module, path: tuple[str, ...], parameter, pretrained) -> Expectation | Unknown | None:
        """What visiting ``module`` (with ``pretrained``'s ``_init_weights``) writes into its
        parameter at ``path`` (``("weight",)`` for its own, ``("c_proj", "weight")`` for a
        child's), or None."""
        config = pretrained.config
        found = base_law(module, path, parameter, config) if len(path) == 1 else None
        override = getattr(self, "_" + self.package, None) if self.package else None
        if override is not None:
            written = override(module, path, parameter, pretrained)
            if written is not None:
                found = written
        return found

    # ----------------------------------------------------------------- family overrides

    def _lm_head_bias(self, module, path, names) -> Expectation | None:
        if path == ("bias",) and self.isinstance(module, *names):
            return Expectation(Constant(0.0), SOURCE, f"{type(module).__name__} bias: zeros_ (the LM head's bias)")
        return None

    def _bert(self, module, path, parameter, pretrained):
        return self._lm_head_bias(module, path, ("BertLMPredictionHead",))

    def _roberta(self, module, path, parameter, pretrained):
        return self._lm_head_bias(module, path, ("RobertaLMHead",))

    def _xlm_roberta(self, module, path, parameter, pretrained):
        return self._lm_head_bias(module, path, ("XLMRobertaLMHead",))

    def _camembert(self, module, path, parameter, pretrained):
        return self._lm_head_bias(module, path, ("CamembertLMHead",))

    def _gemma(self, module, path, parameter, pretrained):
        """Gemma's RMSNorm scales by (1 + weight): its weight starts at 0."""
        if path == ("weight",) and "RMSNorm" in type(module).__name__:
            return Expectation(Constant(0.0), SOURCE, f"{type(module).__name__} weight: zeros_ (the norm scales by "
                                                      "1 + weight)")
        return None

    _gemma2 = _gemma

    def _mixtral(self, module, path, parameter, pretrained):
        """The experts' fused tensors and the router: N(0, initializer_range)."""
        std = pretrained.config.initializer_range
        if ((path in (("gate_up_proj",), ("down_proj",)) and self.isinstance(module, "MixtralExperts"))
                or (path == ("weight",) and self.isinstance(module, "MixtralTopKRouter"))):
            return Expectation(_normal(std), SOURCE, f"{type(module).__name__} {path[0]}: N(0, initializer_range "
                                                     f"{_fmt(std)})")
        return None

    def _albert(self, module, path, parameter, pretrained):
        return self._lm_head_bias(module, path, ("AlbertMLMHead",))

    def _deberta_v2(self, module, path, parameter, pretrained):
        return self._lm_head_bias(module, path, ("LegacyDebertaV2LMPredictionHead", "DebertaV2LMPredictionHead"))

    def _bart(self, module, path, parameter, pretrained):
        if path == ("final_logits_bias",) and self.isinstance(module, "BartForConditionalGeneration"):
            return Expectation(Constant(0.0), SOURCE, "final_logits_bias: zeros_")
        return None

    def _gpt2(self, module, path, parameter, pretrained):
        config = pretrained.config
        std = config.initializer_range
        if len(path) == 1 and self.isinstance(module, "Conv1D"):
            if path == ("weight",):
                return Expectation(_normal(std), SOURCE, f"Conv1D weight: N(0, initializer_range {_fmt(std)})")
            if path == ("bias",):
                return Expectation(Constant(0.0), SOURCE, "Conv1D bias: zeros_")
        if path == ("c_proj", "weight") and self.isinstance(module, "GPT2Attention", "GPT2MLP"):
            scaled = std / math.sqrt(2 * config.n_layer)
            text = (f"{type(module).__name__} c_proj.weight: N(0, initializer_range {_fmt(std)} / √(2·n_layer), "
                    f"n_layer {config.n_layer}) = N(0, {_fmt(scaled)})")
            if _skipped_as_custom_code(module, pretrained):
                text += (f"; transformers does not apply it here: {type(pretrained).__name__} is custom code "
                         f"(defined outside transformers) and {type(module).__name__} has no parameter or buffer of "
                         "its own, so initialize_weights skips it")
            return Expectation(_normal(scaled), SOURCE, text)
        return None

    def _vit(self, module, path, parameter, pretrained):
        if len(path) != 1 or not self.isinstance(module, "ViTEmbeddings"):
            return None
        std = pretrained.config.initializer_range
        if path[0] in ("position_embeddings", "cls_token"):
            law = TruncatedNormal(0.0, float(std), -2.0, 2.0) if std > 0 else Constant(0.0)
            return Expectation(law, SOURCE, f"ViTEmbeddings {path[0]}: trunc_normal_(0, initializer_range "
                                            f"{_fmt(std)}) cut at [-2, 2]")
        if path[0] == "mask_token":
            return Expectation(Constant(0.0), SOURCE, "ViTEmbeddings mask_token: zeros_")
        return None

    def _t5(self, module, path, parameter, pretrained, prefix: str = "T5"):
        """T5's scaled normals (``modeling_t5.py``), in the ``elif`` order of its
        ``_init_weights``: the first class that matches writes."""
        config = pretrained.config
        factor = config.initializer_factor
        d_model, d_ff, d_kv, heads = config.d_model, config.d_ff, config.d_kv, config.num_heads

        def normal(scale: float, words: str) -> Expectation:
            std = factor * scale
            return Expectation(_normal(std), SOURCE, f"{type(module).__name__} {'.'.join(path)}: "
                                                     f"N(0, initializer_factor {_fmt(factor)} × {words}) = "
                                                     f"N(0, {_fmt(std)})")

        def zero_bias(child: str) -> Expectation | None:
            if path == (child, "bias"):
                return Expectation(Constant(0.0), SOURCE, f"{type(module).__name__} {child}.bias: zeros_")
            return None

        def per_width(*children: str, width: float, words: str) -> Expectation | None:
            for child in children:
                if path == (child, "weight"):
                    return normal(width ** -0.5, words)
                found = zero_bias(child)
                if found is not None:
                    return found
            return None

        if self.isinstance(module, f"{prefix}LayerNorm"):
            if path == ("weight",):
                return Expectation(Constant(float(factor)), SOURCE,
                                   f"{type(module).__name__} weight: constant_(initializer_factor {_fmt(factor)})")
            return None
        if self.isinstance(module, *(f"{prefix}{name}" for name in
                                     ("Model", "ForConditionalGeneration", "EncoderModel", "ForQuestionAnswering"))):
            if path == ("shared", "weight"):
                return normal(1.0, "1")
            if path == ("lm_head", "weight") and not config.tie_word_embeddings:
                return normal(1.0, "1")
            return per_width("qa_outputs", width=d_model, words="d_model^-½")
        if self.isinstance(module, f"{prefix}ForTokenClassification"):
            if path == ("classifier", "weight"):
                return normal(1.0, "1")
            return zero_bias("classifier")
        if self.isinstance(module, f"{prefix}ClassificationHead"):
            return per_width("dense", "out_proj", width=d_model, words="d_model^-½")
        if self.isinstance(module, f"{prefix}DenseActDense", f"{prefix}DenseGatedActDense"):
            return (per_width("wi", "wi_0", "wi_1", width=d_model, words="d_model^-½")
                    or per_width("wo", width=d_ff, words="d_ff^-½"))
        if self.isinstance(module, f"{prefix}Attention"):
            if path == ("q", "weight"):
                return normal((d_model * d_kv) ** -0.5, "(d_model·d_kv)^-½")
            if path in (("k", "weight"), ("v", "weight")):
                return normal(d_model ** -0.5, "d_model^-½")
            if path == ("o", "weight"):
                return normal((heads * d_kv) ** -0.5, "(num_heads·d_kv)^-½")
            if path == ("relative_attention_bias", "weight") and getattr(module, "has_relative_attention_bias", False):
                return normal(d_model ** -0.5, "d_model^-½")
        return None

    def _mt5(self, module, path, parameter, pretrained):
        return self._t5(module, path, parameter, pretrained, prefix="MT5")

    def _umt5(self, module, path, parameter, pretrained):
        return self._t5(module, path, parameter, pretrained, prefix="UMT5")

    def _distilbert(self, module, path, parameter, pretrained):
        if (path == ("position_embeddings", "weight") and self.isinstance(module, "Embeddings")
                and getattr(pretrained.config, "sinusoidal_pos_embds", False)):
            return Unknown("sinusoidal_pos_embds: the position table is a fixed sinusoid "
                           "(create_sinusoidal_embeddings), not drawn from a law")
        return None


def _base_init_only(cls: type, base: type) -> bool:
    """Whether no class between ``cls`` and ``PreTrainedModel`` defines
    ``_init_weights``: such a model is initialized by the base convention alone
    (Llama's, Qwen2's, Bloom's, GPT-NeoX's, Phi's and many more families')."""
    return not any("_init_weights" in vars(k) for k in cls.__mro__
                   if k is not base and isinstance(k, type) and issubclass(k, base))


def _skipped_as_custom_code(module, pretrained) -> bool:
    """Whether transformers' ``initialize_weights`` skips ``module``: for a class
    it treats as custom code (``is_custom_code()``: defined outside transformers)
    it skips every module with no parameter or buffer of its own, as GPT-2's
    attention and MLP blocks are, whose ``_init_weights`` scales ``c_proj``."""
    check = getattr(type(pretrained), "is_custom_code", None)
    try:
        custom = bool(check()) if callable(check) else False
    except Exception:
        custom = False
    own = [*module.parameters(recurse=False), *(b for b in module.buffers(recurse=False) if b is not None)]
    return custom and not own


_LINEAR_LIKE_NAMES = ("Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d")


def base_law(module, path: tuple[str, ...], parameter, config) -> Expectation | None:
    """``PreTrainedModel._init_weights`` on ``module``'s own parameter ``path[0]``."""
    from torch import nn

    attribute = path[0]
    linear = next((getattr(nn, n) for n in _LINEAR_LIKE_NAMES if isinstance(module, getattr(nn, n))), None)
    if linear is not None:
        if attribute == "weight":
            std = _Std(config)
            return Expectation(std.normal(), SOURCE, f"nn.{linear.__name__} weight: N(0, {std.words})")
        if attribute == "bias":
            return Expectation(Constant(0.0), SOURCE, f"nn.{linear.__name__} bias: zeros_")
        return None
    if isinstance(module, nn.LSTM):
        if "weight" in attribute:
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(parameter)
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            return Expectation(Uniform(-bound, bound), SOURCE,
                               f"nn.LSTM {attribute}: xavier_uniform_, fans {fan_in}, {fan_out}")
        if "bias" in attribute:
            return Expectation(Constant(0.0), SOURCE, f"nn.LSTM {attribute}: constant_(0)")
        return None
    if isinstance(module, nn.Embedding):
        if attribute != "weight":
            return None
        std = _Std(config)
        padding = module.padding_idx
        exact = ((int(padding) % parameter.shape[0], 0.0),) if padding is not None else ()
        text = f"nn.Embedding weight: N(0, {std.words})" + (f", padding_idx {padding} row exactly 0" if exact else "")
        return Expectation(std.normal(), SOURCE, text, exact_rows=exact)
    if isinstance(module, nn.MultiheadAttention):
        return None  # torch's own _reset_parameters: the layer default
    name = type(module).__name__
    if (isinstance(module, (nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))
            or "LayerNorm" in name or "RMSNorm" in name):
        if attribute == "weight":
            return Expectation(Constant(1.0), SOURCE, f"{name} weight: ones_ (a norm)")
        if attribute == "bias":
            return Expectation(Constant(0.0), SOURCE, f"{name} bias: zeros_ (a norm)")
    return None
