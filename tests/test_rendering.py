"""The table at any width: no number or reason cut, at most four lines a row at 80 columns."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from rich.console import Console

from helpers import check_rows, sampler_plan
from initcheck.laws import Normal, Uniform
from initcheck.report import render_footer, render_table
from initcheck.results import RowResult

LAW = Uniform(-0.0759, 0.0759)


@pytest.fixture(scope="module")
def results():
    good = sampler_plan(LAW, lambda rng, n: rng.uniform(-0.0759, 0.0759, n), shape=(256, 784), name="torch")
    narrow = sampler_plan(LAW, lambda rng, n: rng.uniform(-0.0438, 0.0438, n), shape=(256, 784), name="custom")
    nan = sampler_plan(Normal(0.0, 0.02), lambda rng, n: np.where(rng.random(n) < 1e-4, np.nan, rng.normal(0, 0.02, n)),
                       shape=(256, 784), name="jax")
    rows = check_rows([good, narrow, nan], samples=400_000)
    skip = RowResult("kaiming normal (leaky_relu a=0, fan_avg)", "conv 64→128 3×3", "torch",
                     "torch.nn.init.kaiming_*", (128, 64, 3, 3), "cpu", "float32",
                     reason="torch.nn.init.kaiming_* has no fan_avg mode, and this reason is long enough to wrap")
    return rows + [skip]


def render(results, width: int, wide: bool = False) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    render_table(results, console, "initcheck: a title", wide)
    render_footer(results, 1e-6, console)
    return out.getvalue()


@pytest.mark.parametrize("width", [80, 120, 200])
def test_nothing_is_cut(results, width):
    text = render(results, width)
    assert "…" not in text
    for line in text.splitlines():
        assert len(line) <= width
    flat = " ".join(text.split())
    for result in results:
        if result.summary is not None:
            assert f"{result.summary.total:,}" in flat  # N whole, never "1,00…"
        assert " ".join(result.reason.split()) in flat  # every reason in full
        assert " ".join(result.api.split()) in flat


def test_a_row_takes_at_most_four_lines_at_80_columns(results):
    lines = render(results, 80).splitlines()
    top = next(i for i, line in enumerate(lines) if "───" in line) + 1
    bottom = next(i for i in range(top, len(lines)) if not lines[i].strip())
    starts = [i for i in range(top, bottom) if re.match(r"^ ?\d+ ", lines[i])]
    assert len(starts) == len(results)
    heights = [end - start for start, end in zip(starts, starts[1:] + [bottom])]
    assert max(heights) <= 4, heights


def test_the_wide_table_has_every_statistic_and_cuts_nothing(results):
    text = render(results, 200, wide=True)
    assert "…" not in text and "min, max" in text and "spikes" in text


def test_piped_output_honours_columns(monkeypatch):
    from initcheck.report import make_console

    monkeypatch.setenv("COLUMNS", "97")
    assert make_console().width == 97
    monkeypatch.delenv("COLUMNS")
    assert make_console().width == 160
