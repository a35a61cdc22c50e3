"""The streaming statistics: the C kernel, the torch (device) reducer, merging."""

import math

import numpy as np
import pytest
import torch

from initcheck import kernels
from initcheck.reducers.backends.torch_reducer import TorchReducer
from initcheck.laws import Normal, Uniform
from initcheck.reducers import HostReducer, lag_of_rows, reducer_for
from initcheck.grid import Grid
from initcheck.summary import Summary

LAW = Normal(0.1, 2.0)
GRID = Grid.for_law(LAW, cells=1024, segments=64)


def draws(dtype, count=3, size=10_001, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        x = rng.normal(LAW.mu, LAW.sigma, size).astype(dtype)
        x[::997] = 50.0  # beyond the grid on the right
        x[1::991] = -40.0  # and on the left
        out.append(x)
    return out


def exact_statistics(arrays, law, grid):
    x = np.concatenate(arrays).astype(np.float64)
    x = x[np.isfinite(x)]
    d = x - law.mean
    return {
        "sums": [d.sum(), (d**2).sum(), (d**3).sum(), (d**4).sum()],
        "min": x.min(),
        "max": x.max(),
        "hist": np.bincount(grid.cell_of(x), minlength=grid.cells + 2),
        "count": x.size,
    }


def assert_matches(summary: Summary, expected):
    assert summary.count == expected["count"]
    np.testing.assert_allclose(summary.sums, expected["sums"], rtol=1e-9, atol=1e-9)
    assert summary.minimum == expected["min"] and summary.maximum == expected["max"]
    np.testing.assert_array_equal(summary.hist, expected["hist"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_host_kernel_matches_numpy(dtype):
    arrays = draws(dtype)
    reducer = HostReducer(LAW, GRID)
    for x in arrays:
        reducer.fold(x.reshape(73, 137))
    assert_matches(reducer.summary(), exact_statistics(arrays, LAW, GRID))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_reducer_matches_host(dtype):
    """The device reducer, run on CPU tensors, must agree with the C kernel."""
    arrays = draws(dtype)
    arrays[1][7] = np.nan
    arrays[1][8] = -np.inf
    arrays[2][9] = np.inf
    host, device = HostReducer(LAW, GRID), TorchReducer(LAW, "cpu", GRID)
    for x in arrays:
        host.fold(x)
        device.fold(torch.from_numpy(x))
    a, b = host.summary(), device.summary()
    assert (a.count, a.nan, a.posinf, a.neginf) == (b.count, b.nan, b.posinf, b.neginf) == (a.count, 1, 1, 1)
    np.testing.assert_allclose(a.pairs, b.pairs, rtol=1e-9)
    np.testing.assert_allclose(a.sums, b.sums, rtol=1e-9)
    assert (a.minimum, a.maximum) == (b.minimum, b.maximum)
    np.testing.assert_array_equal(a.hist, b.hist)
    assert_matches(a, exact_statistics(arrays, LAW, GRID))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_reducer_matches_host_on_a_linear_grid(dtype):
    """A uniform law's grid is where the C kernel reads no table; the torch rule
    (and the JAX one, which is the same formula) must still give its cells."""
    law = Uniform(-0.0759, 0.0759)
    grid = Grid.for_law(law)
    rng = np.random.default_rng(11)
    edges = grid.edges()
    x = np.concatenate([rng.uniform(-0.08, 0.08, 200_000), edges, np.nextafter(edges, -1.0)]).astype(dtype)
    host, device = HostReducer(law, grid), TorchReducer(law, "cpu", grid)
    host.fold(x)
    device.fold(torch.from_numpy(x))
    a, b = host.summary(), device.summary()
    np.testing.assert_array_equal(a.hist, b.hist)
    np.testing.assert_array_equal(a.hist, np.bincount(grid.cell_of(x), minlength=grid.cells + 2))
    assert (a.minimum, a.maximum) == (b.minimum, b.maximum)


def test_nonfinite_values_are_counted_and_left_out():
    x = np.array([1.0, np.nan, np.inf, -np.inf, -np.inf, 2.0], dtype=np.float32)
    reducer = HostReducer(LAW, GRID)
    reducer.fold(x)
    s = reducer.summary()
    assert (s.count, s.nan, s.posinf, s.neginf, s.total) == (2, 1, 1, 2, 6)
    assert s.minimum == 1.0 and s.maximum == 2.0
    assert s.hist.sum() == 2


def test_bounds_land_in_the_right_cells():
    law = Uniform(-1.0, 1.0)
    x = np.array([-1.0, np.nextafter(-1.0, -2.0), 1.0, 1.0 - 1e-9, 0.0])
    reducer = HostReducer(law, Grid.for_law(law, cells=4, segments=8))
    reducer.fold(x)
    # cells: (-inf,-1) [-1,-.5) [-.5,0) [0,.5) [.5,1) [1,inf)
    assert reducer.summary().hist.tolist() == [1, 1, 0, 1, 1, 1]


def test_merge_is_the_summary_of_the_union():
    arrays = draws(np.float64, count=4)
    whole, first, second = (HostReducer(LAW, GRID) for _ in range(3))
    for i, x in enumerate(arrays):
        whole.fold(x)
        (first if i < 2 else second).fold(x)
    merged = first.summary().merge(second.summary())
    w = whole.summary()
    assert merged.count == w.count and merged.minimum == w.minimum and merged.maximum == w.maximum
    np.testing.assert_allclose(merged.sums, w.sums, rtol=1e-12)
    np.testing.assert_array_equal(merged.hist, w.hist)


def test_moments_from_power_sums():
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 1.5, 100_000)  # skewed, so m3 and m4 are informative
    reducer = HostReducer(Normal(3.0, 2.0))
    reducer.fold(x)
    s = reducer.summary()
    d = x - x.mean()
    assert s.mean == pytest.approx(x.mean(), rel=1e-12)
    assert s.variance == pytest.approx(x.var(ddof=1), rel=1e-10)
    assert s.central_moment(3) == pytest.approx((d**3).mean(), rel=1e-8)
    assert s.central_moment(4) == pytest.approx((d**4).mean(), rel=1e-8)


def test_reducer_for_picks_the_host_for_cpu_arrays():
    assert isinstance(reducer_for(np.zeros(3), LAW), HostReducer)
    assert isinstance(reducer_for(torch.zeros(3), LAW), HostReducer)


def test_host_reducer_accepts_integers_and_noncontiguous_arrays():
    reducer = HostReducer(LAW, GRID)
    reducer.fold(np.arange(10, dtype=np.int32))
    reducer.fold(np.arange(20, dtype=np.float32)[::2])
    s = reducer.summary()
    assert s.count == 20 and s.maximum == 18.0
    assert math.isclose(s.mean, (45 + 90) / 20)


def test_int32_cells_are_flushed_before_they_can_overflow(monkeypatch):
    """The kernel counts in int32; the reducer must move counts to int64 in time."""
    monkeypatch.setattr(HostReducer, "flush_every", 1000)
    arrays = draws(np.float32, count=5, size=2_500)  # each draw is split, and flushes happen between draws
    reducer = HostReducer(LAW, GRID)
    for x in arrays:
        reducer.fold(x)
    assert reducer._unflushed <= 1000
    assert_matches(reducer.summary(), exact_statistics(arrays, LAW, GRID))


@pytest.mark.parametrize("framework", ["jax", "tensorflow"])
def test_torch_reducer_takes_other_frameworks_arrays_through_dlpack(framework):
    """The GPU path for JAX and TensorFlow draws, exercised on CPU arrays."""
    arrays = draws(np.float32)
    if framework == "jax":
        import jax.numpy as jnp

        convert = jnp.asarray
    else:
        from initcheck.frameworks.tf_keras import tf

        convert = tf.constant
    host, device = HostReducer(LAW, GRID), TorchReducer(LAW, "cpu", GRID)
    for x in arrays:
        host.fold(x)
        device.fold(convert(x))
    a, b = host.summary(), device.summary()
    np.testing.assert_allclose(a.sums, b.sums, rtol=1e-9)
    np.testing.assert_array_equal(a.hist, b.hist)


def test_on_accelerator_is_false_for_host_arrays():
    import jax.numpy as jnp

    from initcheck.frameworks.tf_keras import tf
    from initcheck.reducers import on_accelerator

    for x in (np.zeros(3), torch.zeros(3), jnp.zeros(3), tf.zeros(3)):
        assert not on_accelerator(x)


def test_lag_pairs_match_numpy():
    rng = np.random.default_rng(9)
    arrays = [rng.normal(0.1, 2.0, (50, 40)) for _ in range(3)]
    reducer = HostReducer(LAW, GRID)
    for x in arrays:
        reducer.fold(x)
    pairs = reducer.summary().pairs
    d = [x - LAW.mean for x in arrays]
    flat = [x.ravel() for x in d]
    neighbours = sum((f[:-1] * f[1:]).sum() for f in flat)
    rows = sum((x[:-1] * x[1:]).sum() for x in d)
    draws_ = sum((flat[i - 1] * flat[i]).sum() for i in (1, 2))
    np.testing.assert_allclose(pairs[:, 0], [neighbours, rows, draws_], rtol=1e-10)
    np.testing.assert_array_equal(pairs[:, 3], [3 * 1999, 3 * 49 * 40, 2 * 2000])


def test_a_poisoned_draw_adds_no_pairs_and_breaks_the_draw_chain():
    x = np.random.default_rng(1).normal(0, 1, 100)
    bad = x.copy()
    bad[3] = np.nan
    host = HostReducer(LAW, GRID)
    device = TorchReducer(LAW, "cpu", GRID)
    for draw in (x, bad, x):
        host.fold(draw)
        device.fold(torch.from_numpy(draw))
    a, b = host.summary(), device.summary()
    assert a.pairs[2, 3] == 0  # x->bad and bad->x are both skipped
    assert a.pairs[0, 3] == 2 * 99
    np.testing.assert_allclose(a.pairs, b.pairs, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_device_pattern_reducer_matches_the_host_one(dtype):
    """The GPU path for 16-bit draws (bincount of bit patterns, pairs in torch),
    exercised on CPU tensors; a NaN draw adds no pairs on either path."""
    from initcheck.reducers import PatternReducer

    law = Uniform(-0.1, 0.1)
    generator = torch.Generator().manual_seed(3)
    tensors = [torch.empty(57, 31).uniform_(-0.1, 0.1, generator=generator).to(getattr(torch, dtype)) for _ in range(4)]
    tensors[2][1, 1] = float("nan")
    host, device = PatternReducer(law, dtype), PatternReducer(law, dtype, device="cpu")
    for t in tensors:
        host.fold(t)
        device.fold(t)
    a, b = host.summary(), device.summary()
    np.testing.assert_array_equal(a.patterns, b.patterns)
    np.testing.assert_allclose(a.pairs, b.pairs, rtol=1e-12)
    assert a.pairs[2, 3] == 57 * 31  # only the first -> second draw pair survives the NaN draw


def test_device_batches_of_draws_fold_like_single_draws(monkeypatch):
    """Small draws are stacked into batches on the device; full batches, a draw
    big enough to go alone, a change of shape and the leftover at the end must
    all give the host kernel's numbers, pairs across batch edges included."""
    from initcheck.reducers.backends.torch_reducer import Batches

    monkeypatch.setattr(Batches, "values", 25_000)  # two 73 x 137 draws a batch
    arrays = [x.reshape(73, 137) for x in draws(np.float32, count=5, size=73 * 137)]
    arrays += [x.reshape(100, 130) for x in draws(np.float32, count=2, size=13_000, seed=1)]  # alone
    arrays += [x.reshape(73, 137) for x in draws(np.float32, count=3, size=73 * 137, seed=2)]
    arrays[3][5, 5] = np.nan
    host, device = HostReducer(LAW, GRID), TorchReducer(LAW, "cpu", GRID)
    for x in arrays:
        host.fold(x)
        device.fold(torch.from_numpy(x))
    a, b = host.summary(), device.summary()
    assert (a.count, a.nan) == (8 * 73 * 137 + 2 * 13_000 - 1, 1)
    assert (a.count, a.nan, a.minimum, a.maximum) == (b.count, b.nan, b.minimum, b.maximum)
    np.testing.assert_allclose(a.sums, b.sums, rtol=1e-9)
    np.testing.assert_allclose(a.pairs, b.pairs, rtol=1e-9)
    np.testing.assert_array_equal(a.hist, b.hist)


def test_the_jax_reducer_matches_the_host_kernel(monkeypatch):
    """The JAX GPU path (XLA folds of stacked draws), exercised on CPU arrays:
    several batches, a change of shape, a NaN draw and an Inf."""
    import jax.numpy as jnp

    from initcheck.reducers.backends.jax_reducer import JaxReducer

    monkeypatch.setattr(JaxReducer, "batch_values", 25_000)  # two 73 x 137 draws a batch
    arrays = [x.reshape(73, 137) for x in draws(np.float32, count=5, size=73 * 137)]
    arrays += [x.reshape(100, 130) for x in draws(np.float32, count=2, size=13_000, seed=1)]
    arrays += [x.reshape(73, 137) for x in draws(np.float32, count=3, size=73 * 137, seed=2)]
    arrays[3][5, 5] = np.nan
    arrays[8][0, 0] = -np.inf
    host, device = HostReducer(LAW, GRID), JaxReducer(LAW, GRID)
    for x in arrays:
        host.fold(x)
        device.fold(jnp.asarray(x))
    a, b = host.summary(), device.summary()
    assert (a.count, a.nan, a.posinf, a.neginf) == (b.count, b.nan, b.posinf, b.neginf) == (a.count, 1, 0, 1)
    assert (a.minimum, a.maximum) == (b.minimum, b.maximum)
    np.testing.assert_allclose(a.sums, b.sums, rtol=1e-9)
    np.testing.assert_allclose(a.pairs, b.pairs, rtol=1e-9)
    np.testing.assert_array_equal(a.hist, b.hist)


def test_the_jax_reducer_compiles_once_per_draw_shape(monkeypatch):
    """Rows of different laws share the compiled fold, and a row's last, shorter
    batch is padded into it: one trace for two rows and four batches."""
    import jax.numpy as jnp

    from initcheck.reducers.backends import jax_reducer as jax_nn

    traces = []
    original = jax_nn._fold_function

    def counted(*args):
        fold = original(*args)

        def traced(*inner):
            traces.append(args)
            return fold(*inner)

        return traced

    monkeypatch.setattr(jax_nn, "_folds", {})
    monkeypatch.setattr(jax_nn, "_fold_function", counted)
    monkeypatch.setattr(jax_nn.JaxReducer, "batch_values", 30_000)  # three 73 x 137 draws a batch
    uniform = Uniform(-3.0, 4.0)
    for law, grid in ((LAW, GRID), (uniform, Grid.for_law(uniform, cells=1024, segments=64))):
        arrays = [x.reshape(73, 137) for x in draws(np.float32, count=5, size=73 * 137)]  # batches of 3 and 2
        arrays[4][0, 3] = np.nan  # in the padded batch
        host, device = HostReducer(law, grid), jax_nn.JaxReducer(law, grid)
        for x in arrays:
            host.fold(x)
            device.fold(jnp.asarray(x))
        a, b = host.summary(), device.summary()
        assert (a.count, a.nan, a.minimum, a.maximum) == (b.count, b.nan, b.minimum, b.maximum)
        np.testing.assert_allclose(a.sums, b.sums, rtol=1e-9)
        np.testing.assert_allclose(a.pairs, b.pairs, rtol=1e-9)
        np.testing.assert_array_equal(a.hist, b.hist)
    assert len(traces) == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, row_length", [(1, 0), (2, 1), (7, 0), (7, 3), (7, 6), (7, 7), (1000, 10), (1001, 999)])
@pytest.mark.parametrize("with_previous", [False, True])
def test_pairs_kernel_gives_every_sum_of_every_lag(dtype, n, row_length, with_previous):
    """The one-pass kernel against the twelve sums written out in NumPy."""
    rng = np.random.default_rng(n + row_length)
    ref = 0.25
    x = rng.normal(0.3, 1.0, n).astype(dtype)
    previous = rng.normal(0.3, 1.0, n).astype(dtype) if with_previous else None
    out = np.zeros((3, 4))
    kernels.pairs(x, previous, row_length, ref, out)
    d = x.astype(np.float64) - ref
    expected = np.zeros((3, 4))
    if n > 1:
        expected[0] = [(d[:-1] * d[1:]).sum(), d[:-1].sum(), d[1:].sum(), n - 1]
    if 0 < row_length < n:
        L = row_length
        expected[1] = [(d[:-L] * d[L:]).sum(), d[:-L].sum(), d[L:].sum(), n - L]
    if with_previous:
        e = previous.astype(np.float64) - ref
        expected[2] = [(e * d).sum(), e.sum(), d.sum(), n]
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- batches of draws


@pytest.fixture(params=["c", "numpy"])
def kernel_path(request, monkeypatch):
    """Run a test on the C kernel and again on the NumPy path."""
    from initcheck import _kernels_numpy

    if request.param == "c" and kernels.NAME != "c":
        pytest.skip("the C kernel was not built")
    if request.param == "numpy":
        for name in ("fold", "pairs", "bit_patterns"):
            monkeypatch.setattr(kernels, name, getattr(_kernels_numpy, name))
    return request.param


def batches_of(shape, sizes, dtype=np.float32, seed=0, spoil=()):
    """Batches of draws of ``shape``, ``sizes`` draws each; ``spoil`` lists
    (batch, draw, value) to write at the draw's first position."""
    rng = np.random.default_rng(seed)
    out = [rng.normal(LAW.mu, LAW.sigma, (k, *shape)).astype(dtype) for k in sizes]
    for batch, draw, value in spoil:
        out[batch][draw].flat[0] = value
    return out


def fold_both_ways(make, batches, convert=lambda a: a):
    """(summary of one fold per draw, summary of one fold per batch)."""
    single, batched = make(), make()
    for batch in batches:
        for draw in batch:
            single.fold(convert(draw))
        batched.fold(convert(batch), draws=len(batch))
    return single.summary(), batched.summary()


def assert_same_statistics(a: Summary, b: Summary):
    assert (a.count, a.nan, a.posinf, a.neginf) == (b.count, b.nan, b.posinf, b.neginf)
    assert (a.minimum, a.maximum) == (b.minimum, b.maximum)
    np.testing.assert_allclose(a.sums, b.sums, rtol=1e-9)
    if a.hist is not None:
        np.testing.assert_array_equal(a.hist, b.hist)
    if a.patterns is not None:
        np.testing.assert_array_equal(a.patterns, b.patterns)
    np.testing.assert_array_equal(a.pairs[:, 3], b.pairs[:, 3])
    np.testing.assert_allclose(a.pairs, b.pairs, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(8, 5), (2, 3, 4), (7,), (1, 6)], ids=str)
def test_host_batches_fold_like_single_draws(kernel_path, dtype, shape):
    """Pairs within each draw, between its rows (lag of the draw's shape, not the
    batch's) and between consecutive draws, across batch boundaries too."""
    batches = batches_of(shape, [5, 1, 3, 4], dtype)
    a, b = fold_both_ways(lambda: HostReducer(LAW, GRID), batches)
    assert_same_statistics(a, b)
    n, draws = math.prod(shape), 13
    assert b.pairs[0, 3] == draws * (n - 1)
    assert b.pairs[2, 3] == (draws - 1) * n
    rows = lag_of_rows(shape)
    assert b.pairs[1, 3] == (draws * (n - rows) if 0 < rows < n else 0)


def test_host_batches_with_nonfinite_draws_pair_as_single_draws(kernel_path):
    """A draw holding NaN or Inf adds no pairs and is no one's neighbour; the
    other draws of its batch still pair as they would alone."""
    batches = batches_of((6, 4), [6, 3, 2], spoil=[(0, 2, np.nan), (0, 3, np.inf), (1, 2, -np.inf), (2, 0, np.nan)])
    a, b = fold_both_ways(lambda: HostReducer(LAW, GRID), batches)
    assert_same_statistics(a, b)
    assert (b.nan, b.posinf, b.neginf) == (2, 1, 1)
    # clean draws 0 1 | 4 5 6 7 (5 -> 6 across the batch boundary) | 10
    assert b.pairs[2, 3] == 4 * 24
    assert b.pairs[0, 3] == 7 * 23


def test_host_batches_mix_with_single_draws_and_shapes(kernel_path):
    rng = np.random.default_rng(5)
    sequence = [rng.normal(0.1, 2.0, (4, 9, 3)), rng.normal(0.1, 2.0, (9, 3)), rng.normal(0.1, 2.0, (3, 9, 3)),
                rng.normal(0.1, 2.0, (2, 27)), rng.normal(0.1, 2.0, (5, 9, 3))]
    single, batched = HostReducer(LAW, GRID), HostReducer(LAW, GRID)
    for x in sequence:
        if x.shape == (9, 3):
            single.fold(x)
            batched.fold(x)
            continue
        for draw in x:
            single.fold(draw)
        batched.fold(x, draws=len(x))
    assert_same_statistics(single.summary(), batched.summary())


def test_fold_refuses_a_batch_of_the_wrong_length():
    reducer = HostReducer(LAW, GRID)
    with pytest.raises(ValueError, match="draws=3"):
        reducer.fold(np.zeros((4, 5)), draws=3)
    reducer.fold(np.zeros((4, 5)), draws=1)  # draws=1: a plain draw whatever its first axis
    assert reducer.summary().pairs[1, 3] == 15


def test_a_large_batch_of_tiny_draws_folds_in_well_under_a_second():
    """400,000 draws of (2, 5) in one call: no Python work per draw."""
    import time

    x = np.random.default_rng(0).normal(0.1, 2.0, (400_000, 2, 5)).astype(np.float32)
    reducer = HostReducer(LAW, GRID)
    start = time.perf_counter()
    reducer.fold(x, draws=len(x))
    seconds = time.perf_counter() - start
    s = reducer.summary()
    assert s.count == x.size and s.pairs[2, 3] == (400_000 - 1) * 10 and s.pairs[1, 3] == 400_000 * 5
    assert seconds < (0.5 if kernels.NAME == "c" else 2.0), seconds


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("on_device", [False, True], ids=["host", "device"])
def test_pattern_batches_fold_like_single_draws(dtype, on_device, kernel_path, monkeypatch):
    from initcheck.reducers import PatternReducer
    from initcheck.reducers.backends.torch_reducer import Batches

    monkeypatch.setattr(Batches, "values", 200)  # batches split over staging and direct folds
    law = Uniform(-0.1, 0.1)
    generator = torch.Generator().manual_seed(3)
    batches = [torch.empty(k, 7, 5).uniform_(-0.1, 0.1, generator=generator).to(getattr(torch, dtype))
               for k in (3, 1, 9, 2)]
    batches[2][4, 1, 1] = float("nan")
    device = "cpu" if on_device else None
    a, b = fold_both_ways(lambda: PatternReducer(law, dtype, device=device), batches)
    assert_same_statistics(a, b)
    assert b.nan == 1 and b.pairs[2, 3] == (15 - 1 - 2) * 35


@pytest.mark.parametrize("values", [25_000, 400, 60], ids=["staged", "direct", "one-a-batch"])
def test_torch_batches_fold_like_single_draws(values, monkeypatch):
    """Small batches are staged with single draws, large ones folded directly in
    pieces of at most Batches.values values: the host kernel's numbers either way."""
    from initcheck.reducers.backends.torch_reducer import Batches

    monkeypatch.setattr(Batches, "values", values)
    batches = batches_of((8, 5), [5, 1, 30, 4], spoil=[(2, 7, np.nan)])
    a, b = fold_both_ways(lambda: TorchReducer(LAW, "cpu", GRID), batches, torch.from_numpy)
    assert_same_statistics(a, b)
    host = HostReducer(LAW, GRID)
    for batch in batches:
        host.fold(batch, draws=len(batch))
    assert_same_statistics(host.summary(), b)


@pytest.mark.parametrize("batch_values", [25_000, 130], ids=["one-batch", "split"])
def test_jax_batches_fold_like_single_draws(batch_values, monkeypatch):
    import jax.numpy as jnp

    from initcheck.reducers.backends.jax_reducer import JaxReducer

    monkeypatch.setattr(JaxReducer, "batch_values", batch_values)
    batches = batches_of((8, 5), [5, 1, 7, 4], spoil=[(2, 3, np.inf)])
    a, b = fold_both_ways(lambda: JaxReducer(LAW, GRID), batches, jnp.asarray)
    assert_same_statistics(a, b)
    host = HostReducer(LAW, GRID)
    for batch in batches:
        host.fold(batch, draws=len(batch))
    assert_same_statistics(host.summary(), b)


def test_reducer_for_looks_only_at_dtype_and_device_of_a_batch():
    from initcheck.reducers import PatternReducer

    assert isinstance(reducer_for(np.zeros((400, 2, 5), np.float32), LAW), HostReducer)
    assert isinstance(reducer_for(torch.zeros(400, 2, 5, dtype=torch.bfloat16), LAW), PatternReducer)
