"""--plot DIR: one PNG per checked row (initcheck.plots)."""

import re
import subprocess
import sys

import numpy as np
import pytest

from initcheck.errors import InputError
from initcheck.laws import Constant, Normal, TruncatedNormal, Uniform
from initcheck.plots import (
    display_bins, display_range, plot_name, require_matplotlib, row_cells, row_gap, slug, write_plots,
)
from initcheck.results import RowResult

from helpers import check_rows, sampler_plan

pytest.importorskip("matplotlib")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIGMA = 0.05
LAW = Normal(0.0, SIGMA)


def nan_only(rng, n):
    return np.full(n, np.nan)


def some_nans(rng, n):
    x = rng.normal(0.0, SIGMA, n)
    x[:50] = np.nan
    return x


@pytest.fixture(scope="module")
def rows():
    """Real row results, checked as one command (N = 1e6 per row)."""
    truncated = TruncatedNormal(0.0, SIGMA, -2 * SIGMA, 2 * SIGMA)
    plans = [
        sampler_plan(LAW, lambda rng, n: rng.normal(0.0, SIGMA, n), name="good"),  # 1 PASS
        sampler_plan(LAW, lambda rng, n: rng.normal(0.0, SIGMA * 1.05, n), name="wide"),  # 2 FAIL
        sampler_plan(LAW, lambda rng, n: rng.uniform(-SIGMA * 3**0.5, SIGMA * 3**0.5, n), name="flat"),  # 3 FAIL
        sampler_plan(LAW, lambda rng, n: rng.normal(0.0, SIGMA, n), dtype="bfloat16", name="bf16"),  # 4 PASS
        sampler_plan(Uniform(-0.1, 0.1), lambda rng, n: rng.uniform(-0.1, 0.1, n), name="uniform"),  # 5 PASS
        sampler_plan(truncated, lambda rng, n: truncated.sample(rng, n), name="truncated"),  # 6 PASS
        sampler_plan(Constant(0.0), lambda rng, n: np.zeros(n), name="zeros"),  # 7 PASS
        sampler_plan(LAW, some_nans, name="nans"),  # 8 FAIL: NaN
        sampler_plan(LAW, nan_only, name="allnan"),  # 9 FAIL, no finite value
        sampler_plan(LAW, lambda rng, n: rng.normal(0.0, SIGMA, n), shape=(1,), name="one"),  # 10 FAIL, 1 value
    ]
    plans[-1].samples = 1
    results = check_rows(plans, samples=1_000_000)
    skip = RowResult("skipped init", "layer", "jax", "jax.nn.initializers.nothing", (3, 3), "cpu", "float32",
                     reason="no such initializer")
    return results + [skip]  # 11 SKIP


def verdicts(rows):
    return {row.framework: row.verdict for row in rows}


def test_fixture_rows_have_the_expected_verdicts(rows):
    assert verdicts(rows) == {
        "good": "PASS", "wide": "FAIL", "flat": "FAIL", "bf16": "PASS", "uniform": "PASS", "truncated": "PASS",
        "zeros": "PASS", "nans": "FAIL", "allnan": "FAIL", "one": "FAIL", "jax": "SKIP",
    }


def is_png(path):
    data = path.read_bytes()
    return len(data) > 10_000 and data[:8] == PNG_SIGNATURE


def test_one_png_per_row_with_values(rows, tmp_path):
    directory = tmp_path / "plots" / "nested"
    paths = write_plots(rows, directory)
    assert directory.is_dir()
    # no file for the row without finite values (9) nor for the SKIP row (11)
    assert [int(p.name[:2]) for p in paths] == [1, 2, 3, 4, 5, 6, 7, 8, 10]
    assert sorted(directory.iterdir()) == sorted(paths)
    for index, path in zip([1, 2, 3, 4, 5, 6, 7, 8, 10], paths):
        assert path.name == plot_name(index, rows[index - 1])
        assert re.fullmatch(r"\d{2}-[a-z0-9-]{1,80}\.png", path.name)
        assert is_png(path)
    assert paths[0].name == "01-good-test-layer-1000x1000-float32-cpu.png"


