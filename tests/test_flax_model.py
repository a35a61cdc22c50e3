"""The Flax NNX model adapter: paths, seeding through the factory's rngs or
seed, the default laws of flax's layers, and the values those layers really draw.

One small module (Embed, a list of Linear, a grouped Conv, LayerNorm) is built
once per module; the checks that need fresh instances build it again.
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
from initcheck.laws import TRUNCATION_CORRECTION, Constant, Normal, TruncatedNormal

pytestmark = pytest.mark.skipif(importlib.util.find_spec("flax") is None, reason="needs flax")


@pytest.fixture(scope="module")
def nnx():
    pytest.importorskip("flax")
    from initcheck.frameworks import flax_model

    return flax_model._nnx()


def test_importing_the_adapter_imports_no_framework():
    code = ("import sys; from initcheck.frameworks.flax_model import FlaxModels; "
            "assert not FlaxModels.accepts(object()); "
            "print([m for m in ('flax', 'jax') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture(scope="module")
def adapter(nnx):
    from initcheck.frameworks.flax_model import FlaxModels

    return FlaxModels()


def lecun(fan_in: int) -> TruncatedNormal:
    sigma = math.sqrt(1.0 / fan_in) / TRUNCATION_CORRECTION
    return TruncatedNormal(0.0, sigma, -2 * sigma, 2 * sigma)


def small_net(rngs):
    from flax import nnx

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.embed = nnx.Embed(1000, 16, rngs=rngs)
            self.layers = nnx.List([nnx.Linear(784, 256, rngs=rngs), nnx.Linear(256, 10, rngs=rngs)])
            self.conv = nnx.Conv(16, 8, (3, 3), feature_group_count=2, rngs=rngs)
            self.norm = nnx.LayerNorm(256, rngs=rngs)

    return Net(rngs)


@pytest.fixture(scope="module")
def model(adapter):
    return adapter.build(small_net, 0)


@pytest.fixture(scope="module")
def refs(adapter, model):
    return {ref.name: ref for ref in adapter.parameters(model)}


def test_parameters_are_named_by_graph_path(refs):
    assert sorted((r.name, r.shape, r.layer_type, r.attribute) for r in refs.values()) == [
        ("conv.bias", (8,), "Conv", "bias"),
        ("conv.kernel", (3, 3, 8, 8), "Conv", "kernel"),
        ("embed.embedding", (1000, 16), "Embed", "embedding"),
        ("layers.0.bias", (256,), "Linear", "bias"),
        ("layers.0.kernel", (784, 256), "Linear", "kernel"),
        ("layers.1.bias", (10,), "Linear", "bias"),
        ("layers.1.kernel", (256, 10), "Linear", "kernel"),
        ("norm.bias", (256,), "LayerNorm", "bias"),
        ("norm.scale", (256,), "LayerNorm", "scale"),
    ]
    assert all(r.dtype == "float32" and r.tied_to is None for r in refs.values())


def test_layer_defaults(adapter, model, refs):
    def law(name):
        found = adapter.default(model, refs[name])
        assert isinstance(found, Expectation), found
        return found

    kernel = law("layers.0.kernel")
    assert kernel.law == lecun(784)  # N(0, (1/28)/0.8796...) cut at ±2σ: variance exactly 1/784
    assert kernel.source == "flax Linear.kernel_init (lecun_normal, the default)"
    assert "fans 784, 256" in kernel.text
    assert law("layers.1.kernel").law == lecun(256)
    assert law("conv.kernel").law == lecun(3 * 3 * 16 // 2)  # (3, 3, in / groups, out)
    embedding = law("embed.embedding")
    assert embedding.law == Normal(0.0, 0.25)  # variance_scaling(1, fan_in, normal, out_axis=0): fan_in 16
    assert embedding.source == "flax Embed.embedding_init (default_embed_init, the default)"
    for name, value in {"layers.0.bias": 0.0, "layers.1.bias": 0.0, "conv.bias": 0.0, "norm.bias": 0.0,
                        "norm.scale": 1.0}.items():
        assert law(name).law == Constant(value), name


def test_fans_are_jax_own(nnx):
    from jax._src.nn.initializers import _compute_fans

    from initcheck.frameworks.flax_model import jax_fans

    for shape, in_axis, out_axis in [((5, 3), -2, -1), ((3, 3, 8, 16), -2, -1), ((1000, 16), -2, 0), ((1, 16), -2, 0)]:
        assert jax_fans(shape, in_axis, out_axis) == tuple(_compute_fans(shape, in_axis, out_axis))


def test_same_seed_same_values_other_seed_other_values(adapter, refs):
    ref = refs["layers.0.kernel"]
    one = adapter.values(adapter.build(small_net, 1), ref)
    again = adapter.values(adapter.build(small_net, 1), ref)
    other = adapter.values(adapter.build(small_net, 2), ref)
    assert isinstance(one, np.ndarray) and one.shape == (784, 256)
    assert np.array_equal(one, again)
    assert not np.array_equal(one, other)


def test_factories_taking_seed_or_rngs(adapter, nnx, refs):
    seen = []

    def by_seed(seed):
        seen.append(seed)
        return small_net(nnx.Rngs(seed))

    ref = refs["embed.embedding"]
    assert np.array_equal(adapter.values(adapter.build(by_seed, 4), ref),
                          adapter.values(adapter.build(small_net, 4), ref))
    assert seen == [4]

    with pytest.raises(InputError) as error:
        adapter.build(lambda: small_net(nnx.Rngs(0)), 0)
    message = str(error.value)
    assert "\n" not in message and "`seed`" in message and "`rngs`" in message


def test_what_is_not_nnx_is_handed_back_for_the_next_adapter(adapter):
    thing = object()
    assert adapter.build(lambda: thing, 0) is thing
    assert not adapter.accepts(thing)


def test_the_callers_state_is_left_as_it_was(adapter, nnx):
    original = nnx.Linear.__init__
    random.seed(5)
    np.random.seed(6)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    adapter.build(small_net, 3)
    assert random.getstate() == python_state
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])
    assert nnx.Linear.__init__ is original  # the recording wrapper is gone


def test_custom_and_changed_inits(adapter, nnx):
    import jax

    def factory(rngs):
        class Net(nnx.Module):
            def __init__(self, rngs):
                self.custom = nnx.Linear(8, 4, kernel_init=nnx.initializers.he_normal(),
                                         bias_init=nnx.initializers.ones_init(), rngs=rngs)
                self.norm = nnx.LayerNorm(4, rngs=rngs)
                self.norm.scale[...] = 2 * self.norm.scale[...]
                self.rms = nnx.RMSNorm(4, rngs=rngs)
                self.head = nnx.Param(jax.numpy.zeros((4, 2)))

        return Net(rngs)

    built = adapter.build(factory, 0)
    laws = {r.name: adapter.default(built, r) for r in adapter.parameters(built)}
    assert laws["custom.kernel"] == Unknown("Linear.kernel has a custom kernel_init; add a rule")
    assert laws["custom.bias"].law == Constant(1.0)
    assert laws["custom.bias"].source == "flax Linear.bias_init (ones, configured)"
    assert isinstance(laws["norm.scale"], Unknown) and "set again after LayerNorm.__init__" in laws["norm.scale"].reason
    assert laws["rms.scale"].law == Constant(1.0)
    assert laws["head"] == Unknown("no documented default for Net.head; add a rule")


def test_a_param_reached_twice_is_tied(adapter, nnx):
    def factory(rngs):
        class Tied(nnx.Module):
            def __init__(self, rngs):
                self.embed = nnx.Embed(50, 8, rngs=rngs)
                self.output = self.embed.embedding

        return Tied(rngs)

    built = adapter.build(factory, 0)
    assert [(r.name, r.tied_to) for r in adapter.parameters(built)] == [
        ("embed.embedding", None), ("output", "embed.embedding")]


def test_a_model_made_under_nnx_jit(adapter, nnx):
    """Modules that come out of a transform are not the objects __init__ ran on;
    every Linear the factory constructed had the default, so the default holds."""

    def factory(seed):
        @nnx.jit
        def make():
            return nnx.Linear(32, 16, rngs=nnx.Rngs(seed))

        return make()

    built = adapter.build(factory, 0)
    kernel = next(r for r in adapter.parameters(built) if r.name == "kernel")
    found = adapter.default(built, kernel)
    assert found.law == lecun(32) and "every Linear the factory constructed" in found.text


def test_drawn_parameters_follow_the_claimed_laws(adapter, nnx, refs):
    """The real parameters, one fresh instance per draw, against the law default() claims."""
    model = adapter.build(small_net, 0)

    def of(name):
        ref = refs[name]

        def draw(shape, seed):
            return adapter.values(adapter.build(small_net, seed), ref)

        return initcheck.Check(draw, adapter.default(model, ref).law, shape=ref.shape, layout="keras")

    def conv_net(rngs):
        return nnx.Conv(64, 64, (3, 3), feature_group_count=4, rngs=rngs)

    conv_model = adapter.build(conv_net, 0)
    conv = next(r for r in adapter.parameters(conv_model) if r.name == "kernel")
    conv_law = adapter.default(conv_model, conv).law
    assert conv_law == lecun(3 * 3 * 16)

    def conv_kernel(shape, seed):
        return adapter.values(adapter.build(conv_net, seed), conv)

    result = initcheck.verify_all([
        of("layers.0.kernel"),
        of("embed.embedding"),
        initcheck.Check(conv_kernel, conv_law, shape=conv.shape, layout="keras"),
    ], samples=200_000, seed=1)
    assert result.verdict == "PASS", str(result)
