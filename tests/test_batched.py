"""Small draws in batches (Plan.draw_batch): still the real initializer on the
real per-draw shape, seeded per batch, folded as consecutive draws, and no
change to the caller's process state (RNG, JAX flags, loggers)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from initcheck import frameworks as registry
from initcheck import sampling
from initcheck.errors import InputError
from initcheck.frameworks.base import Plan
from initcheck.frameworks.custom import custom_plan
from initcheck.frameworks.reference import law_plan
from initcheck.laws import Normal, Uniform
from initcheck.layers import Layer
from initcheck.schemes import InitSpec
from tests.helpers import check_rows, failed

SAMPLES = 200_000


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of 2^14 values, so that rows of a few 10^5 values take several."""
    monkeypatch.setattr(sampling, "BATCH_VALUES", 1 << 14)


def summaries_equal(a, b) -> bool:
    return (a.count == b.count and a.minimum == b.minimum and a.maximum == b.maximum
            and np.array_equal(a.sums, b.sums) and np.array_equal(a.hist, b.hist) and np.array_equal(a.pairs, b.pairs))


def sample(plan, samples=SAMPLES, seed=0):
    return sampling.sample_row(plan, samples, seed, sampling.Progress(samples, False), "test")[0]


# --------------------------------------------------------------------------- the sampler


class Recorder:
    """A NumPy plan that records its calls: draw(seed) and draw_batch(seed, count)."""

    def __init__(self, shape, batched=True):
        self.calls = []
        self.folds = []
        law = Normal(0.0, 1.0)
        size = math.prod(shape)

        def draw(seed):
            self.calls.append(("draw", seed, 1))
            return np.random.default_rng(seed).standard_normal(size).reshape(shape)

        def draw_batch(seed, count):
            self.calls.append(("batch", seed, count))
            return np.random.default_rng(seed).standard_normal(count * size).reshape((count, *shape))

        self.plan = Plan("synthetic", "recorder", law, tuple(shape), "cpu", "float64", draw,
                         draw_batch=draw_batch if batched else None)


