"""The Keras model adapter: names, seeding, the caller's state, and the laws it
claims, held to what Keras really draws.

One small Sequential (Input, Embedding, Flatten, Dense, Reshape, Conv2D,
BatchNormalization, LayerNormalization) is built once per module; the checks
that need fresh instances build small models of their own.
"""

from __future__ import annotations

import importlib.util
import math
import random
import subprocess
import sys

import numpy as np
import pytest

import initcheck
from initcheck.errors import InputError
from initcheck.expectation import Expectation, Unknown
from initcheck.laws import TRUNCATION_CORRECTION, Constant, Normal, TruncatedNormal, Uniform

pytestmark = pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="needs keras")


@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("keras")
    from initcheck.frameworks import keras_model

    return keras_model._keras()


def test_importing_the_adapter_imports_no_framework():
    code = ("import sys; from initcheck.frameworks.keras_model import KerasModels; "
            "assert not KerasModels.accepts(object()); "
            "print([m for m in ('keras', 'tensorflow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture(scope="module")
def adapter(keras):
    from initcheck.frameworks.keras_model import KerasModels

    return KerasModels()


def small_model():
    import keras

    return keras.Sequential([
        keras.Input((196,), dtype="int32"),
        keras.layers.Embedding(1000, 4),
        keras.layers.Flatten(),                       # 196 * 4 = 784
        keras.layers.Dense(256),
        keras.layers.Reshape((16, 16, 1)),
        keras.layers.Conv2D(8, 3, kernel_initializer="he_normal"),
        keras.layers.BatchNormalization(),
        keras.layers.LayerNormalization(),
    ])


@pytest.fixture(scope="module")
def model(adapter):
    return adapter.build(small_model, 0)


@pytest.fixture(scope="module")
def refs(adapter, model):
    return {ref.name: ref for ref in adapter.parameters(model)}


def test_parameters_are_named_by_keras_path(refs):
    assert [(r.name, r.shape, r.layer_type, r.attribute) for r in refs.values()] == [
        ("embedding.embeddings", (1000, 4), "Embedding", "embeddings"),
        ("dense.kernel", (784, 256), "Dense", "kernel"),
        ("dense.bias", (256,), "Dense", "bias"),
        ("conv2d.kernel", (3, 3, 1, 8), "Conv2D", "kernel"),
        ("conv2d.bias", (8,), "Conv2D", "bias"),
        ("batch_normalization.gamma", (8,), "BatchNormalization", "gamma"),
        ("batch_normalization.beta", (8,), "BatchNormalization", "beta"),
        ("batch_normalization.moving_mean", (8,), "BatchNormalization", "moving_mean"),
        ("batch_normalization.moving_variance", (8,), "BatchNormalization", "moving_variance"),
        ("layer_normalization.gamma", (8,), "LayerNormalization", "gamma"),
        ("layer_normalization.beta", (8,), "LayerNormalization", "beta"),
    ]
    assert all(r.dtype == "float32" and r.tied_to is None for r in refs.values())


def test_every_instance_names_its_layers_alike(adapter, refs):
    again = adapter.build(small_model, 5)
    assert [r.name for r in adapter.parameters(again)] == list(refs)


def test_layer_defaults(adapter, model, refs):
    def law(name):
        found = adapter.default(model, refs[name])
        assert isinstance(found, Expectation), found
        return found

    dense = law("dense.kernel")
    bound = math.sqrt(6.0 / (784 + 256))
    assert dense.law == Uniform(-bound, bound)
    assert dense.source == "keras Dense.kernel_initializer (GlorotUniform, the default)"
    assert dense.text == "glorot_uniform: U(±sqrt(6/(fan_in+fan_out))), fans 784, 256"

    conv = law("conv2d.kernel")  # he_normal, fan_in 3 * 3 * 1
    sigma = math.sqrt(2.0 / 9) / TRUNCATION_CORRECTION
    assert conv.law == TruncatedNormal(0.0, sigma, -2 * sigma, 2 * sigma)
    assert conv.source == "keras Conv2D.kernel_initializer (HeNormal, configured)"
    assert "fans 9, 72" in conv.text

    embedding = law("embedding.embeddings")
    assert embedding.law == Uniform(-0.05, 0.05)
    assert embedding.source == "keras Embedding.embeddings_initializer (RandomUniform, the default)"

    expected = {"dense.bias": 0.0, "conv2d.bias": 0.0, "batch_normalization.gamma": 1.0,
                "batch_normalization.beta": 0.0, "batch_normalization.moving_mean": 0.0,
                "batch_normalization.moving_variance": 1.0, "layer_normalization.gamma": 1.0,
                "layer_normalization.beta": 0.0}
    for name, value in expected.items():
        assert law(name).law == Constant(value), name
    assert law("batch_normalization.moving_variance").source == (
        "keras BatchNormalization.moving_variance_initializer (Ones, the default)")


def test_same_seed_same_weights_other_seed_other_weights(adapter, refs):
    ref = refs["dense.kernel"]
    one = adapter.values(adapter.build(small_model, 1), ref)
    again = adapter.values(adapter.build(small_model, 1), ref)
    other = adapter.values(adapter.build(small_model, 2), ref)
    assert isinstance(one, np.ndarray) and one.shape == (784, 256)
    assert np.array_equal(one, again)
    assert not np.array_equal(one, other)


def _name_counter(keras):
    """The number the next automatically named Dense gets."""
    name = keras.layers.Dense(1).name
    return 0 if name == "dense" else int(name.rsplit("_", 1)[1])


def test_the_callers_state_is_left_as_it_was(adapter, keras):
    random.seed(123)
    np.random.seed(456)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    tf_state = None
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        from tensorflow.python.eager import context

        tf.random.set_seed(789)
        tf_state = (context.context()._seed, context.context()._rng.getstate())
    before = _name_counter(keras)
    random.seed(123)
    np.random.seed(456)
    adapter.build(small_model, 3)
    assert random.getstate() == python_state
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]
    if tf_state is not None:
        assert (context.context()._seed, context.context()._rng.getstate()) == tf_state
    assert _name_counter(keras) == before + 1  # the build's layers did not count