def test_failures_only(rows, tmp_path):
    paths = write_plots(rows, str(tmp_path), failures_only=True)
    # the failing rows that kept finite values: wide, flat, nans, one
    assert [p.name[:2] for p in paths] == ["02", "03", "08", "10"]
    assert all(is_png(p) for p in paths)


def test_rows_without_values_produce_nothing(rows, tmp_path):
    no_summary = RowResult("init", "layer", "torch", "api", (2, 2), "cpu", "float32", verdict="FAIL")
    assert write_plots([rows[8], rows[10], no_summary], tmp_path / "out") == []
    assert list((tmp_path / "out").iterdir()) == []


def test_figures_do_not_pile_up(rows, tmp_path):
    import matplotlib.pyplot as plt

    before = len(plt.get_fignums())
    write_plots(rows[:2] * 3, tmp_path)
    assert len(plt.get_fignums()) == before


def test_slug_is_safe_and_short():
    key = "torch | Kaiming-uniform (fan_in, a=√5) | Conv2d 3→64 k7 | 64x3x7x7 | bfloat16 | cuda:0"
    text = slug(key)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", text)
    assert text.startswith("torch-kaiming-uniform-fan-in-a-5-conv2d-3-64-k7-64x3x7x7")
    assert len(slug("x" * 300)) <= 80 and not slug("a " * 100).endswith("-")
    assert slug("|||") == "row"
    long = slug("custom | expect xavier uniform | shape (256, 784) fan_in 784, fan_out 256 | 256x784 | float32 | cpu")
    assert len(long) <= 80 and long.endswith("-256x784")  # cut between words, not inside "float32"


def test_a_long_row_name_takes_two_lines_and_pushes_the_header_down():
    from initcheck.plots import _details_lines, _header_extra, _title_lines

    row = RowResult("expect kaiming uniform (leaky_relu a=0.3, fan_out)", "shape (256, 784)\nfan_in 784, fan_out 256",
                    "custom", "/a/really/long/directory/name/for/testing/initializers_with_a_long_name.py:f(shape, seed)",
                    (256, 784), "cpu", "float32", law=Uniform(-0.1466, 0.1466), summary=_summary_of_count(200_704))
    title, details = _title_lines(row), _details_lines(row)
    assert len(title) == 2 and all(len(line) <= 100 for line in title) and "\n" not in "".join(title)
    assert 1 <= len(details) <= 2 and all(len(line) <= 170 for line in details)
    assert _header_extra(row) > 0


def _summary_of_count(count: int):
    from initcheck.summary import Summary

    return Summary(ref=0.0, grid=None, count=count)


def test_display_bins_keep_every_count(rows):
    for row in rows[:6]:
        cells = row_cells(row)
        low, high = display_range(row.law, row.summary, row_gap(row))
        bins = display_bins(cells, row.summary.count, low, high)
        widths = np.diff(bins.edges)
        assert np.all(widths > 0) and 100 <= len(widths) <= 220, row.framework
        counts = np.round(bins.density * widths * row.summary.count).sum()
        assert counts + bins.outside + cells.below + cells.above == row.summary.count, row.framework
        assert bins.expected @ widths == pytest.approx(cells.masses.sum() if row.law.bounded else 1.0, abs=1e-5)


def test_ecdf_gap_is_the_ks_statistic(rows):
    """The curve of the right panel peaks at the KS check's statistic, float and 16-bit alike."""
    for row in rows[:6]:
        gap = row_gap(row)
        assert np.max(np.abs(gap.d)) == pytest.approx(row.check("ks").statistic, rel=1e-9), row.framework
        assert row.check("ks").threshold > 0


def test_require_matplotlib_says_how_to_install(monkeypatch, tmp_path, rows):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(InputError, match=r"--plot needs matplotlib: pip install 'initcheck\[plot\]'"):
        require_matplotlib()
    with pytest.raises(InputError):
        write_plots(rows, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_importing_plots_does_not_import_matplotlib():
    code = "import sys, initcheck.plots; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