def test_small_draws_come_in_batches_seeded_per_batch(small_batches, monkeypatch):
    recorder = Recorder((2, 5))
    folds = []
    original = sampling.reducer_for

    def spying_reducer(x, law, **options):
        reducer = original(x, law, **options)
        fold = reducer.fold

        def recording_fold(x, draws=None):
            folds.append((tuple(x.shape), draws))
            return fold(x, draws=draws)

        reducer.fold = recording_fold
        return reducer

    monkeypatch.setattr(sampling, "reducer_for", spying_reducer)
    summary = sample(recorder.plan, samples=100_003)
    per_batch = (1 << 14) // 10
    draws = math.ceil(100_003 / 10)
    counts = [per_batch] * (draws // per_batch) + [draws % per_batch]
    assert [c[2] for c in recorder.calls] == counts
    assert all(kind == "batch" for kind, _, _ in recorder.calls)
    assert [c[1] for c in recorder.calls] == [sampling.draw_seed(0, recorder.plan.key, b) for b in range(len(counts))]
    assert folds == [((count, 2, 5), count) for count in counts]
    assert summary.count == draws * 10


def test_large_draws_keep_one_call_per_draw(small_batches):
    recorder = Recorder((64, 64))  # 4096 values: 4 draws a batch, fewer than MIN_BATCH_DRAWS
    sample(recorder.plan, samples=50_000)
    assert {kind for kind, _, _ in recorder.calls} == {"draw"}
    assert [c[1] for c in recorder.calls] == [sampling.draw_seed(0, recorder.plan.key, i) for i in range(13)]


def test_batched_rows_are_reproducible_and_seeded(small_batches):
    plan = Recorder((3, 7)).plan
    assert summaries_equal(sample(plan), sample(plan))
    assert not summaries_equal(sample(plan, seed=0), sample(plan, seed=1))


def test_batched_fold_equals_folding_the_same_draws_one_by_one(small_batches):
    """What the batch holds is folded as its draws in order, pairs across draws included."""
    batched = Recorder((2, 5))
    summary = sample(batched.plan, samples=50_000)
    draws = [batch[i] for kind, seed, count in batched.calls
             for batch in [np.random.default_rng(seed).standard_normal(count * 10).reshape((count, 2, 5))]
             for i in range(count)]
    it = iter(draws)
    one_by_one = Plan("synthetic", "recorder", batched.plan.law, (2, 5), "cpu", "float64", lambda seed: next(it))
    expected = sample(one_by_one, samples=50_000)
    assert expected.count == summary.count
    assert np.allclose(expected.sums, summary.sums, rtol=1e-12)
    assert np.array_equal(expected.hist, summary.hist)
    assert np.allclose(expected.pairs, summary.pairs, rtol=1e-9)


def test_ctrl_c_during_a_batch_keeps_what_was_folded(small_batches):
    recorder = Recorder((2, 5))
    inner = recorder.plan.draw_batch
    calls = []

    def interrupted(seed, count):
        calls.append(count)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return inner(seed, count)

    recorder.plan.draw_batch = interrupted
    with pytest.raises(sampling.Interrupted) as stop:
        sample(recorder.plan)
    assert stop.value.summary.count == 2 * calls[0] * 10
    assert stop.value.dtype == "float64"


def test_reference_batches_are_the_law(small_batches):
    plan = law_plan("reference", Uniform(-1.0, 1.0), (2, 5), "float32")
    batch = plan.draw_batch(7, 33)
    assert batch.shape == (33, 2, 5) and batch.dtype == np.float32
    [result] = check_rows([plan], samples=SAMPLES)
    assert result.verdict == "PASS"


# --------------------------------------------------------------------------- PyTorch

torch = pytest.importorskip("torch")

TORCH_SPECS = [
    InitSpec("xavier", "normal"),
    InitSpec("xavier", "uniform"),
    InitSpec("kaiming", "normal", mode="fan_in", nonlinearity="relu"),
    InitSpec("kaiming", "uniform", mode="fan_out", nonlinearity="relu"),
    InitSpec("kaiming", "uniform", mode="fan_in", nonlinearity="leaky_relu", slope=0.2),
    InitSpec("kaiming", "normal", mode="fan_out", nonlinearity="tanh"),
    InitSpec("trunc-normal", std=0.02, low=-0.04, high=0.04),
    InitSpec("normal", std=0.5),
    InitSpec("uniform", low=-0.3, high=0.7),
]


@pytest.fixture(scope="module")
def torch_adapter():
    return registry.load("torch")


@pytest.fixture
def fans_seen(monkeypatch):
    """The shapes torch.nn.init reads its fans off (under vmap: the per-sample shape)."""
    seen = []
    original = torch.nn.init._calculate_fan_in_and_fan_out

    def spy(tensor):
        seen.append(tuple(tensor.shape))
        return original(tensor)

    monkeypatch.setattr(torch.nn.init, "_calculate_fan_in_and_fan_out", spy)
    return seen


def spec_id(spec):
    return f"{spec.scheme}-{spec.dist}-{spec.mode}-{spec.nonlinearity}"


@pytest.mark.parametrize("spec", TORCH_SPECS, ids=spec_id)
@pytest.mark.parametrize("shape", [(2, 5), (1, 1, 3, 3)])
def test_torch_batched_rows_pass_and_leave_the_global_rng_alone(torch_adapter, spec, shape, small_batches):
    plan = torch_adapter.plan(spec, Layer.from_shape(shape, "torch"), "cpu", "float32")
    assert plan.draw_batch is not None
    state = torch.get_rng_state()
    [result] = check_rows([plan], samples=SAMPLES)
    assert result.verdict == "PASS", result.reason
    assert torch.equal(state, torch.get_rng_state())


def test_torch_batches_read_the_layers_own_fans(torch_adapter, fans_seen):
    plan = torch_adapter.plan(InitSpec("xavier", "uniform"), Layer.from_shape((2, 5), "torch"), "cpu", "float32")
    batch = plan.draw_batch(1, 50_000)
    assert tuple(batch.shape) == (50_000, 2, 5)
    assert set(fans_seen) == {(2, 5)}
    bound = math.sqrt(6 / 7)
    assert bound * 0.999 < batch.abs().max().item() <= bound
    assert len({tuple(d.flatten().tolist()) for d in batch[:100]}) == 100  # every draw its own values

    fans_seen.clear()
    spec = InitSpec("kaiming", "uniform", mode="fan_in", nonlinearity="relu")
    plan = torch_adapter.plan(spec, Layer.from_shape((1, 1, 3, 3), "torch"), "cpu", "float32")
    batch = plan.draw_batch(1, 50_000)
    assert set(fans_seen) == {(1, 1, 3, 3)}
    bound = math.sqrt(3) * math.sqrt(2 / 9)  # fan_in 9
    assert bound * 0.999 < batch.abs().max().item() <= bound


def test_torch_batches_are_seeded_by_their_seed(torch_adapter):
    plan = torch_adapter.plan(InitSpec("xavier", "normal"), Layer.from_shape((2, 5), "torch"), "cpu", "float32")
    a, b, c = (plan.draw_batch(seed, 64).clone() for seed in (3, 3, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("dtype", ["float64", "bfloat16"])
def test_torch_batches_in_other_dtypes(torch_adapter, dtype):
    plan = torch_adapter.plan(InitSpec("xavier", "uniform"), Layer.from_shape((2, 5), "torch"), "cpu", dtype)
    batch = plan.draw_batch(1, 1000)
    assert str(batch.dtype) == f"torch.{dtype}" and tuple(batch.shape) == (1000, 2, 5)


def test_torch_planted_bug_is_still_caught_in_batches(torch_adapter, monkeypatch, small_batches):
    """Fans off by one (a classic) under vmap: the variance check sees it."""
    original = torch.nn.init._calculate_fan_in_and_fan_out

    def off_by_one(tensor):
        fan_in, fan_out = original(tensor)
        return fan_in + 1, fan_out

    monkeypatch.setattr(torch.nn.init, "_calculate_fan_in_and_fan_out", off_by_one)
    plan = torch_adapter.plan(InitSpec("xavier", "normal"), Layer.from_shape((2, 5), "torch"), "cpu", "float32")
    [result] = check_rows([plan], samples=SAMPLES)
    assert result.verdict == "FAIL" and "variance" in failed(result)


@pytest.mark.parametrize("shape", [(2, 5), (3, 2, 3, 3)])
def test_torch_layer_defaults_batched_with_the_full_n(torch_adapter, shape, fans_seen, small_batches):
    layer = Layer.from_shape(shape, "torch")
    rows = dict(torch_adapter.default_rows(layer, "cpu", "float32"))
    assert rows["bias"].samples is None  # the bias row gets the command's N
    state = torch.get_rng_state()
    results = check_rows([rows["weight"], rows["bias"]], samples=SAMPLES)
    assert torch.equal(state, torch.get_rng_state())
    assert [r.verdict for r in results] == ["PASS", "PASS"], [r.reason for r in results]
    assert all(r.summary.count >= SAMPLES for r in results)
    assert set(fans_seen) == {shape}  # the bias rule's fan_in read off a weight of the real shape
    bound = 1 / math.sqrt(layer.fan_in)
    bias = rows["bias"].draw_batch(5, 20_000)
    assert tuple(bias.shape) == (20_000, shape[0]) and bias.device.type == "cpu"
    assert bound * 0.999 < bias.abs().max().item() <= bound
    weight = rows["weight"].draw_batch(5, 1000)
    assert tuple(weight.shape) == (1000, *shape)
    assert bound * 0.99 < weight.abs().max().item() <= bound


def test_torch_layer_defaults_one_draw_at_a_time_leave_the_global_rng_alone(torch_adapter):
    rows = dict(torch_adapter.default_rows(Layer.dense(784, 256), "cpu", "float32"))
    state = torch.get_rng_state()
    weight, bias = rows["weight"].draw(11), rows["bias"].draw(11)
    assert tuple(weight.shape) == (256, 784) and tuple(bias.shape) == (256,)
    assert torch.equal(state, torch.get_rng_state())
    assert torch.equal(rows["weight"].draw(11), weight)


def test_torch_layer_default_planted_bug_is_caught(torch_adapter, monkeypatch, small_batches):
    """A bias drawn with twice the bound (the module's reset_parameters patched) fails."""
    original = torch.nn.init.uniform_

    def doubled(tensor, a=0.0, b=1.0, generator=None):
        return original(tensor, 2 * a, 2 * b, generator=generator)

    monkeypatch.setattr(torch.nn.init, "uniform_", doubled)
    rows = dict(torch_adapter.default_rows(Layer.from_shape((2, 5), "torch"), "cpu", "float32"))
    [result] = check_rows([rows["bias"]], samples=SAMPLES)
    assert result.verdict == "FAIL" and "support" in failed(result)


# --------------------------------------------------------------------------- JAX


@pytest.fixture(scope="module")
def jax_adapter():
    pytest.importorskip("jax")
    return registry.load("jax")


def test_jax_float64_rows_draw_float64_and_leave_x64_off(jax_adapter, small_batches):
    import jax

    layer = Layer.from_shape((2, 5), "torch")
    plans = [jax_adapter.plan(InitSpec("xavier", "normal"), layer, "cpu", dtype) for dtype in ("float32", "float64")]
    results = check_rows(plans, samples=SAMPLES)
    assert [r.verdict for r in results] == ["PASS", "PASS"], [r.reason for r in results]
    assert [r.dtype for r in results] == ["float32", "float64"]
    assert plans[1].draw_batch(1, 10).dtype == np.float64
    assert plans[1].draw(1).dtype == np.float64
    assert jax.config.jax_enable_x64 is False


def test_jax_adapter_leaves_the_loggers_alone(jax_adapter):
    logger = logging.getLogger("jax._src.xla_bridge")
    jax_adapter.plan(InitSpec("xavier", "uniform"), Layer.dense(4, 3), "cpu", "float32")
    jax_adapter.devices()
    assert logger.level == logging.NOTSET and not logger.filters


def test_jax_batches_one_compile_per_row(jax_adapter, small_batches):
    plan = jax_adapter.plan(InitSpec("xavier", "uniform"), Layer.from_shape((2, 5), "torch"), "cpu", "float32")
    summary = sample(plan, samples=50_005)
    assert summary.count == 50_010
    assert list(plan.draw_batch._compiled) == [(1 << 14) // 10]  # the short last batch reused it
    full, short = plan.draw_batch(9, 1638), plan.draw_batch(9, 5)
    assert short.shape == (5, 5, 2) and np.array_equal(np.asarray(full)[:5], np.asarray(short))
    fresh = jax_adapter.plan(InitSpec("xavier", "uniform"), Layer.from_shape((2, 5), "torch"), "cpu", "float32")
    assert np.array_equal(np.asarray(fresh.draw_batch(9, 5)), np.asarray(short))  # its own compile, same draws
    bound = math.sqrt(6 / 7)
    assert bound * 0.99 < float(np.abs(np.asarray(full)).max()) <= bound


def test_jax_draws_of_a_batch_differ(jax_adapter):
    plan = jax_adapter.plan(InitSpec("xavier", "normal"), Layer.from_shape((2, 5), "torch"), "cpu", "float32")
    batch = np.asarray(plan.draw_batch(3, 100))
    assert len({d.tobytes() for d in batch}) == 100
    assert np.array_equal(batch, np.asarray(plan.draw_batch(3, 100)))


# --------------------------------------------------------------------------- custom functions


def batched_normal(shape, seed, count=None):
    rng = np.random.default_rng(seed)
    if count is None:
        return rng.standard_normal(shape)
    return rng.standard_normal((count, *shape))


def test_custom_function_with_count_is_called_in_batches(small_batches):
    calls = []

    def init(shape, seed, count=None):
        calls.append(count)
        return batched_normal(shape, seed, count)

    plan = custom_plan(init, "mine.py:init", Normal(0.0, 1.0), (2, 5))
    assert plan.draw_batch is not None and plan.api == "mine.py:init(shape, seed, count)"
    [result] = check_rows([plan], samples=SAMPLES)
    assert result.verdict == "PASS"
    probe, *batches = calls  # planning calls it once as fn(shape, seed) to see what it returns
    assert probe is None and None not in batches and sum(batches) == SAMPLES // 10


def test_custom_function_without_count_is_called_per_draw():
    plan = custom_plan(lambda shape, seed: np.zeros(shape), "mine.py:init", Normal(0.0, 1.0), (2, 5))
    assert plan.draw_batch is None and plan.api == "mine.py:init(shape, seed)"


def test_custom_batch_of_the_wrong_shape_is_one_line():
    plan = custom_plan(lambda shape, seed, count=1: np.zeros(shape), "mine.py:init", Normal(0.0, 1.0), (2, 5))
    with pytest.raises(InputError) as error:
        plan.draw_batch(1, 8)
    message = str(error.value)
    assert "\n" not in message and "(8, 2, 5)" in message and "(2, 5)" in message and "count=8" in message


def test_custom_batch_of_identical_draws_fails(small_batches):
    """A batched function that repeats one draw K times: the consecutive-draw pairs see it."""
    def repeated(shape, seed, count=None):
        one = np.random.default_rng(seed).standard_normal(shape)
        return one if count is None else np.broadcast_to(one, (count, *shape)).copy()

    plan = custom_plan(repeated, "mine.py:repeated", Normal(0.0, 1.0), (2, 5))
    [result] = check_rows([plan], samples=SAMPLES)
    assert result.verdict == "FAIL" and "independence" in failed(result)


@pytest.mark.parametrize("spec, shape", [
    (InitSpec("xavier", "uniform"), (2, 5)),
    (InitSpec("kaiming", "uniform", mode="fan_out", nonlinearity="relu"), (1, 1, 3, 3)),
    (InitSpec("uniform", low=-0.3, high=0.7), (2, 5)),
    (InitSpec("xavier", "normal"), (4, 8)),  # 16 values or more: normal_ takes the same path either way
], ids=["xavier-uniform", "kaiming-uniform", "uniform", "xavier-normal"])
def test_torch_batch_is_bit_for_bit_the_per_draw_calls(torch_adapter, spec, shape):
    """On the CPU a vmapped batch is exactly ``count`` calls of the real initializer
    on tensors of the layer's shape, one after the other, from the same seeded generator."""
    from initcheck.frameworks.pytorch import _initializer

    plan = torch_adapter.plan(spec, Layer.from_shape(shape, "torch"), "cpu", "float32")
    batch = plan.draw_batch(123, 50).clone()
    function, kwargs = _initializer(spec)
    generator = torch.Generator().manual_seed(123)
    calls = torch.stack([function(torch.empty(shape), **kwargs, generator=generator) for _ in range(50)])
    assert torch.equal(batch, calls)


def test_torch_layer_default_batches_are_bit_for_bit_the_layers_own(torch_adapter):
    """The weight batch is what K nn.Linear(5, 2) build, one after the other, from
    the same global seed (the batch's biases come after its weights, so the
    layers are built without one); the bias batch is the bias rule's uniform_ calls."""
    rows = dict(torch_adapter.default_rows(Layer.from_shape((2, 5), "torch"), "cpu", "float32"))
    weights, biases = rows["weight"].draw_batch(9, 20).clone(), rows["bias"].draw_batch(9, 20).clone()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(9)
        built = torch.stack([torch.nn.Linear(5, 2, bias=False).weight.detach() for _ in range(20)])
        torch.manual_seed(9)
        bound = 1 / math.sqrt(5)
        drawn = torch.stack([torch.nn.init.uniform_(torch.empty(2), -bound, bound) for _ in range(20)])
    assert torch.equal(weights, built) and torch.equal(biases, drawn)


def test_flax_layer_defaults_batched_over_keys_of_init(jax_adapter, small_batches):
    """Where flax is installed: draw j of a kernel batch is the module's own init
    on keys[j]; float64 rows stay float64 without turning x64 on for the process."""
    pytest.importorskip("flax")
    import jax

    for dtype in ("float32", "float64"):
        rows = dict(jax_adapter.default_rows(Layer.from_shape((2, 5), "torch"), "cpu", dtype))
        batch = np.asarray(rows["kernel"].draw_batch(3, 40))
        assert batch.shape == (40, 5, 2) and batch.dtype == np.dtype(dtype)
        assert len({d.tobytes() for d in batch}) == 40
        results = check_rows([rows["kernel"], rows["bias"]], samples=SAMPLES)
        assert [r.verdict for r in results] == ["PASS", "PASS"], [r.reason for r in results]
    assert jax.config.jax_enable_x64 is False


def test_a_shape_free_initializer_vmap_refuses_is_one_real_call_on_the_batch(monkeypatch):
    """trunc_normal_'s law takes nothing from the shape: when vmap refuses it, the
    whole (count, *shape) batch is one call of the real function."""
    import torch

    from initcheck.frameworks.pytorch import PyTorch
    from initcheck.layers import Layer

    real, calls = torch.nn.init.trunc_normal_, []

    def counted(tensor, *args, **kwargs):
        calls.append(tuple(tensor.shape))
        return real(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.nn.init, "trunc_normal_", counted)
    spec = InitSpec("trunc-normal", std=0.02, low=-0.04, high=0.04)
    plan = PyTorch().plan(spec, Layer.from_shape((64,), vector=True), "cpu", "float32")
    batch = plan.draw_batch(7, 1000)
    assert tuple(batch.shape) == (1000, 64) and float(batch.abs().max()) <= 0.04
    assert calls[-1] == (1000, 64) and len(calls) <= 2  # a refused vmap try, then one call
