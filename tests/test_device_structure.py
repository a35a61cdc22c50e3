"""The structure statistics of the device reducers (torch, JAX, 16-bit torch),
run on CPU arrays: the same Structure as the host's StructureFolder for the
same draws; and the bounded previous-draw copy of the consecutive-draw pairs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from initcheck import kernels  # noqa: E402
from initcheck.laws import Normal, Uniform  # noqa: E402
from initcheck.reducers import HostReducer, PatternReducer  # noqa: E402
from initcheck.reducers.backends.device_structure import gram_keys  # noqa: E402
from initcheck.reducers.backends.torch_reducer import Batches, TorchReducer, TorchStructure, selection_hash  # noqa: E402
from initcheck.reducers.shapes import PAIR_PREFIX  # noqa: E402
from initcheck.structure import DRAW_SLOTS, ELEMENTS, MAX_COLUMNS, MAX_POSITIONS  # noqa: E402

LAW = Normal(0.1, 2.0)
UNSIGNED = {2: np.uint16, 4: np.uint32, 8: np.uint64}


@pytest.fixture(autouse=True)
def small_jax_batches(monkeypatch):
    """JAX batches of 2^17 values: padded batches of 2^23 take long on a CPU."""
    try:
        from initcheck.reducers.backends.jax_reducer import JaxReducer
    except ImportError:
        return
    monkeypatch.setattr(JaxReducer, "batch_values", 1 << 17)


def jax_modules():
    jax = pytest.importorskip("jax")
    from initcheck.reducers.backends.jax_reducer import JaxReducer

    return jax, JaxReducer


def to_jax(arrays):
    """JAX arrays of the host arrays, float64 kept as float64."""
    jax, _ = jax_modules()
    with jax.enable_x64(True):
        out = [jax.numpy.asarray(x) for x in arrays]
    assert all(a.dtype == x.dtype for a, x in zip(out, arrays))
    return out


def normal_draws(shape, count, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(LAW.mean, 2.0, shape).astype(dtype) for _ in range(count)]


def assert_same_structure(a, b):
    """Two Structures equal: shapes, axes' names, sizes and edges, counts and
    grams exactly; sums to float64 rounding."""
    assert a is not None and b is not None
    assert tuple(a.shape) == tuple(b.shape)
    assert [(x.name, x.size) for x in a.axes] == [(y.name, y.size) for y in b.axes]
    for x, y in zip(a.axes, b.axes):
        np.testing.assert_array_equal(x.edges, y.edges, err_msg=x.name)
        np.testing.assert_array_equal(x.count, y.count, err_msg=x.name)
        scale = float(np.abs(x.s2).max(initial=1.0))
        np.testing.assert_allclose(x.s1, y.s1, rtol=1e-9, atol=1e-10 * scale, err_msg=x.name)
        np.testing.assert_allclose(x.s2, y.s2, rtol=1e-9, err_msg=x.name)
    assert (a.draws is None) == (b.draws is None)
    if a.draws is not None:
        for f in dataclasses.fields(a.draws):
            u, v = getattr(a.draws, f.name), getattr(b.draws, f.name)
            if isinstance(u, (int, np.integer)):
                assert u == v, f.name
            elif u is None or v is None:
                assert u is None and v is None, f.name
            else:
                np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-9 * max(1.0, abs(a.draws.s2)), err_msg=f.name)
    assert (a.grams is None) == (b.grams is None)
    if a.grams is not None:
        for f in dataclasses.fields(a.grams):
            u, v = getattr(a.grams, f.name), getattr(b.grams, f.name)
            if isinstance(u, np.ndarray):  # examples: the same pairs, in whatever order they were found
                assert sorted(map(tuple, u.tolist())) == sorted(map(tuple, v.tolist())), f.name
            else:
                assert u == v, f.name


def host_structure(arrays, expected):
    host = HostReducer(LAW, expected_values=expected)
    for x in arrays:
        host.fold(x)
    return host.summary().structure


def torch_structure(arrays, expected, **fold):
    device = TorchReducer(LAW, "cpu", expected_values=expected)
    for x in arrays:
        device.fold(torch.from_numpy(x), **fold)
    return device.summary().structure


def jax_structure(arrays, expected, **fold):
    _, JaxReducer = jax_modules()
    device = JaxReducer(LAW, expected_values=expected)
    for x in to_jax(arrays):
        device.fold(x, **fold)
    return device.summary().structure


SHAPES = [
    ((256, 784), 3),  # rows and columns
    ((5, 2), 60),  # small: per element
    ((64, 3, 3, 3), 5),  # a conv kernel: per element, four axes
    ((300,), 9),  # a bias
    ((40000,), 3),  # a long vector: blocks
    ((100_003,), 2),  # blocks, the last one short
    ((70_000, 2), 2),  # more rows than MAX_POSITIONS: grouped rows
]


@pytest.mark.parametrize("shape,count", SHAPES + [pytest.param((3, 1_100_000), 2, marks=pytest.mark.calibration)],
                         ids=str)
def test_the_torch_structure_is_the_hosts(shape, count):
    arrays = normal_draws(shape, count)
    arrays.append(arrays[0].copy())  # a repeated draw: repeats to find
    expected = sum(x.size for x in arrays)
    a, b = host_structure(arrays, expected), torch_structure(arrays, expected)
    assert_same_structure(a, b)
    assert b.grams.repeats > 0


@pytest.mark.parametrize("shape,count", [((256, 784), 2), ((5, 2), 30), ((40000,), 3)], ids=str)
def test_the_torch_structure_of_float64_draws_is_the_hosts(shape, count):
    arrays = normal_draws(shape, count, np.float64)
    expected = sum(x.size for x in arrays)
    a, b = host_structure(arrays, expected), torch_structure(arrays, expected)
    assert_same_structure(a, b)
    assert b.grams.k == 2


#: The layouts the torch test covers in full are device_structure.py's, shared
#: by both backends; JAX's own ops need two of them in `make test`, and get
#: the rest in `make calibrate` (each shape is a fresh XLA compilation).
JAX_SHAPES = [case if case[0] in ((256, 784), (64, 3, 3, 3))
              else pytest.param(*case, marks=pytest.mark.calibration) for case in SHAPES]


@pytest.mark.parametrize("shape,count", JAX_SHAPES, ids=str)
def test_the_jax_structure_is_the_hosts(shape, count):
    arrays = normal_draws(shape, count)
    arrays.append(arrays[0].copy())
    expected = sum(x.size for x in arrays)
    assert_same_structure(host_structure(arrays, expected), jax_structure(arrays, expected))


def test_the_jax_structure_of_float64_draws_is_the_hosts(monkeypatch):
    _, JaxReducer = jax_modules()
    monkeypatch.setattr(JaxReducer, "batch_values", 1 << 12)
    arrays = normal_draws((5, 2), 40, np.float64)
    assert_same_structure(host_structure(arrays, 400), jax_structure(arrays, 400))


def batch_of_small_draws(count=9000, shape=(5, 2), nan_at=(1234,)):
    x = np.random.default_rng(4).normal(LAW.mean, 2.0, (count, *shape)).astype(np.float32)
    for i in nan_at:
        x[i].flat[3] = np.nan
    return x


@pytest.mark.parametrize("values", [1 << 23, 2000], ids=["one-batch", "many-batches"])
def test_torch_batches_give_the_structure_of_single_folds(values, monkeypatch):
    """More draws than DRAW_SLOTS (the slots pair up), a NaN draw among them:
    fold(x, draws=K) gives what K single folds give, on the device as on the
    host; a draw with a NaN adds nothing."""
    monkeypatch.setattr(Batches, "values", values)
    x = batch_of_small_draws()
    expected = x.size
    single = torch_structure(list(x), expected)
    batched = torch_structure([x], expected, draws=len(x))
    assert_same_structure(single, batched)
    clean = [d for d in x if np.isfinite(d).all()]
    assert_same_structure(host_structure(clean, expected), batched)
    assert batched.draws.draws == len(x) - 1
    assert batched.axes[-1].name == "draws" and len(batched.axes[-1].count) <= DRAW_SLOTS


@pytest.mark.parametrize("batch_values", [1 << 16, pytest.param(2000, marks=pytest.mark.calibration)],
                         ids=["one-batch", "many-batches"])
def test_jax_batches_give_the_structure_of_single_folds(batch_values, monkeypatch):
    _, JaxReducer = jax_modules()
    monkeypatch.setattr(JaxReducer, "batch_values", batch_values)
    x = batch_of_small_draws(count=6000, nan_at=(17, 4001))
    batched = jax_structure([x], x.size, draws=len(x))
    clean = [d for d in x if np.isfinite(d).all()]
    assert_same_structure(host_structure(clean, x.size), batched)
    assert batched.draws.draws == len(x) - 2


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_draws_with_nan_or_inf_add_nothing_to_the_structure(backend):
    arrays = normal_draws((256, 784), 4) + normal_draws((256, 784), 2, seed=1)
    arrays[1][7, 7] = np.nan
    arrays[4][0, 0] = -np.inf
    clean = [x for x in arrays if np.isfinite(x).all()]
    expected = sum(x.size for x in arrays)
    device = torch_structure(arrays, expected) if backend == "torch" else jax_structure(arrays, expected)
    assert_same_structure(host_structure(clean, expected), device)
    assert device.draws.draws == 4


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_repeated_draw_gives_repeats_and_fresh_draws_none(backend):
    fold = torch_structure if backend == "torch" else jax_structure
    fresh = normal_draws((64, 3, 3, 3), 6)
    repeated = fresh[:3] + [fresh[1].copy()] + fresh[3:]
    a, b = fold(fresh, 10_000), fold(repeated, 12_000)
    assert a.grams.repeats == 0
    # every gram of the copy repeats one of the original: as many as the copy's selected grams
    assert b.grams.repeats >= 0.9 * 1728 * b.grams.rate
    assert_same_structure(host_structure(repeated, 12_000), b)


@pytest.mark.parametrize("backend", ["torch", pytest.param("jax", marks=pytest.mark.calibration)])
def test_a_batch_selecting_more_than_four_stores_halves_the_rate_as_the_host(backend, monkeypatch):
    """No expected size: the rate starts at 1, and a draw of 2^20 values selects
    more grams than four stores hold; the device halves the rate before keeping
    any, as GramStore.select does (JAX: a second, exact pass)."""
    if backend == "jax":
        _, JaxReducer = jax_modules()
        monkeypatch.setattr(JaxReducer, "batch_values", 1 << 20)
    arrays = normal_draws((1024, 1024), 2)
    device = torch_structure(arrays, None) if backend == "torch" else jax_structure(arrays, None)
    assert_same_structure(host_structure(arrays, None), device)
    assert device.grams.threshold < 1 << 31


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("shape,count", [((256, 784), 2), ((5, 2), 40), ((20000,), 3)], ids=str)
def test_the_16_bit_device_structure_is_the_hosts(dtype, shape, count, monkeypatch):
    monkeypatch.setattr(Batches, "values", 1 << 16)  # staged and direct batches
    law = Uniform(-0.1, 0.1)
    generator = torch.Generator().manual_seed(1)
    draws = [torch.empty(shape).uniform_(-0.1, 0.1, generator=generator).to(getattr(torch, dtype))
             for _ in range(count)]
    draws.append(draws[1].clone())
    draws[0].view(-1)[3] = float("nan")
    expected = sum(x.numel() for x in draws)
    host, device = PatternReducer(law, dtype, expected_values=expected), PatternReducer(
        law, dtype, device="cpu", expected_values=expected)
    for x in draws:
        host.fold(x)
        device.fold(x)
    a, b = host.summary().structure, device.summary().structure
    assert_same_structure(a, b)
    assert b.grams.k == 8 and b.draws.draws == count


def kernel_grams(u: np.ndarray, k: int = 1):
    """Every gram of u (threshold 2^32) by the host kernel: (pos, key, single, hash)."""
    out = [np.empty(len(u), t) for t in (np.int64, np.uint64, np.uint64, np.uint32)]
    found = kernels.grams(u, k, 1 << 32, 0, *out)
    assert found == len(u) - k + 1
    return [a[:found] for a in out]


def special_values(dtype):
    x = np.random.default_rng(2).normal(0.0, 0.05, 5000).astype(dtype)
    x[:4] = [0.0, -0.0, np.inf, -np.inf]
    x[4] = np.nan
    x[5:9] = np.finfo(dtype).tiny / 3  # subnormal
    x[9] = -x[10]
    return x


@pytest.mark.parametrize("dtype,itemsize", [(np.float32, 4), (np.float64, 8), ("bfloat16", 2), (np.float16, 2)])
def test_the_device_selection_hash_is_the_kernels(dtype, itemsize):
    if dtype == "bfloat16":
        t = torch.from_numpy(special_values(np.float32)).to(torch.bfloat16)
    else:
        t = torch.from_numpy(special_values(dtype))
    bits = t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[itemsize])
    u = bits.numpy().view(UNSIGNED[itemsize])
    expected = kernel_grams(u)[3]
    np.testing.assert_array_equal(selection_hash(bits, itemsize).numpy().astype(np.uint32), expected)
    if itemsize != 2:  # JAX's stream (16-bit JAX rows are counted on the host)
        jax, _ = jax_modules()
        from initcheck.reducers.backends.jax_reducer import _selected

        with jax.enable_x64(True):
            s = jax.numpy.asarray(u)
            found, first, hashes, _ = _selected(s, len(u), 1 << 32, 1, itemsize, len(u))
            assert int(found) == len(u)
            np.testing.assert_array_equal(np.asarray(first), np.arange(len(u)))
            np.testing.assert_array_equal(np.asarray(hashes).astype(np.uint32), expected)


@pytest.mark.parametrize("itemsize", [2, 4, 8])
def test_gram_keys_are_the_kernels(itemsize):
    from initcheck.structure import gram_length

    k = gram_length(itemsize)
    u = np.random.default_rng(3).integers(0, 1 << 63, 3000, dtype=np.uint64, endpoint=False)
    u = (u >> np.uint64(64 - 8 * itemsize)).astype(UNSIGNED[itemsize]) if itemsize < 8 else u
    pos, key, single, _ = kernel_grams(u, k)
    windows = np.lib.stride_tricks.sliding_window_view(u, k)
    got_key, got_single, s0 = gram_keys(windows)
    np.testing.assert_array_equal(got_key, key)
    np.testing.assert_array_equal(got_single, single)
    np.testing.assert_array_equal(s0, pos & 1)


@pytest.mark.parametrize("shape", [(70_000, 2), (3, 1_100_000), (100_003,), (256, 784), (5, 2)], ids=str)
def test_the_device_keeps_bounded_sums(shape):
    """Per-element sums only for small draws; else per row (at most
    MAX_POSITIONS groups), per element of a row (at most MAX_COLUMNS) and the
    first ELEMENTS values."""
    n = int(np.prod(shape))
    structure = TorchStructure(0.0, "cpu")
    structure.fold(torch.zeros(1, n), shape)
    sizes = {name: t.numel() for name, t in structure._sums.items()}
    assert max(sizes.values()) <= max(MAX_COLUMNS, MAX_POSITIONS, ELEMENTS, DRAW_SLOTS + 1)
    if n <= ELEMENTS:
        assert sizes["e1"] == n
    else:
        assert "e1" not in sizes and sizes["p1"] == ELEMENTS and sizes["g1"] <= max(MAX_POSITIONS, ELEMENTS + 1)
        assert sizes.get("c1", 0) == (n // shape[0] if len(shape) > 1 and n // shape[0] <= MAX_COLUMNS else 0)


@pytest.mark.parametrize("backend", ["torch", pytest.param("jax", marks=pytest.mark.calibration)])
def test_a_row_whose_draws_change_shape_keeps_no_structure(backend):
    """As on the host; a NaN draw of another shape changes nothing."""
    first, other = normal_draws((256, 784), 2), normal_draws((100, 130), 2, seed=1)
    spoiled = normal_draws((7, 7), 1, seed=2)
    spoiled[0][0, 0] = np.nan
    fold = torch_structure if backend == "torch" else jax_structure
    assert host_structure(first + other, 10**6) is None
    assert fold(first + other, 10**6) is None
    assert_same_structure(host_structure(first + spoiled, 10**6), fold(first + spoiled, 10**6))


def test_reducer_for_gives_the_device_reducers_the_expected_values(monkeypatch):
    import initcheck.reducers as reducers

    monkeypatch.setattr(reducers, "on_accelerator", lambda sample: True)
    reducer = reducers.reducer_for(torch.zeros(3, 3), LAW, expected_values=12345)
    assert isinstance(reducer, TorchReducer) and reducer._structure._expected == 12345
    jax, JaxReducer = jax_modules()
    reducer = reducers.reducer_for(jax.numpy.zeros((3, 3)), LAW, expected_values=54321)
    assert isinstance(reducer, JaxReducer) and reducer._structure._expected == 54321


# --------------------------------------------------------------------------- the consecutive-draw pairs


def prefix_pairs(arrays, ref):
    """Row 2 of the pairs, by NumPy: consecutive draws' first PAIR_PREFIX positions."""
    d = [np.asarray(x, dtype=np.float64).reshape(-1)[:PAIR_PREFIX] - ref for x in arrays]
    return np.array([sum(float(a @ b) for a, b in zip(d, d[1:])), sum(float(a.sum()) for a in d[:-1]),
                     sum(float(b.sum()) for b in d[1:]), sum(len(a) for a in d[:-1])])


