"""The JSON report against its schema (initcheck/schemas/report-2.schema.json).

Real reports, written by the command line in-process, must validate; reports
broken on purpose must not.  Sample sizes are small: the verdicts do not
matter here, only the shape of what is written.
"""

import copy
import json
import textwrap
from importlib import resources

import jsonschema
import numpy as np
import pytest

from initcheck import frameworks
from initcheck.cli import main
from initcheck.laws import Constant
from initcheck.report import REPORT_SCHEMA, json_safe, json_report

from helpers import check_rows, sampler_plan

SMALL = ["-n", "1e5", "--no-progress", "-q"]

CUSTOM = textwrap.dedent(
    """
    import numpy as np

    calls = 0

    def some_nan(shape, seed):
        x = np.random.default_rng(seed).normal(0.0, 0.05, shape).astype(np.float32)
        x[0, 0] = np.nan
        x[0, 1] = np.inf
        return x

    def all_nan(shape, seed):
        return np.full(shape, np.nan, dtype=np.float32)

    def overflow(shape, seed):  # x^4 overflows float64: power sums become "inf"
        x = np.random.default_rng(seed).normal(0.0, 0.05, shape)
        x[:, 0] *= 1e100
        return x

    def interrupted(shape, seed):  # Ctrl-C on the third draw
        global calls
        calls += 1
        if calls > 2:
            raise KeyboardInterrupt
        return np.random.default_rng(seed).normal(0.0, 0.05, shape).astype(np.float32)
    """
)


@pytest.fixture(scope="module")
def schema():
    text = resources.files("initcheck").joinpath("schemas/report-2.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@pytest.fixture(scope="module")
def validator(schema):
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def custom_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("custom") / "my_init.py"
    path.write_text(CUSTOM)
    return str(path)


def write_report(directory, *args, codes=(0, 1)) -> dict:
    """Run the command line in-process with --json; the report it wrote."""
    path = directory / "report.json"
    with pytest.raises(SystemExit) as exit_info:
        main([*args, *SMALL, "--json", str(path)])
    assert exit_info.value.code in codes, exit_info.value.code
    # strict JSON: no NaN/Infinity literals anywhere
    return json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))


def assert_valid(validator, report):
    errors = sorted(validator.iter_errors(report), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:10])


@pytest.fixture(scope="module")
def float_report(tmp_path_factory):
    return write_report(
        tmp_path_factory.mktemp("float"), "xavier", "--fan-in", "784", "--fan-out", "256", "-f", "torch,reference"
    )


