"""The histogram grid: near-equal-mass cells, exact edges, the kernel's cell rule."""

import numpy as np
import pytest

from initcheck.grid import Grid
from initcheck.laws import Normal, TruncatedNormal, Uniform
from initcheck.reducers import HostReducer

LAWS = [
    Normal(0.0, 0.05),
    Normal(3.0, 2.0),
    Uniform(-0.1, 0.3),
    TruncatedNormal(0.0, 1.0, -2.0, 2.0),
    TruncatedNormal(0.0, 1.0, 1.0, 6.0),
]


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.describe())
def test_cells_hold_nearly_equal_mass(law):
    grid = Grid.for_law(law)
    mass = np.diff(law.cdf(grid.edges()))
    assert mass.sum() == pytest.approx(1.0, abs=1e-12)
    # every cell within 2% of 1/cells: the KS reading is as sharp as an exact PIT
    assert mass.max() * grid.cells < 1.02
    assert mass.min() * grid.cells > 0.98


@pytest.mark.parametrize("law", LAWS, ids=lambda law: law.describe())
def test_edges_bracket_their_cells(law):
    """A value just above edge k lands in cell k + 1 (cells 1..B lie between edges)."""
    grid = Grid.for_law(law, cells=4096, segments=256)
    edges = grid.edges()
    assert np.all(np.diff(edges) > 0)
    middle = 0.5 * (edges[:-1] + edges[1:])
    np.testing.assert_array_equal(grid.cell_of(middle), np.arange(1, grid.cells + 1))
    assert grid.cell_of(edges[0] - 1e-3 * (edges[1] - edges[0])) == 0
    assert grid.cell_of(grid.hi) == grid.cells + 1


@pytest.mark.parametrize("law", [Normal(0.0, 1.0), Uniform(-0.3, 0.7)], ids=lambda law: law.family)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_uses_the_grid_rule(law, dtype):
    """The kernel's cells are grid.cell_of's, on a uniform law's linear grid (the
    kernel's table-free path) as on any other, edges and their neighbours included."""
    grid = Grid.for_law(law, cells=2048, segments=128)
    rng = np.random.default_rng(5)
    edges = grid.edges()
    near = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    x = np.concatenate([rng.normal(law.mean, 1.5 * law.std, 100_000), near, [grid.lo, grid.hi, -100.0, 100.0]])
    x = x.astype(dtype)
    reducer = HostReducer(law, grid)
    reducer.fold(x)
    expected = np.bincount(grid.cell_of(x), minlength=grid.cells + 2)
    np.testing.assert_array_equal(reducer.summary().hist, expected)


def test_only_a_uniform_law_gets_an_exactly_linear_grid():
    """cum = j * cells / segments exactly for a uniform law (what the kernel tests
    before taking its table-free path), and not for a normal one."""
    linear = np.arange(1025) * 64.0
    assert np.array_equal(Grid.for_law(Uniform(-0.0759, 0.0759)).cum, linear)
    assert np.array_equal(Grid.for_law(Uniform(2.0, 1e6)).cum, linear)
    assert not np.array_equal(Grid.for_law(Normal(0.0, 1.0)).cum, linear)


def test_degenerate_law_gets_a_usable_grid():
    from initcheck.laws import Constant

    grid = Grid.for_law(Constant(0.0), cells=64, segments=16)
    assert grid.cell_of(0.0) in range(1, 65)
    assert np.all(np.diff(grid.edges()) >= 0)