LARGE = (1536, 1024)  # 1.5 * 2^20 values


def test_torch_pairs_of_large_consecutive_draws_take_their_first_positions(monkeypatch):
    """Within a batch and across batches (staged two draws a batch)."""
    monkeypatch.setattr(Batches, "values", 1 << 22)
    arrays = normal_draws(LARGE, 3)
    device = TorchReducer(LAW, "cpu")
    for x in arrays:
        device.fold(torch.from_numpy(x))
    pairs = device.summary().pairs
    assert pairs[2, 3] == 2 * PAIR_PREFIX
    np.testing.assert_allclose(pairs[2], prefix_pairs(arrays, LAW.mean), rtol=1e-9)
    assert device._pairs._previous.numel() == PAIR_PREFIX


def test_torch_pairs_of_a_batch_of_large_draws_take_their_first_positions():
    x = np.stack(normal_draws(LARGE, 3))
    device = TorchReducer(LAW, "cpu")
    device.fold(torch.from_numpy(x), draws=3)
    device.fold(torch.from_numpy(x[0]))
    pairs = device.summary().pairs
    assert pairs[2, 3] == 3 * PAIR_PREFIX
    np.testing.assert_allclose(pairs[2], prefix_pairs([*x, x[0]], LAW.mean), rtol=1e-9)


