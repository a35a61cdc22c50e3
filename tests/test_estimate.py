"""Long runs say how long they will take, measured, and do not start above the limits without --yes."""

from __future__ import annotations

import pytest

from helpers import run_cli, sampler_plan
from initcheck import estimate
from initcheck.errors import InputError
from initcheck.laws import Normal
from initcheck.runner import Row


@pytest.mark.parametrize("seconds, text", [
    (0.0881, "0.088 s"), (6.5, "6.5 s"), (42.0, "42 s"), (545.2, "9.09 min"), (5400, "1.5 h"),
    (86400 * 3, "3 days"), (1.34e10, "425 years"),
])
def test_durations_read_in_human_units(seconds, text):
    assert estimate.human_duration(seconds) == text


def test_the_estimate_is_measured_on_the_real_sampler():
    law = Normal(0.0, 1.0)
    plan = sampler_plan(law, lambda rng, n: rng.normal(0.0, 1.0, n), shape=(256, 784))
    per_value = estimate.seconds_per_value(plan)
    assert 1e-10 < per_value < 1e-6  # a NumPy normal and its fold: nanoseconds a value
    rows = [Row("t", "l", plan)]
    line = estimate.check_run_size(rows, 10**7, confirmed=False, always=True)
    assert line.startswith("1 rows, 1e+07 values, about ")


def test_over_the_limits_needs_yes(monkeypatch):
    plan = sampler_plan(Normal(0.0, 1.0), lambda rng, n: rng.normal(0.0, 1.0, n), shape=(100, 100))
    monkeypatch.setattr(estimate, "MAX_SECONDS", 1e-6)
    with pytest.raises(InputError, match="longer than the limit of .*; add --yes to run it anyway"):
        estimate.check_run_size([Row("t", "l", plan)], 10**6, confirmed=False, always=True)
    assert estimate.check_run_size([Row("t", "l", plan)], 10**6, confirmed=True, always=True)
    monkeypatch.setattr(estimate, "MAX_ROWS", 2)
    with pytest.raises(InputError, match="3 rows, more than the limit of 2"):
        estimate.check_run_size([Row("t", "l", plan)] * 3, 10**4, confirmed=False)


def test_detect_reads_a_bare_number_as_percent(capsys):
    code, out, err = run_cli(capsys, "xavier", "--dist", "normal", "--fan-in", "784", "--fan-out", "256",
                             "-f", "reference", "--detect", "2", "-q", "--no-progress")
    bare = err
    code_pct, _, err_pct = run_cli(capsys, "xavier", "--dist", "normal", "--fan-in", "784", "--fan-out", "256",
                                   "-f", "reference", "--detect", "2%", "-q", "--no-progress")
    assert code == code_pct == 0
    first, first_pct = bare.splitlines()[0], err_pct.splitlines()[0]
    assert first.endswith("values per row") and first.split(":")[2] == first_pct.split(":")[2]
    assert "about" in bare.splitlines()[1]


def test_a_huge_detect_is_refused_with_the_estimate(capsys):
    code, out, err = run_cli(capsys, "xavier", "--dist", "normal", "--fan-in", "784", "--fan-out", "256",
                             "-f", "reference", "--detect", "0.0001", "--no-progress")
    assert code == 2
    assert "longer than the limit of 1 h; add --yes" in err and ("days" in err or "years" in err)


def test_a_suite_announces_its_rows(capsys, tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text('[[check]]\nscheme = "xavier"\ndist = "uniform"\nframeworks = ["reference"]\n'
                     'fans = [[64, 32], [32, 16]]\nsamples = "1e4"\n')
    code, out, err = run_cli(capsys, "suite", suite, "--no-progress", "-q")
    assert code == 0, out + err
    assert err.startswith("initcheck: 2 rows, 2")
