"""What the exit code and the reports say agrees with what happened: every row
skipped, a run stopped by Ctrl-C or SIGTERM, a suite's N, a check's name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from helpers import INITCHECK_AS_FROM_A_TERMINAL, run_cli, signal_state


def test_a_command_whose_every_row_is_skipped_exits_3(capsys, tmp_path):
    report = tmp_path / "r.json"
    code, out, err = run_cli(capsys, "kaiming", "--mode", "fan_avg", "-f", "torch", "--fan-in", "10",
                             "--fan-out", "10", "-n", "1e4", "--json", report)
    assert code == 3
    assert err.strip().splitlines()[-1] == "initcheck: nothing was checked: every row was skipped (exit 3)"
    assert "SKIP" in out and json.loads(report.read_text())["exit_code"] == 3


def test_a_suite_records_its_own_n_and_names_its_checks(capsys, tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text(textwrap.dedent("""
        [[check]]
        name = "glorot-small"
        scheme = "xavier"
        dist = "uniform"
        frameworks = ["reference"]
        fans = [[64, 32]]
        samples = "2e4"

        [[check]]
        name = "he-big"
        scheme = "kaiming"
        dist = "normal"
        frameworks = ["reference"]
        fans = [[64, 32]]
        samples = "3e4"
    """))
    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    code, out, err = run_cli(capsys, "suite", suite, "--json", report, "--junit", junit, "--no-progress")
    assert code == 0, out + err
    data = json.loads(report.read_text())
    assert data["settings"]["samples"] == "per row"
    assert [(r["name"], r["samples"]) for r in data["rows"]] == [("glorot-small", 20_000), ("he-big", 30_000)]
    assert "glorot-small" in out and "he-big" in out
    assert 'name="glorot-small | xavier uniform' in junit.read_text()

    code, out, err = run_cli(capsys, "suite", suite, "--json", report, "-n", "5e4", "--no-progress")
    data = json.loads(report.read_text())
    assert data["settings"]["samples"] == 50_000 and {r["samples"] for r in data["rows"]} == {50_000}


@pytest.mark.parametrize("stop, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_run_is_checked_reported_and_exits_with_the_signal(tmp_path, stop, code):
    """Ctrl-C and SIGTERM: the row in progress is checked on what it drew, the
    table is printed, the JSON says the process's exit code."""
    report = tmp_path / "r.json"
    process = subprocess.Popen(
        [*INITCHECK_AS_FROM_A_TERMINAL, "xavier", "--dist", "normal", "--fan-in", "784", "--fan-out", "256",
         "-f", "reference", "-n", "1e10", "--no-progress", "--json", str(report)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONFAULTHANDLER="1"),
    )
    announce = process.stderr.readline()  # printed once the estimate is made, as the run starts
    assert "1e+10 values" in announce, announce
    time.sleep(1.0)  # a few draws
    process.send_signal(stop)
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:  # still running: fail with every thread's stack (faulthandler on SIGABRT)
        masks = signal_state(process.pid)
        process.send_signal(signal.SIGABRT)
        out, err = process.communicate(timeout=60)
        pytest.fail(f"the run did not stop within 120 s of {stop.name} ({masks}):\n{err[-8000:]}")
    assert process.returncode == code, out + err
    assert "PARTIAL" in out and "Traceback" not in err
    data = json.loads(report.read_text())
    assert data["exit_code"] == code and data["settings"]["interrupted"] is True
    (row,) = data["rows"]
    assert row["partial"] and row["verdict"] == "PASS" and row["statistics"]["count"] > 0


def test_ctrl_c_during_the_estimate_is_a_plain_interrupt():
    """Ctrl-C while a long run is being estimated: nothing was sampled for the
    run, so the command ends as Ctrl-C does anywhere (one line, exit 130), not
    with the sampler's partial result."""
    import numpy as np

    from initcheck import estimate
    from initcheck.laws import Normal
    from initcheck.frameworks.base import Plan

    calls = iter(range(10**6))

    def draw(seed):
        if next(calls) == 3:
            raise KeyboardInterrupt
        return np.zeros((8, 8))

    with pytest.raises(KeyboardInterrupt):
        estimate.probe(Plan("synthetic", "slow", Normal(0.0, 1.0), (8, 8), "cpu", "float64", draw))


def test_ctrl_c_while_importing_is_one_line_and_exit_130(monkeypatch, capsys):
    """The command's entry point: Ctrl-C before the CLI has even been imported."""
    import builtins

    from initcheck.__main__ import main

    real_import = builtins.__import__

    def interrupted_import(name, *args, **kwargs):
        if name == "initcheck.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted_import)
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 130
    assert capsys.readouterr().err == "initcheck: interrupted\n"


def _suite(tmp_path, name, fans, samples):
    path = tmp_path / name
    path.write_text(f'[[check]]\nscheme = "xavier"\ndist = "uniform"\nframeworks = ["reference"]\n'
                    f'fans = [{fans}]\nsamples = "{samples}"\n')
    return path


def test_compare_says_when_two_reports_share_no_rows(capsys, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    run_cli(capsys, "suite", _suite(tmp_path, "a.toml", "[64, 32]", "1e4"), "--json", a, "-q", "--no-progress")
    run_cli(capsys, "suite", _suite(tmp_path, "b.toml", "[16, 8]", "1e4"), "--json", b, "-q", "--no-progress")
    code, out, err = run_cli(capsys, "compare", a, b)
    assert code == 2 and "share no rows" in err and len(err.strip().splitlines()) == 1


def test_compare_sees_a_suite_check_change_its_n(capsys, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    run_cli(capsys, "suite", _suite(tmp_path, "a.toml", "[64, 32]", "1e4"), "--json", a, "-q", "--no-progress")
    run_cli(capsys, "suite", _suite(tmp_path, "b.toml", "[64, 32]", "2e4"), "--json", b, "-q", "--no-progress")
    code, out, err = run_cli(capsys, "compare", a, b, "--json", tmp_path / "c.json")
    assert code == 0, out + err
    changes = json.loads((tmp_path / "c.json").read_text())["settings_changes"]
    assert changes["samples"] == {"old": 10_000, "new": 20_000}
    assert changes["samples (1 row)"] == {"old": 10_000, "new": 20_000}