@pytest.mark.calibration  # (the torch twin above runs in make test; JAX's compilations take seconds)
def test_jax_pairs_of_large_consecutive_draws_take_their_first_positions(monkeypatch):
    """Within a batch and across batches (two draws a batch, the last padded)."""
    _, JaxReducer = jax_modules()
    monkeypatch.setattr(JaxReducer, "batch_values", 1 << 21)
    arrays = normal_draws(LARGE, 3)
    device = JaxReducer(LAW)
    for x in to_jax(arrays):
        device.fold(x)
    pairs = device.summary().pairs
    assert pairs[2, 3] == 2 * PAIR_PREFIX
    np.testing.assert_allclose(pairs[2], prefix_pairs(arrays, LAW.mean), rtol=1e-9)
    assert device._state["previous"].shape == (PAIR_PREFIX,)


def test_16_bit_device_pairs_of_large_draws_take_their_first_positions():
    law = Uniform(-0.1, 0.1)
    generator = torch.Generator().manual_seed(5)
    draws = [torch.empty(LARGE).uniform_(-0.1, 0.1, generator=generator).to(torch.bfloat16) for _ in range(3)]
    device = PatternReducer(law, "bfloat16", device="cpu")
    for x in draws:
        device.fold(x)
    pairs = device.summary().pairs
    assert pairs[2, 3] == 2 * PAIR_PREFIX
    np.testing.assert_allclose(pairs[2], prefix_pairs([x.float().numpy() for x in draws], law.mean), rtol=1e-9)