def test_a_factory_that_takes_seed_gets_it(adapter, keras):
    seen = []

    def factory(seed):
        seen.append(seed)
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])

    adapter.build(factory, 17)
    assert seen == [17]


def test_an_unbuilt_model_is_an_input_error(adapter, keras):
    def unbuilt():
        return keras.Sequential([keras.layers.Dense(3)])

    with pytest.raises(InputError) as error:
        adapter.build(unbuilt, 0)
    message = str(error.value)
    assert "\n" not in message and "not built" in message
    assert "input shape" in message and "model.build(" in message


def test_what_is_not_keras_is_handed_back_for_the_next_adapter(adapter):
    thing = object()
    assert adapter.build(lambda: thing, 0) is thing
    assert not adapter.accepts(thing)


def test_configured_initializers(adapter, keras):
    inits = keras.initializers

    def factory():
        return keras.Sequential([
            keras.Input((100,)),
            keras.layers.Dense(50, kernel_initializer=inits.VarianceScaling(2.0, "fan_out", "uniform"),
                               bias_initializer=inits.Constant(0.3)),
            keras.layers.Dense(40, kernel_initializer=inits.RandomNormal(0.1, 0.2),
                               bias_initializer=inits.RandomUniform(-1.0, 2.0)),
            keras.layers.Dense(30, kernel_initializer=inits.TruncatedNormal(0.0, 0.5),
                               bias_initializer="ones"),
            keras.layers.Dense(20, kernel_initializer=inits.VarianceScaling(3.0, "fan_avg", "untruncated_normal")),
            keras.layers.Dense(10, kernel_initializer=inits.GlorotNormal(seed=7)),
        ])

    built = adapter.build(factory, 0)
    laws = {r.name: adapter.default(built, r) for r in adapter.parameters(built)}
    bound = math.sqrt(3 * 2.0 / 50)
    assert laws["dense.kernel"].law == Uniform(-bound, bound)
    assert laws["dense.kernel"].source == "keras Dense.kernel_initializer (VarianceScaling, configured)"
    assert laws["dense.bias"].law == Constant(0.3)
    assert laws["dense_1.kernel"].law == Normal(0.1, 0.2)
    assert laws["dense_1.bias"].law == Uniform(-1.0, 2.0)
    # TruncatedNormal: cut at mean ± 2 stddev, stddev not corrected
    assert laws["dense_2.kernel"].law == TruncatedNormal(0.0, 0.5, -1.0, 1.0)
    assert laws["dense_2.bias"].law == Constant(1.0)
    assert laws["dense_3.kernel"].law == Normal(0.0, math.sqrt(3.0 / ((30 + 20) / 2)))
    sigma = math.sqrt(2.0 / (20 + 10)) / TRUNCATION_CORRECTION
    assert laws["dense_4.kernel"].law == TruncatedNormal(0.0, sigma, -2 * sigma, 2 * sigma)
    assert "seeded with 7: every instance draws the same values" in laws["dense_4.kernel"].text


def test_fans_are_keras_own(keras):
    from keras.src.initializers.random_initializers import compute_fans

    from initcheck.frameworks.keras_model import keras_fans

    for shape in [(), (7,), (5, 3), (3, 3, 4, 8), (2, 3, 3, 4, 6)]:
        assert keras_fans(shape) == compute_fans(shape), shape
    assert keras_fans((16, 2, 4), [0], [1, 2]) == compute_fans((16, 2, 4), [0], [1, 2]) == (16, 8)