def test_schema_is_valid_draft_2020_12(schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("report-2.schema.json")
    assert schema["title"] and schema["description"]
    assert schema["properties"]["schema"]["const"] == REPORT_SCHEMA


def _properties(node, path=""):
    """Every (path, subschema) of a named property anywhere in the schema."""
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{path}/{name}", sub
        for key, value in node.items():
            yield from _properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _properties(value, f"{path}/{index}")


def test_every_field_is_documented(schema):
    undocumented = [
        path for path, sub in _properties(schema)
        # conditional branches (if/then/else) restate fields documented in the main properties
        if "description" not in sub and not any(f"/{k}/" in path for k in ("if", "then", "else", "contains"))
    ]
    assert not undocumented, undocumented
    for name, definition in schema["$defs"].items():
        assert definition.get("description"), name


def test_float32_report_validates(validator, float_report):
    assert_valid(validator, float_report)
    rows = float_report["rows"]
    assert {r["framework"] for r in rows} == {"torch", "reference"}
    row = rows[0]
    assert row["dtype"] == "float32" and row["statistics"]["hist"]["length"] == row["statistics"]["grid"]["cells"] + 2
    assert row["statistics"]["exact_bit_patterns"] is None


def test_bfloat16_report_validates(validator, tmp_path):
    report = write_report(
        tmp_path, "kaiming", "--dtype", "bfloat16", "--fan-in", "784", "--fan-out", "256", "-f", "torch"
    )
    assert_valid(validator, report)
    statistics = report["rows"][0]["statistics"]
    assert statistics["exact_bit_patterns"] == "bfloat16" and statistics["grid"] is None
    assert statistics["patterns"]["length"] == 65536


def test_skip_rows_validate(validator, tmp_path):
    report = write_report(tmp_path, "lecun", "--fan-in", "784", "--fan-out", "256", "-f", "torch,reference")
    assert_valid(validator, report)
    skipped = [r for r in report["rows"] if r["verdict"] == "SKIP"]
    assert skipped and all(r["law"] is None and r["statistics"] is None and r["checks"] == [] for r in skipped)


def test_trunc_normal_and_layer_defaults_validate(validator, tmp_path):
    report = write_report(tmp_path, "trunc-normal", "--std", "0.02", "-f", "torch,reference")
    assert_valid(validator, report)
    assert report["rows"][0]["law"]["family"] == "truncated_normal"
    (tmp_path / "defaults").mkdir()
    report = write_report(tmp_path / "defaults", "defaults", "-f", "torch")
    assert_valid(validator, report)
    assert any(r["shape"] == [256] for r in report["rows"])  # a bias row


@pytest.mark.skipif(not frameworks.installed("keras"), reason="keras is not installed")
def test_constant_law_row_validates(validator, tmp_path):
    report = write_report(tmp_path, "defaults", "-f", "keras", "--fan-in", "784", "--fan-out", "256")
    assert_valid(validator, report)
    constant = [r for r in report["rows"] if r["law"] and r["law"]["family"] == "constant"]
    assert constant and constant[0]["checks"][-1]["name"] == "constant"


def test_custom_rows_with_nan_validate(validator, tmp_path, custom_file):
    report = write_report(tmp_path, "custom", f"{custom_file}:some_nan", "--expect", "normal", "--std", "0.05",
                          "--shape", "256,784", codes=(1,))
    assert_valid(validator, report)
    statistics = report["rows"][0]["statistics"]
    assert statistics["nan"] > 0 and statistics["posinf"] > 0 and report["rows"][0]["verdict"] == "FAIL"

    (tmp_path / "all").mkdir()
    report = write_report(tmp_path / "all", "custom", f"{custom_file}:all_nan", "--expect", "normal", "--std", "0.05",
                          "--shape", "256,784", codes=(1,))
    assert_valid(validator, report)
    statistics = report["rows"][0]["statistics"]
    assert statistics["count"] == 0 and statistics["min"] is None and "mean" not in statistics


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_non_finite_numbers_are_strings_and_validate(validator, tmp_path, custom_file):
    report = write_report(tmp_path, "custom", f"{custom_file}:overflow", "--expect", "normal", "--std", "0.05",
                          "--shape", "256,784", codes=(1,))
    assert_valid(validator, report)
    statistics = report["rows"][0]["statistics"]
    assert "inf" in statistics["power_sums"]


def test_interrupted_report_with_a_partial_row_validates(validator, tmp_path, custom_file):
    report = write_report(tmp_path, "custom", f"{custom_file}:interrupted", "--expect", "normal", "--std", "0.05",
                          "--shape", "64,100", codes=(130,))
    assert_valid(validator, report)
    assert report["settings"]["interrupted"] is True
    partial, rest = report["rows"]
    assert partial["partial"] and partial["reason"].startswith("partial (interrupted)")
    assert rest["verdict"] == "SKIP" and rest["reason"] == "not run: interrupted"


def test_constant_law_without_finite_values_validates(validator):
    """A constant law's check statistic is NaN when no value is finite: written "nan"."""
    plan = sampler_plan(Constant(0.0), lambda rng, n: np.full(n, np.nan), shape=(100, 10))
    results = check_rows([plan], samples=10_000)
    settings = {"samples": 10_000, "seed": 0, "alpha": 1e-6, "device": "cpu", "interrupted": False}
    env = {"initcheck": "0", "python": "3", "platform": "test", "frameworks": {}, "devices": {}}
    report = json.loads(json.dumps(json_safe(json_report(results, settings, env)), allow_nan=False))
    assert_valid(validator, report)
    check = report["rows"][0]["checks"][-1]
    assert (check["name"], check["statistic"], check["passed"]) == ("constant", "nan", False)


def _set(path, value):
    def mutate(report):
        node = report
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


def _delete(path):
    def mutate(report):
        node = report
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return mutate


def _skip_with_statistics(report):
    report["rows"][0]["verdict"] = "SKIP"


BROKEN = {
    "missing rows": _delete(["rows"]),
    "missing settings.seed": _delete(["settings", "seed"]),
    "missing row verdict": _delete(["rows", 0, "verdict"]),
    "missing statistics.power_sums": _delete(["rows", 0, "statistics", "power_sums"]),
    "missing check pvalue": _delete(["rows", 0, "checks", 1, "pvalue"]),
    "wrong schema version": _set(["schema"], "initcheck-report/1"),
    "seed as a string": _set(["settings", "seed"], "0"),
    "count not an integer": _set(["rows", 0, "statistics", "count"], 1.5),
    "passed as text": _set(["rows", 0, "checks", 0, "passed"], "yes"),
    "unknown verdict": _set(["rows", 0, "verdict"], "OK"),
    "shape as text": _set(["rows", 0, "shape"], "256x784"),
    "three power sums": _set(["rows", 0, "statistics", "power_sums"], [0.0, 1.0, 2.0]),
    "NaN spelled wrong": _set(["rows", 0, "statistics", "power_sums", 0], "NaN"),
    "unknown hist encoding": _set(["rows", 0, "statistics", "hist", "encoding"], "raw"),
    "extra row field": _set(["rows", 0, "colour"], "green"),
    "unknown law family": _set(["rows", 0, "law", "family"], "cauchy"),
    "pvalue above 1": _set(["rows", 0, "checks", 1, "pvalue"], 1.5),
    "SKIP row with statistics": _skip_with_statistics,
    "PASS row with a failed check": _set(["rows", 0, "checks", 0, "passed"], False),
    "negative verdict count": _set(["verdicts", "pass"], -1),
}


@pytest.mark.parametrize("breakage", BROKEN, ids=list(BROKEN))
def test_broken_reports_fail_validation(validator, float_report, breakage):
    assert float_report["rows"][0]["verdict"] == "PASS"
    report = copy.deepcopy(float_report)
    BROKEN[breakage](report)
    assert list(validator.iter_errors(report)), f"{breakage} was not caught"