# --------------------------------------------------------------------------- large draws, in parts


@pytest.fixture
def small_parts(monkeypatch):
    """Device parts of 5000 values; consecutive draws pair their first 3000
    positions, on the host and on the devices alike."""
    import initcheck.reducers.host as host
    from initcheck.reducers.backends import torch_reducer

    modules = [host, torch_reducer]
    try:
        from initcheck.reducers.backends import jax_reducer
    except ImportError:
        pass
    else:
        modules.append(jax_reducer)
        monkeypatch.setattr(jax_reducer, "PART", 5000)
    monkeypatch.setattr(torch_reducer, "PART", 5000)
    for module in modules:
        monkeypatch.setattr(module, "PAIR_PREFIX", 3000)


def large_draws(shape):
    """Draws of more values than a part: a NaN draw in the middle, a repeated one at the end."""
    arrays = normal_draws(shape, 3, seed=7)
    arrays[1].flat[777] = np.nan
    arrays.append(arrays[0].copy())
    return arrays


def assert_same_summary(a, b):
    assert (a.count, a.nan, a.posinf, a.neginf) == (b.count, b.nan, b.posinf, b.neginf)
    assert (a.minimum, a.maximum) == (b.minimum, b.maximum)
    np.testing.assert_allclose(a.sums, b.sums, rtol=1e-9, atol=1e-8)
    np.testing.assert_array_equal(a.hist, b.hist)
    np.testing.assert_allclose(a.pairs, b.pairs, rtol=1e-9, atol=1e-8)
    assert_same_structure(a.structure, b.structure)


