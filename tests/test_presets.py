"""--preset transformers on real HuggingFace models built from small configs.

Every covered family's model must PASS (no false alarm on the padding rows, the
position embeddings, the LM head biases, the norms, the tied heads), and a bug
planted in an otherwise correct model must FAIL on exactly the parameters it
touched.  Nothing is downloaded: each model is built from a config in code.

Each run folds 2·10^5 values a parameter (samples) from at most 50 instances:
a few seconds a family.  Every family's ties, SKIPs and laws are read without
sampling; `make test` samples one family of each kind, `make calibrate` every
family, and every family over more seeds.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch import nn  # noqa: E402
from transformers import initialization as hf_init  # noqa: E402

from initcheck.errors import InputError  # noqa: E402
from initcheck.expectation import Expectation, Unknown  # noqa: E402
from initcheck.frameworks.torch_model import TorchModels  # noqa: E402
from initcheck.laws import Constant, Normal, TruncatedNormal, Uniform  # noqa: E402
from initcheck.model import verify_model  # noqa: E402
from initcheck.presets import SOURCE, TRANSFORMERS_FAMILIES, load_preset  # noqa: E402

T = transformers
SAMPLES = 2 * 10**5
MAX_INSTANCES = 50
SMALL = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, vocab_size=500,
             max_position_embeddings=64)
DECODER = dict(SMALL, num_key_value_heads=1)


def verify(factory, seed: int = 0):
    return verify_model(factory, preset="transformers", samples=SAMPLES, max_instances=MAX_INSTANCES, seed=seed)


# ----------------------------------------------------------------------------- the covered families


def bert():
    return T.BertForMaskedLM(T.BertConfig(**SMALL))


def roberta():
    return T.RobertaForMaskedLM(T.RobertaConfig(**dict(SMALL, max_position_embeddings=66)))


def albert():
    return T.AlbertForMaskedLM(T.AlbertConfig(**SMALL, embedding_size=32))


def electra():
    return T.ElectraForMaskedLM(T.ElectraConfig(**SMALL, embedding_size=32))


DISTILBERT = dict(dim=64, n_layers=2, n_heads=2, hidden_dim=128, vocab_size=500, max_position_embeddings=64)


def distilbert():
    return T.DistilBertForMaskedLM(T.DistilBertConfig(**DISTILBERT))


def distilbert_sinusoidal():
    return T.DistilBertForMaskedLM(T.DistilBertConfig(**DISTILBERT, sinusoidal_pos_embds=True))


GPT2 = dict(n_embd=64, n_layer=2, n_head=2, vocab_size=500, n_positions=64, bos_token_id=0, eos_token_id=0)


def gpt2():
    return T.GPT2LMHeadModel(T.GPT2Config(**GPT2))


def llama():
    return T.LlamaForCausalLM(T.LlamaConfig(**DECODER, pad_token_id=0))


def mistral():
    return T.MistralForCausalLM(T.MistralConfig(**DECODER))


def qwen2():
    return T.Qwen2ForCausalLM(T.Qwen2Config(**DECODER, tie_word_embeddings=True))


def opt():
    return T.OPTForCausalLM(T.OPTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, ffn_dim=128,
                                        vocab_size=500, max_position_embeddings=64, word_embed_proj_dim=32))


def bart():
    return T.BartForConditionalGeneration(T.BartConfig(
        d_model=64, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=128, decoder_ffn_dim=128, vocab_size=500, max_position_embeddings=64))


DEBERTA = dict(SMALL, relative_attention=True, position_buckets=16, pos_att_type=["p2c", "c2p"], conv_kernel_size=3)


def deberta_v2():
    return T.DebertaV2ForMaskedLM(T.DebertaV2Config(**DEBERTA))


def deberta_v2_new_head():
    return T.DebertaV2ForMaskedLM(T.DebertaV2Config(**DEBERTA, legacy=False))


def vit():
    return T.ViTForMaskedImageModeling(T.ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                                   intermediate_size=128, image_size=32, patch_size=8,
                                                   encoder_stride=8))


T5 = dict(d_model=64, d_ff=128, num_layers=1, num_heads=2, d_kv=16, vocab_size=500)


def t5():
    """Gated feed-forward, relative attention bias, encoder and decoder."""
    return T.T5ForConditionalGeneration(T.T5Config(**T5, feed_forward_proj="gated-gelu", initializer_factor=0.5))


def mt5():
    return T.MT5ForConditionalGeneration(T.MT5Config(**T5))


def umt5():
    return T.UMT5EncoderModel(T.UMT5Config(**dict(T5, num_layers=2)))


def mpnet():
    """A family the preset does not cover (its own _init_weights)."""
    return T.MPNetModel(T.MPNetConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=64))


def xlm_roberta():
    """Its LM head listed before the encoder: the tied embedding is named by the head first."""
    return T.XLMRobertaForMaskedLM(T.XLMRobertaConfig(**dict(SMALL, max_position_embeddings=66)))


def camembert():
    return T.CamembertForMaskedLM(T.CamembertConfig(**dict(SMALL, max_position_embeddings=66)))


def gemma():
    return T.GemmaForCausalLM(T.GemmaConfig(**DECODER, head_dim=32))


def gemma2():
    return T.Gemma2ForCausalLM(T.Gemma2Config(**DECODER, head_dim=32))


def mixtral():
    return T.MixtralForCausalLM(T.MixtralConfig(**DECODER, num_local_experts=4, num_experts_per_tok=2))


def falcon():
    return T.FalconForCausalLM(T.FalconConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                              vocab_size=500))


def gpt_neo():
    return T.GPTNeoForCausalLM(T.GPTNeoConfig(hidden_size=64, num_layers=2, num_heads=2, vocab_size=500,
                                              attention_types=[[["global", "local"], 1]], max_position_embeddings=64,
                                              bos_token_id=0, eos_token_id=0))


def gptj():
    return T.GPTJForCausalLM(T.GPTJConfig(n_embd=64, n_layer=2, n_head=2, vocab_size=500, n_positions=64,
                                          rotary_dim=16, bos_token_id=0, eos_token_id=0))


def bloom():
    """A family whose classes inherit PreTrainedModel._init_weights: the base convention, unlisted."""
    return T.BloomForCausalLM(T.BloomConfig(vocab_size=500, hidden_size=64, n_layer=2, n_head=2))


def qwen3():
    return T.Qwen3ForCausalLM(T.Qwen3Config(**DECODER, head_dim=32))


#: (model_type, factory, tied (name, owner) pairs expected, rows expected SKIP)
FAMILIES = [
    ("bert", bert, {("cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"),
                    ("cls.predictions.decoder.bias", "cls.predictions.bias")}, set()),
    ("roberta", roberta, {("lm_head.decoder.weight", "roberta.embeddings.word_embeddings.weight"),
                          ("lm_head.decoder.bias", "lm_head.bias")}, set()),
    ("albert", albert, {("predictions.decoder.weight", "albert.embeddings.word_embeddings.weight"),
                        ("predictions.decoder.bias", "predictions.bias")}, set()),
    ("electra", electra, {("generator_lm_head.weight", "electra.embeddings.word_embeddings.weight")}, set()),
    ("distilbert", distilbert, {("vocab_projector.weight", "distilbert.embeddings.word_embeddings.weight")}, set()),
    ("distilbert", distilbert_sinusoidal, {("vocab_projector.weight", "distilbert.embeddings.word_embeddings.weight")},
     {"distilbert.embeddings.position_embeddings.weight"}),
    ("gpt2", gpt2, {("lm_head.weight", "transformer.wte.weight")}, set()),
    ("llama", llama, set(), set()),
    ("mistral", mistral, set(), set()),
    ("qwen2", qwen2, {("lm_head.weight", "model.embed_tokens.weight")}, set()),
    ("opt", opt, {("lm_head.weight", "model.decoder.embed_tokens.weight")}, set()),
    ("bart", bart, {("model.encoder.embed_tokens.weight", "model.shared.weight"),
                    ("model.decoder.embed_tokens.weight", "model.shared.weight"),
                    ("lm_head.weight", "model.shared.weight")}, set()),
    ("deberta-v2", deberta_v2, {("cls.predictions.decoder.weight", "deberta.embeddings.word_embeddings.weight"),
                                ("cls.predictions.decoder.bias", "cls.predictions.bias")}, set()),
    ("deberta-v2", deberta_v2_new_head, set(), set()),
    ("vit", vit, set(), set()),
    ("t5", t5, {("encoder.embed_tokens.weight", "shared.weight"), ("decoder.embed_tokens.weight", "shared.weight"),
                ("lm_head.weight", "shared.weight")}, set()),
    ("mt5", mt5, {("encoder.embed_tokens.weight", "shared.weight"), ("decoder.embed_tokens.weight", "shared.weight"),
                  ("lm_head.weight", "shared.weight")}, set()),
    ("umt5", umt5, {("encoder.embed_tokens.weight", "shared.weight")}, set()),
    ("xlm-roberta", xlm_roberta, {("lm_head.decoder.bias", "lm_head.bias"),
                                  ("roberta.embeddings.word_embeddings.weight", "lm_head.decoder.weight")}, set()),
    ("camembert", camembert, {("lm_head.decoder.bias", "lm_head.bias"),
                              ("roberta.embeddings.word_embeddings.weight", "lm_head.decoder.weight")}, set()),
    ("gemma", gemma, {("lm_head.weight", "model.embed_tokens.weight")}, set()),
    ("gemma2", gemma2, {("lm_head.weight", "model.embed_tokens.weight")}, set()),
    ("mixtral", mixtral, set(), set()),
    ("falcon", falcon, {("lm_head.weight", "transformer.word_embeddings.weight")}, set()),
    ("gpt_neo", gpt_neo, {("lm_head.weight", "transformer.wte.weight")}, set()),
    ("gptj", gptj, set(), set()),
]

#: Families not listed whose classes inherit the base _init_weights (same fields as FAMILIES).
BASE_ONLY = [
    ("bloom", bloom, {("lm_head.weight", "transformer.word_embeddings.weight")}, set()),
    ("qwen3", qwen3, set(), set()),
]


def test_every_covered_family_is_verified_here():
    assert {family for family, *_ in FAMILIES} == set(TRANSFORMERS_FAMILIES)
    assert not {family for family, *_ in BASE_ONLY} & set(TRANSFORMERS_FAMILIES)


#: Sampled in `make test`: one family for each way the preset initializes (BERT's tied head and bias, GPT-2's
#: Conv1D and depth-scaled projections, Llama's bias-free RMSNorm decoder, BART's shared encoder-decoder embedding,
#: ViT's truncated tokens, DistilBERT's sinusoidal table left to SKIP, T5's width-scaled normals, XLM-R's head
#: named before its tied embedding, Mixtral's fused experts, Bloom's inherited base convention); `make calibrate` samples every family.
SAMPLED_IN_MAKE_TEST = {"bert", "gpt2", "llama", "bart", "vit", "distilbert_sinusoidal", "t5", "xlm_roberta",
                        "mixtral", "bloom"}
SAMPLED_FAMILIES = [family if family[1].__name__ in SAMPLED_IN_MAKE_TEST
                    else pytest.param(*family, marks=pytest.mark.calibration) for family in FAMILIES + BASE_ONLY]


@pytest.mark.parametrize("model_type, factory, tied, skipped", FAMILIES + BASE_ONLY,
                         ids=[f[1].__name__ for f in FAMILIES + BASE_ONLY])
def test_each_family_has_its_ties_skips_and_every_law_from_the_preset(model_type, factory, tied, skipped):
    """What a verification of the family would find, read without sampling."""
    model = factory()
    assert model.config.model_type == model_type
    refs = TorchModels().parameters(model)
    assert {(ref.name, ref.tied_to) for ref in refs if ref.tied_to is not None} == tied
    laws = laws_of(model)
    assert {name for name, law in laws.items() if isinstance(law, Unknown)} == skipped
    assert {law.source for name, law in laws.items() if name not in skipped} == {SOURCE}


@pytest.mark.parametrize("model_type, factory, tied, skipped", SAMPLED_FAMILIES,
                         ids=[f[1].__name__ for f in FAMILIES + BASE_ONLY])
def test_a_correct_model_of_each_family_passes(model_type, factory, tied, skipped):
    result = verify(factory)
    assert result.verdict == "PASS", str(result)
    assert factory().config.model_type == model_type
    assert set(result.tied) == tied
    assert {r.layer for r in result.results if r.verdict == "SKIP"} == skipped
    assert all(r.verdict == "PASS" for r in result.results if r.layer not in skipped), str(result)
    # the preset, not the layer defaults, gave every law
    assert {r.initializer for r in result.results if r.layer not in skipped} == {SOURCE}


@pytest.mark.calibration
@pytest.mark.parametrize("seed", range(1, 11))
def test_every_family_passes_over_seeds(seed):
    for _, factory, _, _ in FAMILIES + BASE_ONLY:
        result = verify(factory, seed=seed)
        assert result.verdict == "PASS", f"{factory.__name__}, seed {seed}:\n{result}"


# ----------------------------------------------------------------------------- the laws, without sampling


def laws_of(model) -> dict[str, object]:
    adapter = TorchModels()
    preset_for = load_preset("transformers", adapter, model)
    return {ref.name: preset_for(ref) for ref in adapter.parameters(model) if ref.tied_to is None}


def test_padding_rows_are_exact_zero_rows():
    laws = laws_of(roberta())
    word = laws["roberta.embeddings.word_embeddings.weight"]
    assert word.law == Normal(0.0, 0.02) and word.exact_rows == ((1, 0.0),)
    assert word.source == SOURCE
    assert word.text == "nn.Embedding weight: N(0, initializer_range 0.02), padding_idx 1 row exactly 0"
    assert laws["roberta.embeddings.position_embeddings.weight"].exact_rows == ((1, 0.0),)
    assert laws["roberta.embeddings.token_type_embeddings.weight"].exact_rows == ()


def test_gpt2_residual_projections_are_scaled_by_depth():
    laws = laws_of(T.GPT2Model(T.GPT2Config(**dict(GPT2, n_layer=8))))
    for name in ("h.0.attn.c_proj.weight", "h.7.mlp.c_proj.weight"):
        assert laws[name].law == Normal(0.0, 0.02 / 4.0), name
        assert "√(2·n_layer), n_layer 8" in laws[name].text
    assert laws["h.0.attn.c_attn.weight"].law == Normal(0.0, 0.02)
    assert laws["h.0.mlp.c_fc.bias"].law == Constant(0.0)
    assert laws["h.0.attn.c_proj.bias"].law == Constant(0.0)


def test_vit_tokens_are_truncated_at_torch_absolute_bounds():
    laws = laws_of(vit())
    assert laws["vit.embeddings.position_embeddings"].law == TruncatedNormal(0.0, 0.02, -2.0, 2.0)
    assert laws["vit.embeddings.cls_token"].law == TruncatedNormal(0.0, 0.02, -2.0, 2.0)
    assert laws["vit.embeddings.mask_token"].law == Constant(0.0)
    assert laws["vit.embeddings.patch_embeddings.projection.weight"].text.startswith("nn.Conv2d weight: N(0, ")


def test_std_is_read_as_the_base_class_reads_it():
    # OPT and BART have init_std, not initializer_range
    laws = laws_of(T.OPTModel(T.OPTConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, ffn_dim=128,
                                          vocab_size=500, max_position_embeddings=64, init_std=0.05)))
    assert laws["decoder.layers.0.fc1.weight"].law == Normal(0.0, 0.05)
    assert "init_std 0.05" in laws["decoder.layers.0.fc1.weight"].text
    # initializer_range 0 (or None) means 0.02
    laws = laws_of(T.BertModel(T.BertConfig(**dict(SMALL, num_hidden_layers=1), initializer_range=0.0)))
    assert laws["encoder.layer.0.output.dense.weight"].law == Normal(0.0, 0.02)


class _Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(8))


class _GatedRMSNorm(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.gate = nn.Parameter(torch.full((n,), 0.5))


class _WithTorchLayers(T.BertPreTrainedModel):
    """A BERT with torch layers the base convention treats each its own way."""

    def __init__(self, config):
        super().__init__(config)
        self.bert = T.BertModel(config)
        self.mha = nn.MultiheadAttention(64, 2)
        self.lstm = nn.LSTM(16, 32, proj_size=8)
        self.gru = nn.GRU(16, 32)
        self.group_norm = nn.GroupNorm(4, 32)
        self.batch_norm = nn.BatchNorm1d(32)
        self.up1 = nn.ConvTranspose1d(16, 32, 3)
        self.up3 = nn.ConvTranspose3d(8, 16, 3)
        self.rms = _GatedRMSNorm(32)
        self.custom = _Custom()
        self.table = nn.Embedding(300, 16, padding_idx=-1)
        self.post_init()


def with_torch_layers():
    return _WithTorchLayers(T.BertConfig(**dict(SMALL, num_hidden_layers=1)))


def test_torch_layers_inside_a_transformers_model():
    model = with_torch_layers()
    laws = laws_of(model)
    # MultiheadAttention: torch's own _reset_parameters (the layer default), but its out_proj is a Linear
    assert laws["mha.in_proj_weight"] is None and laws["mha.in_proj_bias"] is None
    assert laws["mha.out_proj.weight"].law == Normal(0.0, 0.02)
    # LSTM: xavier_uniform_ each weight, zero biases; a GRU keeps torch's default
    assert laws["lstm.weight_ih_l0"].law == Uniform(-(6 / (16 + 128)) ** 0.5, (6 / (16 + 128)) ** 0.5)
    assert laws["lstm.weight_hr_l0"].law.high == pytest.approx((6 / (32 + 8)) ** 0.5)
    assert laws["lstm.bias_hh_l0"].law == Constant(0.0)
    assert laws["gru.weight_ih_l0"] is None
    # norms by type or by name; only their weight and bias
    assert laws["group_norm.weight"].law == Constant(1.0) and laws["batch_norm.bias"].law == Constant(0.0)
    assert laws["rms.weight"].law == Constant(1.0) and laws["rms.gate"] is None
    # ConvTranspose1d is in the convention, ConvTranspose3d is not
    assert laws["up1.weight"].law == Normal(0.0, 0.02) and laws["up3.weight"] is None
    # a user's own parameter: nothing to say
    assert laws["custom.scale"] is None
    assert laws["table.weight"].exact_rows == ((299, 0.0),)


def test_torch_layers_inside_a_transformers_model_pass():
    result = verify(with_torch_layers)
    rows = {r.layer: r for r in result.results}
    assert result.verdict == "PASS", str(result)
    assert {name for name, r in rows.items() if r.verdict == "SKIP"} == {"rms.gate", "custom.scale"}
    assert rows["mha.in_proj_weight"].initializer == "torch.nn.MultiheadAttention default"
    assert rows["up3.weight"].initializer == "torch.nn.ConvTranspose3d default"
    assert rows["mha.out_proj.weight"].initializer == SOURCE


# ----------------------------------------------------------------------------- planted bugs


def failed(result) -> set[str]:
    return {r.layer for r in result.results if r.verdict == "FAIL"}


def head_added_after_post_init():
    model = T.BertForSequenceClassification(T.BertConfig(**SMALL, num_labels=3))
    model.extra_head = nn.Linear(64, 32)  # torch's default: post_init() has already run
    return model


def test_a_head_added_after_post_init_fails():
    result = verify(head_added_after_post_init)
    assert failed(result) == {"extra_head.weight", "extra_head.bias"}
    rows = {r.layer: r for r in result.results}
    assert "N(0, initializer_range 0.02)" in rows["extra_head.weight"].api
    assert "did not reach this parameter" in rows["extra_head.weight"].reason


class _SkipsEmbeddings(T.BertModel):
    def _init_weights(self, module):
        if isinstance(module, nn.Embedding):
            return
        super()._init_weights(module)


def test_init_weights_that_skips_a_module_type_fails():
    result = verify(lambda: _SkipsEmbeddings(T.BertConfig(**SMALL)))
    assert failed(result) == {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                              "embeddings.token_type_embeddings.weight"}
    # torch's Embedding zeroes the padding row too: that check still passes
    word = next(r for r in result.results if r.layer == "embeddings.word_embeddings.weight")
    assert next(c for c in word.checks if c.name == "fixed rows").passed


class _WrongStdHead(T.LlamaForCausalLM):
    def _init_weights(self, module):
        super()._init_weights(module)
        if module is getattr(self, "lm_head", None):
            hf_init.normal_(module.weight, std=0.2)  # 0.2 where initializer_range is 0.02


def test_a_std_read_wrong_on_one_layer_fails():
    result = verify(lambda: _WrongStdHead(T.LlamaConfig(**DECODER)))
    assert failed(result) == {"lm_head.weight"}
    assert "std 900% above" in next(r for r in result.results if r.layer == "lm_head.weight").reason


def unscaled_mlp():
    model = T.GPT2LMHeadModel(T.GPT2Config(**GPT2))
    for block in model.transformer.h:  # a fork that forgot the 1/√(2·n_layer) of the MLP
        nn.init.normal_(block.mlp.c_proj.weight, std=model.config.initializer_range)
    return model


def test_a_residual_projection_without_the_depth_scaling_fails():
    result = verify(unscaled_mlp)
    assert failed(result) == {"transformer.h.0.mlp.c_proj.weight", "transformer.h.1.mlp.c_proj.weight"}


def t5_query_without_head_scaling():
    """The query projection drawn like the key's, N(0, d_model^-½): the
    (d_model·d_kv)^-½ that folds the attention's 1/√d_kv into T5's query is lost."""
    model = t5()
    factor, d_model = model.config.initializer_factor, model.config.d_model
    nn.init.normal_(model.encoder.block[0].layer[0].SelfAttention.q.weight, std=factor * d_model ** -0.5)
    return model


def test_a_t5_query_without_its_head_scaling_fails():
    result = verify(t5_query_without_head_scaling)
    assert failed(result) == {"encoder.block.0.layer.0.SelfAttention.q.weight"}


class _MyGPT2(T.GPT2Model):
    """A subclass that changes nothing, defined outside transformers."""


def test_a_gpt2_model_subclass_loses_the_depth_scaling():
    # transformers' own initialize_weights skips, for custom code, every module with no
    # parameter or buffer of its own: GPT2Attention and GPT2MLP, which scale c_proj
    result = verify(lambda: _MyGPT2(T.GPT2Config(**GPT2)))
    assert failed(result) == {f"h.{i}.{block}.c_proj.weight" for i in (0, 1) for block in ("attn", "mlp")}
    row = next(r for r in result.results if r.layer == "h.0.mlp.c_proj.weight")
    assert "_MyGPT2 is custom code" in row.api and "% above the law" in row.reason


def layer_copied():
    model = T.BertModel(T.BertConfig(**SMALL))
    model.encoder.layer[1].load_state_dict(model.encoder.layer[0].state_dict())
    return model


def test_one_encoder_layer_copied_into_another_fails_as_duplicates():
    result = verify(layer_copied)
    weights = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
               "intermediate.dense", "output.dense")
    assert failed(result) == {f"encoder.layer.{i}.{w}.weight" for i in (0, 1) for w in weights}
    row = next(r for r in result.results if r.layer == "encoder.layer.1.intermediate.dense.weight")
    assert [c.name for c in row.checks if not c.passed] == ["duplicate"]
    assert "a copy of encoder.layer.0.intermediate.dense.weight" in row.reason


# ----------------------------------------------------------------------------- refusals


def test_a_model_that_is_not_a_pretrained_model_is_refused():
    with pytest.raises(InputError, match=r"needs a transformers.PreTrainedModel.*--rules"):
        verify_model(lambda: nn.Linear(4, 3), preset="transformers")


def test_an_uncovered_family_is_refused_naming_the_covered_ones():
    with pytest.raises(InputError) as error:
        verify_model(mpnet, preset="transformers")
    message = str(error.value)
    assert "\n" not in message
    assert "'mpnet'" in message and "--rules" in message
    assert all(family in message for family in TRANSFORMERS_FAMILIES)


def test_another_framework_is_refused():
    class KerasLike:
        name, title = "keras", "Keras"

    with pytest.raises(InputError, match=r"PyTorch transformers models.*Keras.*--rules"):
        load_preset("transformers", KerasLike(), object())


def test_a_sub_model_of_an_uncovered_family_is_unknown():
    class Outer(T.BertPreTrainedModel):
        def __init__(self, config):
            super().__init__(config)
            self.bert = T.BertModel(config)
            self.mpnet = mpnet()
            self.post_init()

    laws = laws_of(Outer(T.BertConfig(**dict(SMALL, num_hidden_layers=1))))
    assert isinstance(laws["bert.pooler.dense.weight"], Expectation)
    unknown = laws["mpnet.encoder.layer.0.attention.attn.q.weight"]
    assert isinstance(unknown, Unknown) and "transformers' 'mpnet' _init_weights" in unknown.reason


# ----------------------------------------------------------------------------- chosen automatically


def test_a_transformers_model_gets_the_preset_by_default():
    """post_init replaced every layer default: the default ``auto`` reads
    HF's convention, ``none`` the layer defaults (which the model does not
    follow)."""
    model = bert()
    adapter = TorchModels()
    auto, none = load_preset("auto", adapter, model), load_preset("none", adapter, model)
    assert none is None and auto is not None
    ref = next(r for r in adapter.parameters(model) if r.name.endswith("query.weight"))
    assert auto(ref).law == Normal(0.0, 0.02) and auto(ref).source == SOURCE
    assert load_preset("auto", adapter, nn.Linear(4, 3)) is None
    assert verify_model(bert, samples=SAMPLES, max_instances=MAX_INSTANCES).verdict == "PASS"
    assert verify_model(bert, preset="none", samples=SAMPLES, max_instances=MAX_INSTANCES).verdict == "FAIL"


def test_a_model_holding_a_transformers_backbone_gets_the_preset_on_it_only():
    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = T.BertModel(T.BertConfig(**dict(SMALL, num_hidden_layers=1)))
            self.head = nn.Linear(64, 3)  # the user's own: torch's default

    model = Classifier()
    adapter = TorchModels()
    auto = load_preset("auto", adapter, model)
    refs = {r.name: r for r in adapter.parameters(model)}
    assert auto(refs["head.weight"]) is None  # the layer default applies
    assert auto(refs["backbone.pooler.dense.weight"]).law == Normal(0.0, 0.02)
    assert verify_model(Classifier, samples=SAMPLES, max_instances=MAX_INSTANCES).verdict == "PASS"


def test_an_uncovered_family_chosen_automatically_is_skipped_not_refused():
    laws = laws_of_preset("auto", mpnet())
    assert laws and all(isinstance(law, Unknown) and "add a rule" in law.reason for law in laws.values())


def laws_of_preset(name: str, model) -> dict[str, object]:
    adapter = TorchModels()
    preset_for = load_preset(name, adapter, model)
    return {ref.name: preset_for(ref) for ref in adapter.parameters(model) if ref.tied_to is None}


def test_an_unknown_preset_is_one_input_error():
    with pytest.raises(InputError, match=r"unknown preset 'hf'; known: auto, none, transformers"):
        verify_model(bert, preset="hf")
