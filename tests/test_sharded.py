"""``initcheck model --nproc N``: sharded models on gloo ranks, the merge of
the statistics, the cross-rank checks and the failures of a rank.

Each launch spawns N Python processes that import torch: seconds apiece, so
the default suite launches three times (2 and 4 ranks) and the rest is
``@pytest.mark.calibration``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
psutil = pytest.importorskip("psutil")
if not torch.distributed.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)

import initcheck  # noqa: E402
from initcheck.errors import InputError  # noqa: E402
from helpers import INITCHECK_AS_FROM_A_TERMINAL  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "sharded_models.py"
#: Few instances: the shards and replicas checks need one, the laws a few thousand values.
FAST = {"samples": 50_000, "instances": 6}

FAILING = textwrap.dedent("""
    import os, sys, time
    import torch

    def _rank():
        return int(os.environ["RANK"])

    def raises():
        if _rank() == 1:
            raise ValueError("no weights for this rank")
        return torch.nn.Linear(8, 8)

    def hangs():
        if _rank() == 1:
            time.sleep(600)
        return torch.nn.Linear(8, 8)

    def dies():
        if _rank() == 1:
            sys.stdout.flush()
            os._exit(3)
        return torch.nn.Linear(8, 8)
""")


def example(name: str) -> str:
    return f"{EXAMPLES}:{name}"


def children() -> list:
    """This process's live descendants but multiprocessing's resource tracker
    (one per parent, started with the first spawn, kept for later ones)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture
def failing(tmp_path) -> Path:
    path = tmp_path / "failing.py"
    path.write_text(FAILING)
    return path


def by_name(result) -> dict:
    return {r.layer: r for r in result.results}


def check(row, name):
    return next((c for c in row.checks if c.name == name), None)


# ----------------------------------------------------------------------------- the default suite: three launches


def test_four_sharding_cases_on_four_ranks():
    """FSDP2 initialized whole then sharded, and seeded apart per rank: PASS;
    the common seed: FAIL on ``shards`` with the ranks named; a row-parallel
    weight drawn with its local fan: FAIL on its std; with the global fan: PASS."""
    before = {c.pid for c in children()}
    result = initcheck.verify_model(example("sharding_cases"), nproc=4, **FAST)
    rows = by_name(result)
    assert result.ranks == 4 and result.backend == "gloo"
    assert result.placement["whole.weight"] == "Shard(0) over 4 ranks"
    assert result.placement["local_fan.weight"] == "Shard(1) over 4 ranks"
    assert result.placement["local_fan.bias"] == "replicated over 4 ranks"
    # the law comes from the global shape: fan_in 64 for the FSDP layers, 256 for the row-parallel ones
    assert rows["whole.weight"].law.describe() == "U(±0.125)"
    assert rows["local_fan.weight"].law.describe() == "U(±0.0625)"
    assert rows["whole.weight"].shape == (64, 64) and rows["local_fan.weight"].shape == (64, 256)
    for name in ("whole.weight", "whole.bias", "seeded.weight", "seeded.bias", "global_fan.weight",
                 "global_fan.bias", "local_fan.bias"):
        assert rows[name].verdict == "PASS", (name, rows[name].reason)
    for name in ("common.weight", "common.bias"):
        shards = check(rows[name], "shards")
        assert rows[name].verdict == "FAIL" and not shards.passed
        assert "rank 1's shard is a copy of rank 0's" in shards.detail
        assert "ranks 0, 1, 2, 3 drew alike" in shards.detail
    assert check(rows["whole.weight"], "shards").passed
    assert check(rows["local_fan.bias"], "replicas").passed
    local = rows["local_fan.weight"]
    assert local.verdict == "FAIL" and not check(local, "variance").passed and check(local, "shards").passed
    assert local.summary.std == pytest.approx(2 * rows["global_fan.weight"].summary.std, rel=0.05)  # √4
    assert result.instances == FAST["instances"]
    assert {c.pid for c in children()} <= before  # every rank is gone