def device_summary(backend, arrays, expected, **fold):
    if backend == "torch":
        device = TorchReducer(LAW, "cpu", expected_values=expected)
        arrays = [torch.from_numpy(x) for x in arrays]
    else:
        _, JaxReducer = jax_modules()
        device = JaxReducer(LAW, expected_values=expected)
        arrays = to_jax(arrays)
    for x in arrays:
        device.fold(x, **fold)
    return device.summary()


PART_CASES = [(backend, shape, batched)
              for shape, batched in [((300, 70), False), ((300, 70), True), ((23456,), False),
                                     ((64, 3, 30, 30), False)]
              for backend in ("torch", "jax")]
#: JAX on one of the shapes in `make test` (the parts logic is shared), all four in `make calibrate`.
PART_CASES = [case if case[0] == "torch" or case[1:] == ((300, 70), True)
              else pytest.param(*case, marks=pytest.mark.calibration) for case in PART_CASES]


@pytest.mark.parametrize("backend,shape,batched", PART_CASES, ids=str)
def test_a_large_draw_folds_in_parts_as_the_host_folds_it_whole(backend, shape, batched, small_parts):
    """Moments, cells, pairs (within the draw, across part boundaries, with the
    previous draw) and structure as the host's; the NaN draw adds no pairs and
    no structure, and is no one's neighbour."""
    arrays = large_draws(shape)
    expected = sum(x.size for x in arrays)
    host = HostReducer(LAW, expected_values=expected)
    for x in arrays:
        host.fold(x)
    fold = {"draws": len(arrays)} if batched else {}
    device = device_summary(backend, [np.stack(arrays)] if batched else arrays, expected, **fold)
    a = host.summary()
    assert_same_summary(a, device)
    assert a.nan == 1 and device.pairs[2, 3] == 3000  # the last two draws' first positions
    assert device.structure.draws.draws == 3 and device.structure.grams.repeats > 0


