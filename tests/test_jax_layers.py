"""The JAX layer libraries' layer defaults (Flax linen and NNX, Equinox, Haiku).

Each library's weight and bias rows are drawn by the library's own layer on
the real shape and pass on a fixed seed; a batch is bit for bit the layers
built one key at a time; Equinox's key split and the law each library
documents are pinned; and the corrected and uncorrected truncated normals are
told apart (a row checked against the other one fails).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from helpers import check_rows, failed
from initcheck import frameworks
from initcheck.laws import TRUNCATION_CORRECTION, Constant, TruncatedNormal, Uniform
from initcheck.layers import Layer

pytestmark = pytest.mark.skipif(not frameworks.installed("jax"), reason="needs jax")

N = 100_000
TINY = Layer.dense(5, 2)
CONV = Layer(3, 4, (2, 2))


@pytest.fixture(scope="module")
def layers():
    from initcheck.frameworks import jax_layers

    return jax_layers


def library(layers, name, api_prefix):
    return next(lib for lib in layers.LIBRARIES if lib.name == name and lib.dense(TINY).startswith(api_prefix))


LIBRARY_NAMES = [("flax", "flax.linen"), ("flax", "flax.nnx"), ("equinox", "equinox"), ("haiku", "haiku")]


_BUILT: dict = {}


def rows(layers, name, prefix, layer, dtype="float32"):
    """The library's (parameter, plan) rows, built once per test module (a plan
    keeps its compiled draws, and JAX's compiles are most of these tests' time)."""
    pytest.importorskip(name)
    key = (prefix, layer, dtype)
    if key not in _BUILT:
        _BUILT[key] = layers.library_rows(library(layers, name, prefix), layer, "cpu", dtype)
    return _BUILT[key]


@pytest.mark.parametrize("name,prefix", LIBRARY_NAMES)
def test_each_library_passes_its_documented_law(layers, name, prefix):
    plans = [plan for _, plan in rows(layers, name, prefix, TINY)]
    assert all(plan.framework == name and plan.api.startswith(prefix) for plan in plans)
    results = check_rows(plans, samples=N, seed=11)
    assert [r.verdict for r in results] == ["PASS"] * 2, [(r.api, r.reason) for r in results]


def _shapes(layers, name, prefix, layer, dtype="float32"):
    """{parameter: (shape, dtype)} of the library's real build, traced (jax.eval_shape), not compiled."""
    import jax

    from initcheck.frameworks.jax_nn import _precision

    pytest.importorskip(name)
    with _precision(dtype):
        found = jax.eval_shape(library(layers, name, prefix).build(layer, dtype), jax.random.key(0))
    return {param: (tuple(value.shape), str(value.dtype)) for param, value in found.items()}


def test_the_laws_and_layouts_each_library_documents(layers):
    by_api = {plan.api: plan for name, prefix in LIBRARY_NAMES for _, plan in rows(layers, name, prefix, CONV)}
    fan_in = 3 * 2 * 2
    corrected = math.sqrt(1 / fan_in) / TRUNCATION_CORRECTION  # lecun_normal: variance exactly 1 / fan_in
    uncorrected = 1 / math.sqrt(fan_in)  # haiku TruncatedNormal(stddev=1/sqrt(fan_in)): variance 0.7737 / fan_in
    bound = 1 / math.sqrt(fan_in)
    lecun = TruncatedNormal(0, corrected, -2 * corrected, 2 * corrected)
    expected = {
        "flax.linen.Conv(4, (2, 2)).kernel": ((2, 2, 3, 4), lecun),
        "flax.linen.Conv(4, (2, 2)).bias": ((4,), Constant(0.0)),
        "flax.nnx.Conv(3, 4, (2, 2)).kernel": ((2, 2, 3, 4), lecun),
        "flax.nnx.Conv(3, 4, (2, 2)).bias": ((4,), Constant(0.0)),
        "equinox.nn.Conv2d(3, 4, (2, 2)).weight": ((4, 3, 2, 2), Uniform(-bound, bound)),
        "equinox.nn.Conv2d(3, 4, (2, 2)).bias": ((4, 1, 1), Uniform(-bound, bound)),
        "haiku.Conv2D(4, (2, 2)).w": ((2, 2, 3, 4), TruncatedNormal(0, uncorrected, -2 * uncorrected, 2 * uncorrected)),
        "haiku.Conv2D(4, (2, 2)).b": ((4,), Constant(0.0)),
    }
    assert {api: (plan.shape, plan.law) for api, plan in by_api.items()} == expected
    for name, prefix in LIBRARY_NAMES:  # the plans' shapes are the shapes the library builds
        for dtype in ("float32", "float64", "bfloat16", "float16"):
            built = _shapes(layers, name, prefix, CONV, dtype)
            assert {param: plan.shape for param, plan in rows(layers, name, prefix, CONV)} == \
                {param: shape for param, (shape, _) in built.items()}
            assert {d for _, d in built.values()} == {dtype}, (prefix, dtype)
    assert by_api["haiku.Conv2D(4, (2, 2)).w"].law.variance == pytest.approx(0.77374 / fan_in, rel=1e-4)
    assert by_api["flax.nnx.Conv(3, 4, (2, 2)).kernel"].law.variance == pytest.approx(1 / fan_in, rel=1e-12)


