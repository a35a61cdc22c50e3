"""``initcheck compare``: two reports, what changed, and which changes are regressions.

The reports are real: each is written by running the CLI in-process with
``--json``.  Seeds are fixed, so every outcome is deterministic; the planted
3% std error is far beyond the two-sample tests' reach (z near 30), and the
same-law comparisons have p-values far above the Holm levels (about 1e-7).
"""

import copy
import json
import math
import textwrap

import numpy as np
import pytest
from rich.console import Console
from scipy import special, stats

from initcheck.cli import main
from initcheck.compare import (
    Comparison,
    compare_reports,
    ks_shift,
    load_report,
    mean_shift,
    NotCompared,
    render_comparison,
    shift_reach,
    variance_shift,
)
from initcheck.check_result import POWER
from initcheck.errors import InputError
from initcheck.grid import Grid
from initcheck.laws import Normal
from initcheck.lowp import PATTERNS, pattern_summary
from initcheck.summary import Summary

CUSTOM_KEY = "custom | expect normal | shape (256, 784) | 256x784 | float32 | cpu"

INIT = textwrap.dedent(
    """
    import numpy as np

    def init(shape, seed):
        return np.random.default_rng(seed).normal(0.0, {std}, shape).astype(np.float32)
    """
)


def run_report(path, *args) -> dict:
    """Run the CLI in-process with ``--json path``; returns the report."""
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--json", str(path), "--no-progress", "-q"])
    assert exit_info.value.code in (0, 1), f"initcheck {' '.join(args)} exited {exit_info.value.code}"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Every report the tests compare, made once."""
    folder = tmp_path_factory.mktemp("reports")
    out = {}

    def custom(name, std, seed):
        source = folder / "my_init.py"  # one file, edited between runs (as a user would)
        source.write_text(INIT.format(std=std))
        out[name] = run_report(
            folder / f"{name}.json", "custom", f"{source}:init", "--expect", "normal", "--std", "0.05",
            "--shape", "256,784", "-n", "1e6", "-f", "custom", "--seed", str(seed),
        )

    custom("good", 0.05, 0)
    custom("good_seed1", 0.05, 1)
    custom("wide", 0.0515, 0)  # the planted bug: std 3% too large
    xavier = ["xavier", "--fan-in", "784", "--fan-out", "256", "-n", "2e5"]
    out["xavier"] = run_report(folder / "xavier.json", *xavier, "-f", "torch,reference")
    out["xavier_seed1"] = run_report(folder / "xavier_seed1.json", *xavier, "-f", "torch,reference", "--seed", "1")
    out["xavier_torch"] = run_report(folder / "xavier_torch.json", *xavier, "-f", "torch")
    bf16 = [*xavier[:5], "-n", "5e5", "--dtype", "bfloat16", "-f", "torch"]
    out["bf16"] = run_report(folder / "bf16.json", *bf16)
    out["bf16_seed1"] = run_report(folder / "bf16_seed1.json", *bf16, "--seed", "1")
    return out


def rendered(comparison: Comparison) -> str:
    console = Console(record=True, width=200)
    render_comparison(comparison, console)
    return console.export_text()


def test_a_report_compared_with_itself_has_no_change(reports):
    report = reports["xavier"]
    comparison = compare_reports(report, report)
    assert comparison.exit_code == 0
    assert comparison.changes() == [] and comparison.regressions == []
    assert len(comparison.rows) == len(report["rows"]) and not comparison.added and not comparison.gone
    assert comparison.tests and all(t.statistic == 0.0 and t.pvalue == 1.0 for t in comparison.tests)
    assert not comparison.settings_changes
    text = rendered(comparison)
    assert f"no regression: {len(report['rows'])} rows matched, none changed significantly" in text
    assert "(unchanged)" in text  # the versions line


def test_planted_std_error_is_a_regression_named_by_its_key(reports):
    comparison = compare_reports(reports["good"], reports["wide"])
    assert comparison.exit_code == 1
    [regression] = comparison.regressions
    assert regression.key == CUSTOM_KEY
    assert "PASS → FAIL" in regression.reasons and "variance shift" in regression.reasons
    [row] = [r for r in comparison.rows if r.key == CUSTOM_KEY]
    tests = {t.name: t for t in row.tests}
    assert tests["variance"].significant and tests["variance"].statistic > 20
    assert not tests["mean"].significant
    assert tests["variance"].pvalue < tests["variance"].level
    text = rendered(comparison)
    assert "variance shift" in text and "std +3.0" in text and "API text" not in text
    assert text.strip().splitlines()[-1].startswith("1 regression: " + CUSTOM_KEY)
    assert json.dumps(comparison.to_dict(), allow_nan=False)  # JSON-able, strictly
    assert comparison.to_dict()["exit_code"] == 1


def test_different_seeds_of_a_correct_initializer_do_not_shift(reports):
    for old, new in (("good", "good_seed1"), ("xavier", "xavier_seed1")):
        comparison = compare_reports(reports[old], reports[new])
        assert comparison.exit_code == 0, rendered(comparison)
        assert not any(t.significant for t in comparison.tests)
        assert min(t.pvalue for t in comparison.tests) > 1e-4  # far from the Holm levels
        assert comparison.settings_changes == {"seed": (0, 1)}
        assert "settings differ: seed 0 → 1" in rendered(comparison)


def test_rows_gone_are_regressions_rows_added_are_not(reports):
    both, torch_only = reports["xavier"], reports["xavier_torch"]
    gone = compare_reports(both, torch_only)
    reference_keys = {r["key"] for r in both["rows"] if r["framework"] == "reference"}
    assert reference_keys and {r["key"] for r in gone.gone} == reference_keys
    assert {r.key for r in gone.regressions} == reference_keys
    assert all(r.reasons == ("gone",) for r in gone.regressions)
    assert gone.exit_code == 1
    assert "reference" in gone.versions and gone.versions["reference"][1] is None

    added = compare_reports(torch_only, both)
    assert {r["key"] for r in added.added} == reference_keys and not added.gone
    assert added.exit_code == 0
    assert f"({len(reference_keys)} added)" in rendered(added).strip().splitlines()[-1]


def test_load_report_errors_are_one_line_input_errors(tmp_path, reports):
    with pytest.raises(InputError, match="missing.json: no such file") as error:
        load_report(tmp_path / "missing.json")
    assert "\n" not in str(error.value)
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": ')
    with pytest.raises(InputError, match=r"broken.json: not JSON \(.* at line 1"):
        load_report(broken)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema": "initcheck-report/1", "rows": []}))
    with pytest.raises(InputError, match="old.json: schema 'initcheck-report/1'"):
        load_report(old)
    other = tmp_path / "other.json"
    other.write_text("[1, 2]")
    with pytest.raises(InputError, match="other.json: not an initcheck report"):
        load_report(other)
    with pytest.raises(InputError, match="is a directory"):
        load_report(tmp_path)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(reports["good"]))
    assert load_report(good)["rows"][0]["key"] == CUSTOM_KEY


def test_16bit_rows_with_different_seeds_do_not_shift(reports):
    comparison = compare_reports(reports["bf16"], reports["bf16_seed1"])
    assert comparison.exit_code == 0, rendered(comparison)
    ks = [t for t in comparison.tests if t.name == "ks"]
    assert len(ks) == len(comparison.rows) == 2
    assert all("exact over the bfloat16 values" in t.detail for t in ks)
    assert not any(t.significant for t in comparison.tests)


# ------------------------------------------------------------------ the regression rule


def test_verdict_changes_law_and_api_changes(reports):
    old = reports["xavier"]
    new = copy.deepcopy(old)
    first, second, third, fourth = (row["key"] for row in old["rows"][:4])
    rows = {row["key"]: row for row in new["rows"]}
    rows[first]["verdict"] = "WARN"  # worse
    rows[second]["api"] = "torch.nn.init.renamed_(w)"  # information
    rows[second]["law"]["text"] = "N(0, σ=0.05)"  # the documented law changed
    rows[third]["verdict"] = "SKIP"  # no longer checked
    rows[third]["statistics"] = None
    old_improving = copy.deepcopy(old)
    {row["key"]: row for row in old_improving["rows"]}[fourth]["verdict"] = "FAIL"  # FAIL -> PASS: better

    comparison = compare_reports(old_improving, new)
    kinds = {(c.key, c.kind): c for c in comparison.changes()}
    assert kinds[(first, "verdict")].regression
    assert not kinds[(second, "api")].regression and not kinds[(second, "law")].regression
    assert kinds[(third, "verdict")].regression and kinds[(third, "verdict")].detail.startswith("no longer checked")
    assert not kinds[(fourth, "verdict")].regression
    assert {r.key for r in comparison.regressions} == {first, third}
    [third_row] = [r for r in comparison.rows if r.key == third]
    assert not third_row.tests and "no statistics in the new report" in third_row.not_compared[0].reason


def test_a_shift_is_a_regression_only_in_a_row_that_passed_under_the_same_law(reports):
    good, wide = reports["good"], copy.deepcopy(reports["wide"])
    wide["rows"][0]["verdict"] = "PASS"  # a shift that the single-run checks would not see
    assert compare_reports(good, wide).regressions[0].reasons == ("variance shift", "ks shift")

    failing_before = copy.deepcopy(good)
    failing_before["rows"][0]["verdict"] = "FAIL"
    comparison = compare_reports(failing_before, wide)
    assert comparison.exit_code == 0  # FAIL -> PASS, with shifts: reported, not a regression
    shifted = [c for c in comparison.changes() if c.kind == "variance"]
    assert shifted and "already FAIL" in shifted[0].detail

    new_law = copy.deepcopy(wide)
    new_law["rows"][0]["law"].update(sigma=0.0515, text="N(0, σ=0.0515)")
    comparison = compare_reports(good, new_law)
    assert comparison.exit_code == 0
    assert all("explained by the law change" in c.detail for c in comparison.changes() if c.test)


def test_nonfinite_values_appearing_is_a_regression(reports):
    new = copy.deepcopy(reports["good"])
    new["rows"][0]["statistics"]["nan"] = 3
    comparison = compare_reports(reports["good"], new)
    assert comparison.regressions[0].reasons == ("3 non-finite values",)
    assert compare_reports(new, reports["good"]).exit_code == 0  # they went away


def test_ks_is_skipped_when_the_grids_differ(reports):
    other = copy.deepcopy(reports["good"])
    grid = other["rows"][0]["statistics"]["grid"]
    grid["hi"] = grid["hi"] * 1.01
    [row] = compare_reports(reports["good"], other).rows
    assert [t.name for t in row.tests] == ["mean", "variance", "positions"]
    assert "grids differ" in row.not_compared[0].reason


def test_bad_alpha_is_an_input_error(reports):
    with pytest.raises(InputError, match="alpha"):
        compare_reports(reports["good"], reports["good"], alpha=0.0)


# ------------------------------------------------------------- the two-sample statistics


def summary_of(x: np.ndarray, grid: Grid | None = None, ref: float = 0.0) -> Summary:
    """The Summary of an array, folded in NumPy (power sums about ``ref``)."""
    d = x.astype(np.float64) - ref
    summary = Summary(ref=ref, grid=grid, count=len(x), minimum=float(x.min()), maximum=float(x.max()),
                      sums=np.array([np.sum(d**k) for k in range(1, 5)]))
    if grid is not None:
        summary.hist = np.bincount(grid.cell_of(x), minlength=grid.cells + 2).astype(np.int64)
    return summary


def test_mean_and_variance_statistics_match_their_formulas():
    rng = np.random.default_rng(7)
    x, y = rng.uniform(-1, 1, 100_000), rng.uniform(-1.02, 1.0, 50_000)
    old, new = summary_of(x), summary_of(y)

    z = (y.mean() - x.mean()) / math.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))
    test = mean_shift(old, new)
    assert test.statistic == pytest.approx(z, rel=1e-9)
    assert test.pvalue == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)

    m4 = lambda a: np.mean((a - a.mean()) ** 4)  # noqa: E731
    s1, s2 = x.var(ddof=1), y.var(ddof=1)
    z = (s2 - s1) / math.sqrt((m4(x) - s1**2) / len(x) + (m4(y) - s2**2) / len(y))
    test = variance_shift(old, new)
    assert test.statistic == pytest.approx(z, rel=1e-9)
    assert test.pvalue == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    # a uniform law has m4 = 1.8 sigma^4: the z uses it, not the normal 3 sigma^4
    assert m4(x) / x.var() ** 2 == pytest.approx(1.8, rel=0.01)


def test_identical_constant_samples_do_not_shift():
    constant = summary_of(np.full(1000, 0.25))
    for test in (mean_shift(constant, constant), variance_shift(constant, constant)):
        assert test.statistic == 0.0 and test.pvalue == 1.0
    moved = summary_of(np.full(1000, 0.5))
    assert mean_shift(constant, moved).pvalue == 0.0


def test_binned_ks_is_a_lower_bound_of_the_exact_two_sample_ks():
    rng = np.random.default_rng(11)
    law = Normal(0.0, 1.0)
    grid = Grid.for_law(law)
    for scale in (1.0, 1.02):
        x, y = rng.normal(0, 1, 100_000), rng.normal(0, scale, 80_000)
        test = ks_shift(summary_of(x, grid), summary_of(y, grid))
        exact = stats.ks_2samp(x, y, method="asymp")
        assert test.statistic <= exact.statistic + 1e-12
        assert test.statistic >= exact.statistic - 1e-3  # cells of mass 2^-16
        assert test.pvalue >= exact.pvalue * (1 - 1e-9)  # conservative
        assert test.pvalue == pytest.approx(exact.pvalue, rel=0.2, abs=1e-6)


def test_ks_on_grids_that_differ_is_not_compared():
    x = np.random.default_rng(3).normal(0, 1, 1000)
    result = ks_shift(summary_of(x, Grid.for_law(Normal(0, 1))), summary_of(x, Grid.for_law(Normal(0, 2))))
    assert isinstance(result, NotCompared) and "grids differ" in result.reason


def test_16bit_ks_is_exact():
    import ml_dtypes

    rng = np.random.default_rng(5)
    x = rng.normal(0, 0.05, 60_000).astype(ml_dtypes.bfloat16)
    y = rng.normal(0.001, 0.05, 40_000).astype(ml_dtypes.bfloat16)

    def summary16(a):
        patterns = np.bincount(a.view(np.uint16), minlength=PATTERNS).astype(np.int64)
        return pattern_summary(0.0, "bfloat16", patterns, np.zeros((3, 4)))

    test = ks_shift(summary16(x), summary16(y))
    exact = stats.ks_2samp(x.astype(np.float64), y.astype(np.float64), method="asymp")
    assert test.statistic == pytest.approx(exact.statistic, abs=1e-12)
    effective_n = len(x) * len(y) / (len(x) + len(y))
    assert test.pvalue == pytest.approx(special.kolmogorov(math.sqrt(effective_n) * exact.statistic), rel=1e-12)
    assert test.pvalue == pytest.approx(exact.pvalue, rel=0.01)  # scipy's finite-n approximation


# ------------------------------------------------------------------ the power line


def test_the_power_line_states_the_weakest_rows_reach_at_the_bonferroni_level(reports):
    comparison = compare_reports(reports["good"], reports["good_seed1"])
    power = comparison.power
    assert power.tests == len(comparison.tests) and power.level == pytest.approx(1e-6 / power.tests)
    reaches = {reach.name: reach for reach in power.reaches}
    assert list(reaches) == ["mean", "variance", "ks"]
    [row] = [r for r in comparison.rows if r.key == CUSTOM_KEY]
    n1, n2 = row.tests[0].counts
    assert n1 >= 1_000_000 and n2 >= 1_000_000
    z = stats.norm.isf(power.level / 2) + stats.norm.ppf(POWER)
    assert reaches["mean"].value == pytest.approx(z * math.sqrt(1 / n1 + 1 / n2), rel=1e-9)
    # a normal law has kurtosis 3: the variance reach is about z sqrt(2 (1/n1 + 1/n2)) / 2 in std
    assert reaches["variance"].value == pytest.approx(z * math.sqrt(2 * (1 / n1 + 1 / n2)) / 2, rel=0.02)
    assert 0 < reaches["ks"].value < 0.01
    text = rendered(comparison)
    assert "Power (probability 0.999, each test at alpha/" in text and "): flags a mean shift ≥ " in text
    assert comparison.to_dict()["power"]["reaches"][0]["name"] == "mean"
    # the planted 3% std error lies far beyond the reach: it was flagged, as the line promises
    assert reaches["variance"].value < 0.03 / 3


def test_constant_rows_state_no_reach():
    zeros = summary_of(np.zeros(320))
    assert shift_reach(mean_shift(zeros, zeros), 1e-9) is None
    assert shift_reach(variance_shift(zeros, zeros), 1e-9) is None


def test_a_shift_the_size_of_the_reach_is_flagged():
    rng = np.random.default_rng(17)
    law = Normal(0.0, 1.0)
    grid = Grid.for_law(law)
    n, level = 200_000, 1e-6 / 100
    old = summary_of(rng.normal(0, 1, n), grid)
    unmoved = summary_of(rng.normal(0, 1, n), grid)
    mean = shift_reach(mean_shift(old, unmoved), level)
    std = shift_reach(variance_shift(old, unmoved), level)
    ks = shift_reach(ks_shift(old, unmoved), level)
    assert mean < 0.03 and std < 0.03 and ks < 0.03
    for test in (mean_shift(old, unmoved), variance_shift(old, unmoved), ks_shift(old, unmoved)):
        assert test.pvalue > level  # a same-law pair is not flagged

    def flagged(test) -> bool:
        return test.pvalue <= level

    assert flagged(mean_shift(old, summary_of(rng.normal(mean, 1, n), grid)))
    assert flagged(variance_shift(old, summary_of(rng.normal(0, 1 - std, n), grid)))
    # a mean shift delta moves the normal CDF by at most 2 Phi(delta / 2) - 1: that many = the KS reach
    delta = 2 * stats.norm.ppf((1 + ks) / 2)
    assert flagged(ks_shift(old, summary_of(rng.normal(delta, 1, n), grid)))
    # the tests have no more power than that: a quarter of each reach goes unseen
    assert not flagged(mean_shift(old, summary_of(rng.normal(mean / 4, 1, n), grid)))
    assert not flagged(variance_shift(old, summary_of(rng.normal(0, 1 - std / 4, n), grid)))
