"""The two fold kernels: the NumPy path gives the C kernel's cells and counts
bit for bit and its sums to rounding; initcheck.kernels picks one; a whole
verification without the C kernel gives the same histogram."""

import atexit
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import sysconfig
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from initcheck import _kernels_numpy, kernels
from initcheck.grid import Grid
from initcheck.laws import Normal, TruncatedNormal, Uniform
from initcheck.summary import decode_counts

try:
    from initcheck import _kernels
except ImportError:  # an install without a compiler: only the NumPy path to test
    _kernels = None

needs_c = pytest.mark.skipif(_kernels is None, reason="the C kernel was not built")
SOURCE = Path(__file__).resolve().parents[1] / "initcheck" / "_kernels.c"


class PortableBuild:
    """initcheck/_kernels.c built as a compiler without GCC's extras sees it:
    strict ISO C99 (which also forbids contracting a * b + c), no function
    clones and no per-target cell loops (IC_NO_CLONES), none of setup.py's
    flags, every warning an error.  Built on first use, once per process,
    with the C compiler Python was built with; skipped where there is none."""

    module = None

    def __getattr__(self, name):
        if PortableBuild.module is None:
            PortableBuild.module = self._build()
        return getattr(PortableBuild.module, name)

    @staticmethod
    def _build():
        compiler = shlex.split(sysconfig.get_config_var("CC") or "cc")
        folder = tempfile.mkdtemp(prefix="initcheck-portable-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        target = Path(folder) / "_kernels.so"
        command = [*compiler, "-shared", "-fPIC", "-O2", "-std=c99", "-pedantic", "-Wall", "-Wextra",
                   "-Wno-unused-parameter", "-Werror", "-DIC_NO_CLONES",
                   f"-I{sysconfig.get_paths()['include']}", str(SOURCE), "-o", str(target), "-lm"]
        try:
            built = subprocess.run(command, capture_output=True, text=True, timeout=120)
        except OSError:
            pytest.skip(f"no C compiler ({compiler[0]})")
        assert built.returncode == 0, built.stderr  # a warning in strict C99 is a portability bug
        spec = importlib.util.spec_from_file_location("_kernels", target)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


portable = PortableBuild()
IMPLEMENTATIONS = [pytest.param(_kernels, id="c", marks=needs_c), pytest.param(_kernels_numpy, id="numpy"),
                   pytest.param(portable, id="portable-c")]

LAWS = [Normal(0.1, 2.0), Uniform(-0.0759, 0.0759), TruncatedNormal(0.0, 1.0, -2.0, 2.0)]


def fold_with(kernel, x, law, grid, state=None):
    """One fold call into fresh (or the given) accumulators; returns them."""
    if state is None:
        state = {
            "sums": np.zeros(4),
            "extremes": np.array([np.inf, -np.inf]),
            "counts": np.zeros(4, dtype=np.int64),
            "hist": np.zeros(grid.cells + 2, dtype=np.int32),
        }
    kernel.fold(x, law.mean, grid.lo, grid.segment_scale, grid.cum, grid.slope,
                state["sums"], state["extremes"], state["counts"], state["hist"])
    return state


def assert_same_fold(a, b):
    np.testing.assert_array_equal(a["hist"], b["hist"])
    np.testing.assert_array_equal(a["counts"], b["counts"])
    np.testing.assert_array_equal(a["extremes"], b["extremes"])
    np.testing.assert_allclose(a["sums"], b["sums"], rtol=1e-9)


def hard_values(law, grid, dtype, size=300_001, seed=0):
    """Random draws around the grid, its edges and their float neighbours, its
    bounds, far values and every kind of non-finite value."""
    rng = np.random.default_rng(seed)
    edges = grid.edges().astype(dtype)
    near = np.concatenate([edges, np.nextafter(edges, dtype(-np.inf)), np.nextafter(edges, dtype(np.inf))])
    x = np.concatenate([
        rng.normal(law.mean, 1.5 * law.std, size).astype(dtype),
        near,
        np.array([grid.lo, grid.hi, law.mean - 100 * law.std, law.mean + 100 * law.std, 0.0, -0.0,
                  np.nan, np.inf, -np.inf, -np.inf], dtype=dtype),
    ])
    return rng.permutation(x)


@needs_c
@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.family)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_fold_gives_the_c_kernels_cells_bit_for_bit(law, dtype):
    """Edges, their neighbours, bounds, NaN and Inf; a uniform law's linear grid
    is where the C kernel reads no table."""
    grid = Grid.for_law(law)
    x = hard_values(law, grid, dtype)
    c, numpy = fold_with(_kernels, x, law, grid), fold_with(_kernels_numpy, x, law, grid)
    assert_same_fold(c, numpy)
    finite = x[np.isfinite(x)]
    np.testing.assert_array_equal(numpy["hist"], np.bincount(grid.cell_of(finite), minlength=grid.cells + 2))
    assert numpy["counts"].tolist() == [finite.size, 1, 1, 2]