def test_grouped_depthwise_and_attention_kernels(adapter, keras):
    def factory():
        inputs = keras.Input((6, 16))
        x = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(inputs, inputs)
        x = keras.layers.DepthwiseConv1D(3, depth_multiplier=2)(x)   # kernel (3, 16, 2)
        x = keras.layers.Conv1D(8, 3, groups=4)(x)                    # kernel (3, 8, 8)
        return keras.Model(inputs, x)

    built = adapter.build(factory, 0)
    laws = {r.name: adapter.default(built, r) for r in adapter.parameters(built)}

    def glorot(fan_in, fan_out):
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        return Uniform(-bound, bound)

    # EinsumDense hands the initializer its equation's axes: query (16, 2, 4) is 16 -> 8
    assert laws["multi_head_attention.query.kernel"].law == glorot(16, 8)
    assert laws["multi_head_attention.attention_output.kernel"].law == glorot(8, 16)
    assert laws["depthwise_conv1d.kernel"].law == glorot(3 * 16, 3 * 2)
    assert laws["depthwise_conv1d.kernel"].source.startswith("keras DepthwiseConv1D.depthwise_initializer")
    assert laws["conv1d.kernel"].law == glorot(3 * 8, 3 * 8)


def test_lstm_forget_gate_bias_is_one(adapter, keras):
    def factory():
        return keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4)])

    built = adapter.build(factory, 0)
    refs = {r.name: r for r in adapter.parameters(built)}
    bias = adapter.default(built, refs["lstm.lstm_cell.bias"])
    assert bias.law == Constant(0.0) and bias.exact_rows == tuple((i, 1.0) for i in range(4, 8))
    values = adapter.values(built, refs["lstm.lstm_cell.bias"])
    assert np.array_equal(values, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    recurrent = adapter.default(built, refs["lstm.lstm_cell.recurrent_kernel"])  # Orthogonal: structured
    assert recurrent.source == "keras LSTMCell.recurrent_initializer (Orthogonal, the default)"
    if importlib.util.find_spec("initcheck.structured") is None:
        assert isinstance(recurrent, Unknown)
    else:
        assert isinstance(recurrent, Expectation) and recurrent.draw_checks is not None


def test_unknown_initializers_and_layers(adapter, keras):
    class Scaled(keras.layers.Layer):
        def build(self, input_shape):
            self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

        def call(self, x):
            return x * self.scale

    def my_init(shape, dtype=None):
        return keras.ops.ones(shape, dtype=dtype)

    def factory():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, kernel_initializer=my_init), Scaled()])

    built = adapter.build(factory, 0)
    laws = {r.name: adapter.default(built, r) for r in adapter.parameters(built)}
    assert laws["dense.kernel"] == Unknown("Dense.kernel has a custom initializer (my_init); add a rule")
    assert laws["scaled.scale"] == Unknown("no documented default for Scaled.scale; add a rule")


def test_a_variable_held_by_two_layers_is_tied(adapter, keras):
    class TiedOutput(keras.layers.Layer):
        def __init__(self, embedding, **kwargs):
            super().__init__(**kwargs)
            self.embedding = embedding

        def build(self, input_shape):
            self.table = self.embedding.embeddings

        def call(self, x):
            return keras.ops.matmul(x, keras.ops.transpose(self.table))

    def factory():
        inputs = keras.Input((4,), dtype="int32")
        embedding = keras.layers.Embedding(50, 8)
        return keras.Model(inputs, TiedOutput(embedding)(embedding(inputs)))

    built = adapter.build(factory, 0)
    assert [(r.name, r.tied_to) for r in adapter.parameters(built)] == [
        ("embedding.embeddings", None), ("tied_output.table", "embedding.embeddings")]


def test_drawn_kernels_follow_the_claimed_laws(adapter, keras, refs):
    """The real weights, one fresh instance per draw, against the law default() claims."""
    dense = refs["dense.kernel"]
    dense_law = adapter.default(adapter.build(small_model, 0), dense).law

    def dense_kernel(shape, seed):
        return adapter.values(adapter.build(small_model, seed), dense)

    def conv_model():
        return keras.Sequential([keras.Input((8, 8, 16)), keras.layers.Conv2D(64, 3, kernel_initializer="he_normal")])

    conv_built = adapter.build(conv_model, 0)
    conv = next(r for r in adapter.parameters(conv_built) if r.name == "conv2d.kernel")
    conv_law = adapter.default(conv_built, conv).law
    sigma = math.sqrt(2.0 / (3 * 3 * 16)) / TRUNCATION_CORRECTION
    assert conv_law == TruncatedNormal(0.0, sigma, -2 * sigma, 2 * sigma)

    def conv_kernel(shape, seed):
        return adapter.values(adapter.build(conv_model, seed), conv)

    result = initcheck.verify_all([
        initcheck.Check(dense_kernel, dense_law, shape=dense.shape, layout="keras"),
        initcheck.Check(conv_kernel, conv_law, shape=conv.shape, layout="keras"),
    ], samples=200_000, seed=1)
    assert result.verdict == "PASS", str(result)