def _built_one_key_at_a_time(name, prefix, layer, key):
    """The library's layer built directly from ``key``: what draw j of a batch must be."""
    import jax.numpy as jnp

    x = jnp.ones((1, *layer.kernel, layer.in_features))
    if prefix == "flax.linen":
        import flax.linen as nn

        params = nn.Dense(layer.out_features).init(key, x)["params"]
        return params["kernel"], params["bias"]
    if prefix == "flax.nnx":
        from flax import nnx

        module = nnx.Linear(layer.in_features, layer.out_features, rngs=nnx.Rngs(params=key))
        return module.kernel.get_value(), module.bias.get_value()
    if name == "equinox":
        import equinox as eqx

        module = eqx.nn.Linear(layer.in_features, layer.out_features, key=key)
        return module.weight, module.bias
    import haiku as hk

    params = hk.transform(lambda x: hk.Linear(layer.out_features)(x)).init(key, x)["linear"]
    return params["w"], params["b"]


@pytest.mark.parametrize("name,prefix", LIBRARY_NAMES)
def test_a_batch_is_the_layer_built_from_each_key(layers, name, prefix):
    import jax

    weight, bias = (plan for _, plan in rows(layers, name, prefix, TINY))
    batch = np.asarray(weight.draw_batch(5, 8))
    keys = jax.random.split(jax.random.key(5), 8)
    direct = [_built_one_key_at_a_time(name, prefix, TINY, keys[j]) for j in range(8)]
    assert batch.shape == (8, *weight.shape)
    assert np.array_equal(batch, np.stack([np.asarray(w) for w, _ in direct]))
    assert len({d.tobytes() for d in batch}) == 8
    if bias.draw_batch is not None:  # Equinox's random bias
        assert np.array_equal(np.asarray(bias.draw_batch(5, 8)), np.stack([np.asarray(b) for _, b in direct]))
    _, one_bias = _built_one_key_at_a_time(name, prefix, TINY, jax.random.key(8))
    assert np.array_equal(np.asarray(bias.draw(8)), np.asarray(one_bias))  # draw i: the layer built from key(seed_i)


def test_equinox_draws_weight_and_bias_from_the_two_halves_of_one_split(layers):
    import jax

    weight, bias = (plan for _, plan in rows(layers, "equinox", "equinox", TINY))
    wkey, bkey = jax.random.split(jax.random.key(4), 2)
    bound = 1 / math.sqrt(5)
    assert np.array_equal(np.asarray(weight.draw(4)),
                          np.asarray(jax.random.uniform(wkey, (2, 5), minval=-bound, maxval=bound)))
    assert np.array_equal(np.asarray(bias.draw(4)),
                          np.asarray(jax.random.uniform(bkey, (2,), minval=-bound, maxval=bound)))