def test_a_large_16_bit_device_draw_folds_in_parts_as_the_host_folds_it(small_parts):
    law = Uniform(-0.1, 0.1)
    generator = torch.Generator().manual_seed(3)
    draws = [torch.empty(300, 70).uniform_(-0.1, 0.1, generator=generator).to(torch.bfloat16) for _ in range(3)]
    draws[1][5, 5] = float("nan")
    draws.append(draws[0].clone())
    host, device = PatternReducer(law, "bfloat16", expected_values=84000), PatternReducer(
        law, "bfloat16", device="cpu", expected_values=84000)
    for x in draws:
        host.fold(x)
        device.fold(x)
    a, b = host.summary(), device.summary()
    np.testing.assert_allclose(a.pairs, b.pairs, rtol=1e-9, atol=1e-8)
    assert b.pairs[2, 3] == 3000
    assert_same_structure(a.structure, b.structure)
    assert b.structure.draws.draws == 3


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_large_draw_is_folded_a_part_at_a_time(backend, small_parts, monkeypatch):
    """Whole rows of about a part each: 4970 values of a (300, 70) draw, then what is left."""
    seen = []
    if backend == "torch":
        original = TorchReducer._fold_part

        def spy(self, part):
            seen.append(part.shape)
            return original(self, part)

        monkeypatch.setattr(TorchReducer, "_fold_part", spy)
    else:
        jax_modules()
        from initcheck.reducers.backends import jax_reducer

        factory = jax_reducer._part_step

        def spy_factory(*args):
            step = factory(*args)

            def spy(state, sums, draw, part, *rest, **statics):
                seen.append(part.shape)
                return step(state, sums, draw, part, *rest, **statics)

            return spy

        monkeypatch.setattr(jax_reducer, "_part_step", spy_factory)
    x = normal_draws((300, 70), 1)
    device_summary(backend, x, 21000)
    assert seen == [(4970,)] * 4 + [(1120,)]