def test_merged_statistics_equal_one_process_folding_the_gathered_tensor():
    """2 ranks each fold their Shard(1) half; the merge equals the fold of the whole
    tensor: counts, extremes, histogram and every position sum, exactly where
    the arithmetic allows and to float64 rounding otherwise."""
    from initcheck.distributed import launch
    from initcheck.sharded import merge_against_fold

    found = launch(merge_against_fold, {"shape": (48, 40), "dim": 1, "draws": 3, "seed": 5}, 2)
    merged, single = found["merged"], found["single"]
    assert (merged.count, merged.nan, merged.minimum, merged.maximum) == (single.count, single.nan,
                                                                          single.minimum, single.maximum)
    assert np.array_equal(merged.hist, single.hist)
    np.testing.assert_allclose(merged.sums, single.sums, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(merged.pairs[2], single.pairs[2], rtol=1e-12, atol=1e-9)  # consecutive draws
    axes = {a.name: a for a in merged.structure.axes}
    for axis in single.structure.axes:
        got = axes[axis.name]
        assert np.array_equal(got.edges, axis.edges)
        for part in ("count", "s1", "s2"):
            np.testing.assert_allclose(getattr(got, part), getattr(axis, part), rtol=1e-12, atol=1e-9)
    assert "shards" in axes and len(axes["shards"].count) == 2
    assert merged.structure.draws.positions == single.structure.draws.positions
    assert merged.structure.draws.total == pytest.approx(single.structure.draws.total, abs=1e-9)
    assert merged.structure.draws.squares == pytest.approx(single.structure.draws.squares, rel=1e-12)
    assert found["merge_seconds"] > 0


def test_a_rank_that_raises_is_named_in_one_line(failing):
    before = {c.pid for c in children()}
    with pytest.raises(InputError) as raised:
        initcheck.verify_model(f"{failing}:raises", nproc=2, samples=1000, instances=2, timeout=60)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("rank 1: ") and "ValueError: no weights for this rank" in message
    assert {c.pid for c in children()} <= before


# ----------------------------------------------------------------------------- calibration: more launches


@pytest.mark.calibration
def test_a_rank_that_hangs_is_named_and_stopped(failing):
    before = {c.pid for c in children()}
    started = time.monotonic()
    with pytest.raises(InputError, match=r"^rank 1 made no progress for 5 s \(rank 1: in .*hangs\(\), instance 0\)"):
        initcheck.verify_model(f"{failing}:hangs", nproc=2, samples=1000, instances=2, timeout=5)
    assert time.monotonic() - started < 120
    assert {c.pid for c in children()} <= before


@pytest.mark.calibration
def test_a_rank_that_dies_is_named_and_the_cli_exits_2(failing):
    process = subprocess.run([sys.executable, "-m", "initcheck", "model", f"{failing}:dies", "--nproc", "2",
                              "-n", "1000", "--instances", "2", "--no-progress"], capture_output=True, text=True,
                             timeout=300)
    assert process.returncode == 2
    lines = [line for line in process.stderr.splitlines() if "rank" in line]
    assert lines and "rank 1 died (exit code 3)" in lines[-1]
    assert not children()


@pytest.mark.calibration
def test_ctrl_c_stops_every_rank(failing):
    process = subprocess.Popen([*INITCHECK_AS_FROM_A_TERMINAL, "model", f"{failing}:hangs", "--nproc", "2",
                                "-n", "1000", "--instances", "2", "--no-progress"], stderr=subprocess.PIPE,
                               text=True)
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + 180
    while len(parent.children(recursive=True)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    ranks = parent.children(recursive=True)
    time.sleep(20)  # the ranks are in the factory by now
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "all 2 ranks stopped" in stderr
    time.sleep(0.5)
    assert not [r for r in ranks if r.is_running() and r.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.calibration
def test_the_cli_table_json_and_the_examples_on_two_ranks(tmp_path):
    report = tmp_path / "report.json"
    process = subprocess.run([sys.executable, "-m", "initcheck", "model", example("fsdp_common_seed"), "--nproc",
                              "2", "-n", "50000", "--instances", "4", "--no-progress", "--json", str(report)],
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == 1, process.stderr
    assert "Shard(0) over 2 ranks" in process.stdout and "on 2 ranks (gloo)" in process.stdout
    data = json.loads(report.read_text())
    assert data["model"]["ranks"] == 2 and data["model"]["backend"] == "gloo"
    assert {p["placement"] for p in data["model"]["placements"]} == {"Shard(0) over 2 ranks"}
    for name in ("fsdp_initialized_then_sharded", "fsdp_seeded_apart"):
        result = initcheck.verify_model(example(name), nproc=2, **FAST)
        assert result.verdict == "PASS", str(result)
    result = initcheck.verify_model(example("row_parallel_local_fan"), nproc=2, **FAST)
    assert by_name(result)["weight"].verdict == "FAIL"


def test_settings_are_refused_before_any_rank_starts():
    before = {c.pid for c in children()}
    with pytest.raises(InputError, match="--nproc must be a whole number"):
        initcheck.verify_model(example("sharding_cases"), nproc=0)
    with pytest.raises(InputError, match="--timeout must be a positive"):
        initcheck.verify_model(example("sharding_cases"), nproc=2, timeout=0)
    with pytest.raises(InputError, match="importable by name"):
        initcheck.verify_model(lambda: torch.nn.Linear(2, 2), nproc=2)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="needs 2 GPUs"):
            initcheck.verify_model(example("sharding_cases"), nproc=2, device="cuda")
    assert {c.pid for c in children()} <= before


def test_cross_rank_checks_on_sketches():
    """``shards`` and ``replicas`` from the small per-rank objects alone (no launch)."""
    from initcheck.model import Sketch
    from initcheck.sharded import shard_checks

    rng = np.random.default_rng(3)
    a, b = rng.uniform(-1, 1, 5000), rng.uniform(-1, 1, 5000)

    def holder(rank, values, offset, digest="x", owner=True):
        return {"rank": rank, "offset": offset, "shape": (50, 100), "sketch": Sketch.of(values), "digest": digest,
                "owner": owner}

    ok = shard_checks("w", "Shard(0) over 2 ranks", True, [holder(0, a, (0, 0)), holder(1, b, (50, 0))])
    assert [c.passed for c in ok] == [True]
    same = shard_checks("w", "Shard(0) over 2 ranks", True, [holder(0, a, (0, 0)), holder(1, a, (50, 0))])
    assert not same[0].passed and "rank 1's shard is a copy of rank 0's" in same[0].detail
    negated = shard_checks("w", "Shard(0) over 2 ranks", True, [holder(0, a, (0, 0)), holder(1, -a, (50, 0))])
    assert "the negation of" in negated[0].detail
    scaled = shard_checks("w", "Shard(0) over 2 ranks", True, [holder(0, a, (0, 0)), holder(1, 0.5 * a, (50, 0))])
    assert "scaled copy (×0.5)" in scaled[0].detail
    overlap = shard_checks("w", "Shard(0) over 2 ranks", True, [holder(0, a, (0, 0)), holder(1, b, (25, 0))])
    assert "overlaps the index range" in overlap[0].detail
    replicas = shard_checks("b", "replicated over 3 ranks", True,
                            [holder(0, a, (0, 0), "h0"), holder(1, a, (0, 0), "h0", owner=False),
                             holder(2, b, (0, 0), "h2", owner=False)])
    assert [c.name for c in replicas] == ["replicas"] and not replicas[0].passed
    assert replicas[0].detail.startswith("rank 2 holds other values than rank 0")
    assert shard_checks("z", "Shard(0) over 2 ranks", False, [holder(0, a * 0, (0, 0)), holder(1, a * 0, (50, 0))]) \
        == []


SUITE = textwrap.dedent("""
    [defaults]
    samples = "2e4"
    fans = [[64, 32]]
    dtype = ["float32"]
    frameworks = ["torch", "reference"]

    [[check]]
    name = "xavier"
    scheme = "xavier"
    dist = ["normal", "uniform"]

    [[check]]
    name = "zeros"
    scheme = "zeros"
""")


@pytest.mark.calibration  # a launch of its own: about 5 s
def test_a_suite_spread_over_two_ranks_decides_as_one_process(tmp_path):
    """Rows sampled on 2 ranks, gathered and decided on rank 0: the same
    summaries, p-values, Holm levels and verdicts as one process."""
    from initcheck.runner import run
    from initcheck.suite import load_suite, spread_runner

    path = tmp_path / "suite.toml"
    path.write_text(SUITE)
    suite = load_suite(path)
    one = run(suite.rows, 20_000, 0, 1e-6, show_progress=False)
    spread = spread_runner(path, None, None, 2, 120, len(suite.rows), False)(suite.rows, 20_000, 0, 1e-6)
    assert len(spread.results) == len(one.results) >= 6
    for a, b in zip(one.results, spread.results):
        assert (a.layer, a.framework, a.verdict, a.reason) == (b.layer, b.framework, b.verdict, b.reason)
        assert [(c.name, c.pvalue, c.level, c.passed) for c in a.checks] == \
               [(c.name, c.pvalue, c.level, c.passed) for c in b.checks]
        if a.summary is not None:
            assert np.array_equal(a.summary.hist, b.summary.hist) and np.array_equal(a.summary.sums, b.summary.sums)


@pytest.mark.calibration
def test_a_suite_as_a_torchrun_job(tmp_path):
    """``torchrun --nproc-per-node 2 -m initcheck suite FILE``: each process one rank, rank 0 prints one table."""
    path = tmp_path / "suite.toml"
    path.write_text(SUITE)
    report = tmp_path / "report.json"
    process = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                              "--master-port", str(__import__("initcheck.distributed").distributed.free_port()),
                              "-m", "initcheck", "suite", str(path), "--no-progress",
                              "--json", str(report)], capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.count("Family-wise alpha") == 1
    data = json.loads(report.read_text())
    assert len(data["rows"]) >= 6 and data["verdicts"]["fail"] == 0 and data["verdicts"]["pass"] >= 6