@pytest.mark.parametrize("name,prefix,other", [
    ("haiku", "haiku", "corrected"),  # Haiku's uncorrected truncated normal is not lecun_normal
    ("flax", "flax.nnx", "uncorrected"),  # nor is Flax's lecun_normal Haiku's TruncatedNormal
])
def test_the_other_truncated_normal_fails(layers, name, prefix, other):
    (_, kernel), _ = rows(layers, name, prefix, TINY)
    stddev = 1 / math.sqrt(5)
    sigma = stddev / TRUNCATION_CORRECTION if other == "corrected" else stddev
    planted = dataclasses.replace(kernel, law=TruncatedNormal(0.0, sigma, -2 * sigma, 2 * sigma))
    (result,) = check_rows([planted], samples=N, seed=2)
    assert result.verdict == "FAIL"
    assert "variance" in failed(result), failed(result)


def test_equinox_bias_checked_as_zeros_fails(layers):
    _, (_, bias) = rows(layers, "equinox", "equinox", TINY)
    (result,) = check_rows([dataclasses.replace(bias, law=Constant(0.0), samples=1000, draw_batch=None)],
                           samples=1000, seed=1)
    assert result.verdict == "FAIL"


def test_double_and_low_precision_draws_keep_their_dtype_and_leave_x64_off(layers):
    import jax

    for dtype in ("float64", "bfloat16"):
        (_, weight), _ = rows(layers, "haiku", "haiku", TINY, dtype)  # Haiku's parameters take the input's dtype
        drawn = weight.draw(1)
        assert drawn.dtype == jax.numpy.dtype(dtype) and drawn.shape == (5, 2)
    assert jax.config.jax_enable_x64 is False


def test_a_library_not_installed_is_one_skip_row(layers, monkeypatch):
    from initcheck.frameworks.base import Plan, Skip

    monkeypatch.setattr(layers, "installed", lambda package: package != "haiku")
    found = layers.default_rows(TINY, "cpu", "float32")
    skips = [(name, plan) for name, plan in found if isinstance(plan, Skip)]
    assert [(name, s.framework, s.api, s.reason) for name, s in skips] == [
        ("w", "haiku", "haiku.Linear(2)", "haiku is not installed (pip install dm-haiku)")]
    assert sum(isinstance(plan, Plan) for _, plan in found) == 6


def test_jax_default_rows_are_every_library_in_order():
    from initcheck.frameworks.jax_nn import Jax

    found = Jax().default_rows(TINY, "cpu", "float32")
    assert [(name, plan.framework, plan.api) for name, plan in found] == [
        ("kernel", "flax", "flax.linen.Dense(2).kernel"), ("bias", "flax", "flax.linen.Dense(2).bias"),
        ("kernel", "flax", "flax.nnx.Linear(5, 2).kernel"), ("bias", "flax", "flax.nnx.Linear(5, 2).bias"),
        ("weight", "equinox", "equinox.nn.Linear(5, 2).weight"), ("bias", "equinox", "equinox.nn.Linear(5, 2).bias"),
        ("w", "haiku", "haiku.Linear(2).w"), ("b", "haiku", "haiku.Linear(2).b")]


@pytest.mark.calibration  # (each conv row is seconds of JAX compiles)
@pytest.mark.parametrize("name,prefix", LIBRARY_NAMES)
def test_each_library_conv_passes(layers, name, prefix):
    results = check_rows([plan for _, plan in rows(layers, name, prefix, CONV)], samples=N, seed=12)
    assert [r.verdict for r in results] == ["PASS"] * 2, [(r.api, r.reason) for r in results]


@pytest.mark.calibration
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_library_at_ten_million(layers, seed):
    plans = [plan for layer in (Layer.dense(784, 256), Layer(64, 128, (3, 3)), Layer.dense(5, 2))
             for _, plan in layers.default_rows(layer, "cpu", "float32")]
    results = check_rows(plans, samples=10_000_000, seed=seed)
    assert all(r.verdict == "PASS" for r in results), [(r.api, r.reason) for r in results if r.verdict != "PASS"]


