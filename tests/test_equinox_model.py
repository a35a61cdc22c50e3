"""The Equinox model adapter: pytree paths, seeding through the factory's key
or seed, the default laws of Equinox's layers, and the model engine on
correct models and on planted bugs (a re-initialized layer, a copied weight,
an ignored key).
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

eqx = pytest.importorskip("equinox")  # (a module global: the engine tries the Equinox adapter first here)
jax = pytest.importorskip("jax")

import initcheck  # noqa: E402
from initcheck.errors import InputError  # noqa: E402
from initcheck.expectation import Expectation, Unknown  # noqa: E402
from initcheck.laws import Constant, Normal, Uniform  # noqa: E402

FAST = {"samples": 50_000, "max_instances": 30}


def test_importing_the_adapter_imports_no_framework():
    code = ("import sys; from initcheck.frameworks.equinox_model import EquinoxModels; "
            "assert not EquinoxModels.accepts(object()); "
            "print([m for m in ('equinox', 'jax') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture(scope="module")
def adapter():
    from initcheck.frameworks.equinox_model import EquinoxModels

    return EquinoxModels()


class Net(eqx.Module):
    embed: eqx.nn.Embedding
    layers: list
    conv: eqx.nn.Conv2d
    norm: eqx.nn.LayerNorm
    batch: eqx.nn.BatchNorm
    gru: eqx.nn.GRUCell
    alpha: jax.Array

    def __init__(self, key):
        keys = jax.random.split(key, 5)
        self.embed = eqx.nn.Embedding(100, 16, key=keys[0])
        self.layers = [eqx.nn.Linear(64, 32, key=keys[1]), eqx.nn.Linear(32, "scalar", key=keys[2])]
        self.conv = eqx.nn.Conv2d(8, 6, (3, 3), groups=2, key=keys[3])
        self.norm = eqx.nn.LayerNorm(32)
        self.batch = eqx.nn.BatchNorm(6, "batch", mode="batch")
        self.gru = eqx.nn.GRUCell(4, 5, key=keys[4])
        self.alpha = jax.numpy.zeros(3)


def small_net(key):
    return Net(key)


@pytest.fixture(scope="module")
def model(adapter):
    return adapter.build(small_net, 0)


@pytest.fixture(scope="module")
def refs(adapter, model):
    return {ref.name: ref for ref in adapter.parameters(model)}


def test_parameters_are_named_by_pytree_path(refs):
    assert sorted((r.name, r.shape, r.layer_type, r.attribute) for r in refs.values()) == [
        ("alpha", (3,), "Net", "alpha"),
        ("batch.bias", (6,), "BatchNorm", "bias"),
        ("batch.weight", (6,), "BatchNorm", "weight"),  # (its running statistics are state, not parameters)
        ("conv.bias", (6, 1, 1), "Conv2d", "bias"),
        ("conv.weight", (6, 4, 3, 3), "Conv2d", "weight"),
        ("embed.weight", (100, 16), "Embedding", "weight"),
        ("gru.bias", (15,), "GRUCell", "bias"),
        ("gru.bias_n", (5,), "GRUCell", "bias_n"),
        ("gru.weight_hh", (15, 5), "GRUCell", "weight_hh"),
        ("gru.weight_ih", (15, 4), "GRUCell", "weight_ih"),
        ("layers.0.bias", (32,), "Linear", "bias"),
        ("layers.0.weight", (32, 64), "Linear", "weight"),
        ("layers.1.bias", (1,), "Linear", "bias"),
        ("layers.1.weight", (1, 32), "Linear", "weight"),
        ("norm.bias", (32,), "LayerNorm", "bias"),
        ("norm.weight", (32,), "LayerNorm", "weight"),
    ]
    assert all(r.dtype == "float32" and r.tied_to is None for r in refs.values())


def test_layer_defaults(adapter, model, refs):
    def law(name):
        found = adapter.default(model, refs[name])
        assert isinstance(found, Expectation), found
        return found

    def uniform(fan_in):
        return Uniform(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))

    assert law("layers.0.weight").law == uniform(64) and law("layers.0.bias").law == uniform(64)  # the bias too
    assert law("layers.0.weight").source == "equinox.nn.Linear default"
    assert law("layers.1.weight").law == uniform(32)
    assert law("conv.weight").law == uniform(4 * 9) and law("conv.bias").law == uniform(4 * 9)  # in / groups
    assert "in_channels 8 / groups 2" in law("conv.weight").text
    assert law("conv.weight").source == "equinox.nn.Conv default"
    assert law("embed.weight").law == Normal(0.0, 1.0)
    for name in ("gru.weight_ih", "gru.weight_hh", "gru.bias", "gru.bias_n"):
        assert law(name).law == uniform(5), name
    for name, value in {"norm.weight": 1.0, "norm.bias": 0.0, "batch.weight": 1.0, "batch.bias": 0.0}.items():
        assert law(name).law == Constant(value), name
    assert adapter.default(model, refs["alpha"]) == Unknown("no documented default for Net.alpha; add a rule")


def test_same_seed_same_values_other_seed_other_values(adapter, refs):
    ref = refs["layers.0.weight"]
    one = adapter.values(adapter.build(small_net, 1), ref)
    again = adapter.values(adapter.build(small_net, 1), ref)
    other = adapter.values(adapter.build(small_net, 2), ref)
    assert isinstance(one, np.ndarray) and one.shape == (32, 64)
    assert np.array_equal(one, again) and not np.array_equal(one, other)


def test_factories_taking_seed_or_key(adapter, refs):
    seen = []

    def by_seed(seed):
        seen.append(seed)
        return Net(jax.random.PRNGKey(seed))

    ref = refs["embed.weight"]
    assert np.array_equal(adapter.values(adapter.build(by_seed, 4), ref),
                          adapter.values(adapter.build(small_net, 4), ref))
    assert seen == [4]
    with pytest.raises(InputError) as error:
        adapter.build(lambda: Net(jax.random.PRNGKey(0)), 0)
    message = str(error.value)
    assert "\n" not in message and "`seed`" in message and "`key`" in message


def test_what_is_not_equinox_is_handed_back_for_the_next_adapter(adapter):
    thing = object()
    assert adapter.build(lambda: thing, 0) is thing
    assert not adapter.accepts(thing)


# ----------------------------------------------------------------------------- the engine


# (the layers' shapes are Net's: JAX compiles each new shape's eager draws once, and those
# compiles are most of the time)


def mlp(key):
    return eqx.nn.MLP(64, "scalar", 32, 1, key=key)  # Linear(64, 32), Linear(32, "scalar")


def cnn(key):
    one, two = jax.random.split(key)
    return eqx.nn.Sequential([eqx.nn.Conv2d(8, 6, (3, 3), groups=2, key=one), eqx.nn.Lambda(jax.nn.relu),
                              eqx.nn.Lambda(jax.numpy.ravel), eqx.nn.Linear(64, 32, key=two)])


def rows(result) -> dict:
    return {r.layer: r for r in result}


def failed(result) -> set[str]:
    return {r.layer for r in result if r.verdict == "FAIL"}


def test_a_correct_cnn_passes():
    """(And the MLP's other parameters pass below, beside a planted bug.)"""
    result = initcheck.verify_model(cnn, **FAST)
    assert result.framework == "equinox" and len(result) == 4  # two layers' weight and bias
    assert result and not failed(result), str(result)


def test_a_tuple_of_modules_is_a_model():
    def parts(key):
        one, two = jax.random.split(key)
        return eqx.nn.Conv2d(8, 6, (3, 3), groups=2, key=one), eqx.nn.Linear(64, 32, key=two)

    result = initcheck.verify_model(parts, **FAST)
    assert result.framework == "equinox" and set(rows(result)) == {"0.weight", "0.bias", "1.weight", "1.bias"}
    assert result and not failed(result), str(result)


def test_a_factory_taking_key_is_equinox_whatever_else_its_file_imports():
    """``key`` is passed by the Equinox adapter only: a module that also
    imports Flax (whose adapter is tried first) still gets its key."""
    flax = pytest.importorskip("flax.nnx")  # noqa: F841 (imported: the Flax adapter becomes a candidate)
    from initcheck.model import _candidates

    assert _candidates(mlp)[0] == "equinox"


def test_a_layer_reinitialized_with_the_wrong_std_fails():
    def reinitialized(key):
        model, key = mlp(key), jax.random.fold_in(key, 1)
        weight = model.layers[1].weight
        return eqx.tree_at(lambda m: m.layers[1].weight, model, 0.1 * jax.random.normal(key, weight.shape))

    result = initcheck.verify_model(reinitialized, **FAST)
    assert len(result) == 4 and failed(result) == {"layers.1.weight"}  # the rest of the MLP passes
    assert "equinox.nn.Linear default" in rows(result)["layers.1.weight"].initializer


def test_a_copied_weight_is_a_duplicate():
    def copied(key):
        model = eqx.nn.Sequential([eqx.nn.Linear(64, 32, key=k) for k in jax.random.split(key, 3)])
        return eqx.tree_at(lambda m: m.layers[2].weight, model, model.layers[0].weight)

    result = initcheck.verify_model(copied, **FAST)
    assert "layers.2.weight" in failed(result)
    assert "a copy of layers.0.weight" in rows(result)["layers.2.weight"].check("duplicate").detail


def test_a_factory_that_ignores_its_key():
    result = initcheck.verify_model(lambda key: mlp(jax.random.PRNGKey(0)), **FAST)
    assert failed(result) == set(rows(result))
    # (the one-value bias holds too few random bits for the seed check; it fails its law's checks)
    assert all(r.reason.startswith("identical in instances 0 and 1") for r in result if r.layer != "layers.1.bias")