@needs_c
@pytest.mark.parametrize("level", [0, 1, 2], ids=["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.family)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_cell_kernel_gives_the_numpy_cells_bit_for_bit(level, law, dtype):
    """The baseline, AVX2 and AVX-512 builds of the cell passes (each where
    this CPU has it; a level it lacks runs the best it has) on the hard values,
    finite and not; a draw whose length is no multiple of the vector width
    takes the loops' scalar tails."""
    if not hasattr(_kernels, "cell_level"):
        pytest.skip("this build of the C kernel has one cell loop")
    grid = Grid.for_law(law)
    x = hard_values(law, grid, dtype, size=100_003, seed=level)
    before = _kernels.cell_level(level)
    try:
        c = fold_with(_kernels, x, law, grid)
        finite = fold_with(_kernels, x[np.isfinite(x)], law, grid)  # the fast path, no NaN or Inf
    finally:
        _kernels.cell_level(before)
    assert_same_fold(c, fold_with(_kernels_numpy, x, law, grid))
    assert_same_fold(finite, fold_with(_kernels_numpy, x[np.isfinite(x)], law, grid))


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.family)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_portable_build_gives_the_numpy_cells_bit_for_bit(law, dtype):
    """The one portable cell loop, the table-free uniform path and the careful
    path, as a compiler with none of GCC's target attributes builds them."""
    grid = Grid.for_law(law)
    x = hard_values(law, grid, dtype, size=50_001, seed=3)
    finite = x[np.isfinite(x)]
    assert portable.clones == ""
    assert_same_fold(fold_with(portable, x, law, grid), fold_with(_kernels_numpy, x, law, grid))
    assert_same_fold(fold_with(portable, finite, law, grid), fold_with(_kernels_numpy, finite, law, grid))


@needs_c
@pytest.mark.parametrize("bits", [np.uint16, np.uint32, np.uint64])
def test_a_portable_build_selects_and_sums_as_the_tuned_build(bits):
    """The structure kernels of the portable build: the same grams bit for
    bit, the same row and column sums to rounding."""
    rng = np.random.default_rng(5)
    values = rng.normal(0.0, 1.0, 40_000)
    values[1000:1400] = -values[:400]  # a negated copy, selected as the original
    x = values.astype({np.uint16: np.float16, np.uint32: np.float32, np.uint64: np.float64}[bits]).view(bits)
    found = []
    for module in (_kernels, portable):
        out = [np.zeros(40_000, np.int64), np.zeros(40_000, np.uint64), np.zeros(40_000, np.uint64),
               np.zeros(40_000, np.uint32)]
        count = module.grams(x, 4, 1 << 29, 17, *out)
        found.append([count] + [a[:count] for a in out])
    assert found[0][0] == found[1][0] > 0
    for a, b in zip(found[0][1:], found[1][1:]):
        np.testing.assert_array_equal(a, b)
    draw = values.astype(np.float32)
    sums = []
    for module in (_kernels, portable):
        r1, r2, c1, c2 = np.zeros(400), np.zeros(400), np.zeros(100), np.zeros(100)
        module.positions(draw, 100, 0.1, r1, r2, c1, c2)
        sums.append(np.concatenate([r1, r2, c1, c2]))
    np.testing.assert_allclose(sums[0], sums[1], rtol=1e-12)


@needs_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_fold_matches_in_chunks_and_across_calls(dtype, monkeypatch):
    """Chunks of a large draw, a clean and a poisoned chunk, and accumulators
    carried from one call to the next."""
    monkeypatch.setattr(_kernels_numpy, "CHUNK", 1000)
    law = Normal(0.1, 2.0)
    grid = Grid.for_law(law, cells=1024, segments=64)
    rng = np.random.default_rng(4)
    draws = [rng.normal(0.1, 2.0, 5_500).astype(dtype) for _ in range(3)]
    draws[1][4321] = np.nan
    c = numpy = None
    for x in draws:
        c, numpy = fold_with(_kernels, x, law, grid, c), fold_with(_kernels_numpy, x, law, grid, numpy)
    assert_same_fold(c, numpy)


@needs_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_fold_of_huge_values(dtype):
    """Values whose fourth powers overflow (both kernels then take their careful
    path) and whose grid coordinate may: the same cells and extremes."""
    law = Normal(0.0, 0.05)
    grid = Grid.for_law(law, cells=1024, segments=64)
    big = np.finfo(dtype).max
    x = np.array([1.0, -big, big, -1e30, 1e30, np.nextafter(big, 0), 0.01], dtype=dtype)
    c, numpy = fold_with(_kernels, x, law, grid), fold_with(_kernels_numpy, x, law, grid)
    np.testing.assert_array_equal(c["hist"], numpy["hist"])
    np.testing.assert_array_equal(c["counts"], numpy["counts"])
    np.testing.assert_array_equal(c["extremes"], numpy["extremes"])
    assert numpy["hist"][0] == 2 and numpy["hist"][-1] == 4


@needs_c
def test_numpy_fold_of_a_draw_with_no_finite_value():
    law = Normal(0.0, 1.0)
    grid = Grid.for_law(law, cells=64, segments=16)
    x = np.array([np.nan, np.inf, -np.inf], dtype=np.float32)
    c, numpy = fold_with(_kernels, x, law, grid), fold_with(_kernels_numpy, x, law, grid)
    assert_same_fold(c, numpy)
    assert numpy["counts"].tolist() == [0, 1, 1, 1]
    assert numpy["extremes"].tolist() == [np.inf, -np.inf]


@pytest.mark.parametrize("kernel", IMPLEMENTATIONS)
def test_both_kernels_refuse_what_they_cannot_fold(kernel):
    law = Normal(0.0, 1.0)
    grid = Grid.for_law(law, cells=64, segments=16)
    with pytest.raises(TypeError):
        fold_with(kernel, np.arange(4, dtype=np.int32), law, grid)
    with pytest.raises(TypeError):
        fold_with(kernel, np.zeros(8, np.float32)[::2], law, grid)
    with pytest.raises(TypeError):  # an int64 histogram where int32 cells are expected
        kernel.fold(np.zeros(4), 0.0, grid.lo, grid.segment_scale, grid.cum, grid.slope, np.zeros(4),
                    np.zeros(2), np.zeros(4, np.int64), np.zeros(grid.cells + 2, np.int64))
    with pytest.raises(ValueError):
        kernel.pairs(np.zeros(10), None, 0, 0.0, np.zeros((3, 4)), 3)  # not a whole number of draws
    with pytest.raises(ValueError):
        kernel.pairs(np.zeros(10), np.zeros(10), 0, 0.0, np.zeros((3, 4)), 5)  # previous is one draw
    with pytest.raises(ValueError):
        kernel.pairs(np.zeros(10), np.zeros(10, np.float32), 0, 0.0, np.zeros((3, 4)))


def numpy_pairs(x, previous, row_length, ref, draw_length):
    """The twelve sums of a batch written out draw by draw."""
    n = draw_length or x.size
    d = x.astype(np.float64).reshape(-1, n) - ref
    e = None if previous is None else previous.astype(np.float64) - ref
    expected = np.zeros((3, 4))
    for draw in d:
        if n > 1:
            expected[0] += [(draw[:-1] * draw[1:]).sum(), draw[:-1].sum(), draw[1:].sum(), n - 1]
        if 0 < row_length < n:
            L = row_length
            expected[1] += [(draw[:-L] * draw[L:]).sum(), draw[:-L].sum(), draw[L:].sum(), n - L]
        if e is not None:
            expected[2] += [(e * draw).sum(), e.sum(), draw.sum(), n]
        e = draw
    return expected


@pytest.mark.parametrize("kernel", IMPLEMENTATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("draws, n, row_length", [(1, 7, 3), (5, 1, 0), (5, 2, 1), (40, 10, 5), (3, 1001, 999), (7, 60, 0)])
@pytest.mark.parametrize("with_previous", [False, True])
def test_pairs_of_a_batch_are_those_of_its_draws(kernel, dtype, draws, n, row_length, with_previous):
    """Within each draw (never across two), between rows of a draw, and between
    consecutive draws, the previous batch's last draw with this one's first."""
    rng = np.random.default_rng(draws * n)
    x = rng.normal(0.3, 1.0, draws * n).astype(dtype)
    previous = rng.normal(0.3, 1.0, n).astype(dtype) if with_previous else None
    out = np.zeros((3, 4))
    kernel.pairs(x, previous, row_length, 0.25, out, n)
    expected = numpy_pairs(x, previous, row_length, 0.25, n)
    np.testing.assert_array_equal(out[:, 3], expected[:, 3])
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)


@needs_c
def test_c_pairs_of_a_batch_are_those_of_single_calls_bit_for_bit():
    rng = np.random.default_rng(2)
    x = rng.normal(0.0, 1.0, (50, 8, 5))
    batch, single = np.zeros((3, 4)), np.zeros((3, 4))
    _kernels.pairs(x, None, 5, 0.1, batch, 40)
    for k in range(50):
        _kernels.pairs(x[k], x[k - 1] if k else None, 5, 0.1, single)
    np.testing.assert_array_equal(batch, single)


@needs_c
@pytest.mark.parametrize("draws, n", [(3, 1000), (1, 2500), (2, 3001)])
def test_numpy_pairs_match_c_in_chunks(draws, n, monkeypatch):
    """Draws larger than a chunk are paired chunk by chunk (rows across chunk edges)."""
    monkeypatch.setattr(_kernels_numpy, "CHUNK", 512)
    rng = np.random.default_rng(n)
    x = rng.normal(0.0, 1.0, draws * n).astype(np.float32)
    previous = rng.normal(0.0, 1.0, n).astype(np.float32)
    c, numpy = np.zeros((3, 4)), np.zeros((3, 4))
    _kernels.pairs(x, previous, 700, 0.05, c, n)
    _kernels_numpy.pairs(x, previous, 700, 0.05, numpy, n)
    np.testing.assert_array_equal(c[:, 3], numpy[:, 3])
    np.testing.assert_allclose(c, numpy, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kernel", IMPLEMENTATIONS)
def test_bit_patterns_count_every_pattern_and_refuse_other_widths(kernel):
    rng = np.random.default_rng(6)
    x = rng.normal(0.0, 1.0, 100_000).astype(np.float16)
    counts = np.zeros(65536, dtype=np.int64)
    kernel.bit_patterns(x, counts)
    kernel.bit_patterns(x.view(np.uint16), counts)
    np.testing.assert_array_equal(counts, 2 * np.bincount(x.view(np.uint16), minlength=65536))
    for wrong in (np.zeros(8, np.uint8), np.zeros(4, np.float32), np.zeros(3, np.uint8)):
        with pytest.raises(TypeError, match="16-bit"):
            kernel.bit_patterns(wrong, counts)
    np.testing.assert_array_equal(counts, 2 * np.bincount(x.view(np.uint16), minlength=65536))


@pytest.mark.parametrize("kernel", IMPLEMENTATIONS)
def test_sort_uint64_is_a_sort_and_refuses_other_arrays(kernel):
    """Every digit of the radix sort (values over the whole 64-bit range, ties,
    values that share most digits), the sizes with no or one value, and the
    arrays it cannot sort in place."""
    rng = np.random.default_rng(11)
    cases = [
        rng.integers(0, 2**64, 100_003, dtype=np.uint64),
        rng.integers(0, 5, 10_000, dtype=np.uint64) << np.uint64(60),  # ties; only the top digit varies
        np.full(1000, 2**64 - 1, dtype=np.uint64),
        np.arange(3000, dtype=np.uint64)[::-1].copy(),
        np.zeros(0, dtype=np.uint64),
        np.array([7], dtype=np.uint64),
    ]
    for x in cases:
        y = x.copy()
        kernel.sort_uint64(y)
        np.testing.assert_array_equal(y, np.sort(x))
    read_only = np.zeros(4, dtype=np.uint64)
    read_only.flags.writeable = False
    for bad in (np.zeros(4, dtype=np.int64), np.zeros(8, dtype=np.uint64)[::2], read_only, [3, 1, 2]):
        with pytest.raises(TypeError):
            kernel.sort_uint64(bad)


def test_the_module_names_the_path_it_took():
    assert kernels.NAME in ("c", "numpy")
    if kernels.NAME == "c":
        assert kernels.PATH.startswith("C kernel (initcheck._kernels")
        assert kernels.fold is _kernels.fold
    else:
        assert kernels.PATH.startswith("NumPy")
        assert kernels.fold is _kernels_numpy.fold


def run_initcheck(*args, kernel=None, cwd=None):
    env = dict(os.environ)
    env.pop("INITCHECK_KERNEL", None)
    if kernel is not None:
        env["INITCHECK_KERNEL"] = kernel
    return subprocess.run([sys.executable, "-m", "initcheck", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_the_environment_variable_forces_the_numpy_path():
    done = subprocess.run([sys.executable, "-c", "from initcheck import kernels; print(kernels.NAME, kernels.PATH)"],
                          env={**os.environ, "INITCHECK_KERNEL": "numpy"}, capture_output=True, text=True)
    assert done.stdout.split()[0] == "numpy", done.stderr
    wrong = subprocess.run([sys.executable, "-c", "from initcheck import kernels; kernels.check_choice()"],
                           env={**os.environ, "INITCHECK_KERNEL": "fortran"}, capture_output=True, text=True)
    assert wrong.returncode != 0 and "INITCHECK_KERNEL must be one of" in wrong.stderr


@needs_c
def test_a_verification_on_the_numpy_path_gives_the_c_paths_histogram(tmp_path):
    """The same row, seed and N, once per path: the same report numbers."""
    args = ["xavier", "--fan-in", "64", "--fan-out", "32", "-f", "reference", "-n", "1e5"]
    stats = {}
    for kernel in ("c", "numpy"):
        report = tmp_path / f"{kernel}.json"
        done = run_initcheck(*args, "--json", str(report), kernel=kernel)
        assert done.returncode == 0, done.stdout + done.stderr
        rows = json.loads(report.read_text())["rows"]
        stats[kernel] = [row["statistics"] for row in rows]
    assert len(stats["c"]) == len(stats["numpy"]) >= 1
    for c, numpy in zip(stats["c"], stats["numpy"]):
        np.testing.assert_array_equal(decode_counts(c["hist"]), decode_counts(numpy["hist"]))
        assert (c["count"], c["nan"], c["min"], c["max"]) == (numpy["count"], numpy["nan"], numpy["min"], numpy["max"])
        np.testing.assert_allclose(c["power_sums"], numpy["power_sums"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(c["lag_pairs"], numpy["lag_pairs"], rtol=1e-9, atol=1e-12)