# ----------------------------------------------------------------------------- Flax linen models (initcheck model)


def linen_net():
    import flax.linen as nn
    import jax.numpy as jnp

    class Net(nn.Module):
        @nn.compact
        def __call__(self, tokens, image):  # (each layer once; linen's init runs the forward pass eagerly)
            x = nn.LayerNorm()(nn.Dense(16)(nn.Embed(50, 32)(tokens)))
            head = nn.Dense(3, kernel_init=nn.initializers.he_normal())
            return head(x), nn.Conv(6, (3, 3), feature_group_count=2)(image)

    return Net(), jnp.zeros((1,), jnp.int32), jnp.ones((1, 3, 3, 4))


@pytest.fixture(scope="module")
def flax_models():
    pytest.importorskip("flax")
    from initcheck.frameworks.flax_model import FlaxModels

    return FlaxModels()


def test_linen_parameters_and_their_documented_defaults(flax_models):
    from initcheck.expectation import Expectation, Unknown
    from initcheck.laws import Normal

    model = flax_models.build(linen_net, 0)
    assert flax_models.accepts(model)
    refs = {ref.name: ref for ref in flax_models.parameters(model)}
    assert sorted((r.name, r.shape, r.layer_type) for r in refs.values()) == [
        ("Conv_0.bias", (6,), "Conv"), ("Conv_0.kernel", (3, 3, 2, 6), "Conv"),
        ("Dense_0.bias", (16,), "Dense"), ("Dense_0.kernel", (32, 16), "Dense"),
        ("Dense_1.bias", (3,), "Dense"), ("Dense_1.kernel", (16, 3), "Dense"),
        ("Embed_0.embedding", (50, 32), "Embed"),
        ("LayerNorm_0.bias", (16,), "LayerNorm"), ("LayerNorm_0.scale", (16,), "LayerNorm")]
    laws = {name: flax_models.default(model, ref) for name, ref in refs.items()}

    def lecun(fan_in):
        sigma = math.sqrt(1 / fan_in) / TRUNCATION_CORRECTION
        return TruncatedNormal(0.0, sigma, -2 * sigma, 2 * sigma)

    assert laws["Dense_0.kernel"].law == lecun(32)
    assert laws["Dense_0.kernel"].source == "flax.linen Dense.kernel_init (lecun_normal, the default)"
    assert laws["Conv_0.kernel"].law == lecun(3 * 3 * 2)  # (3, 3, in / groups, out)
    embedding = laws["Embed_0.embedding"].law  # variance_scaling(1, fan_in, normal, out_axis=0): fan_in = features
    assert isinstance(embedding, Normal) and embedding.mu == 0 and embedding.sigma == pytest.approx(32 ** -0.5)
    for name, value in {"Dense_0.bias": 0.0, "Conv_0.bias": 0.0, "Dense_1.bias": 0.0, "LayerNorm_0.bias": 0.0,
                        "LayerNorm_0.scale": 1.0}.items():
        assert isinstance(laws[name], Expectation) and laws[name].law == Constant(value), name
    assert laws["Dense_1.kernel"] == Unknown("Dense.kernel has a custom kernel_init; add a rule")
    one, again, other = (flax_models.values(flax_models.build(linen_net, s), refs["Dense_0.kernel"]) for s in (1, 1, 2))
    assert np.array_equal(one, again) and not np.array_equal(one, other)


def test_a_linen_model_through_the_engine(flax_models):
    import initcheck
    from initcheck.errors import InputError

    def mlp():
        import flax.linen as nn
        import jax.numpy as jnp

        class MLP(nn.Module):
            @nn.compact
            def __call__(self, x):
                return nn.Dense(8)(nn.relu(nn.Dense(32)(x)))

        return MLP(), jnp.ones((1, 64))

    result = initcheck.verify_model(mlp, samples=30_000, max_instances=20)
    assert result.framework == "flax" and result.verdict == "PASS" and len(result) == 4, str(result)
    with pytest.raises(InputError, match="return the module and an example input"):
        flax_models.build(lambda: mlp()[0], 0)
