"""JUnit XML: rows as test cases, parsed back with ElementTree."""

import dataclasses
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from initcheck.frameworks.base import Skip
from initcheck.junit import junit_xml, write_junit
from initcheck.text import row_label as case_name
from initcheck.laws import Normal, Uniform
from initcheck.lowp import numpy_dtype
from initcheck.report import environment
from initcheck.runner import Row, run

from helpers import sampler_plan

SAMPLES = 500_000
SETTINGS = {"samples": SAMPLES, "seed": 0, "alpha": 1e-6, "device": "cpu", "strict": False, "interrupted": False}
#: Characters XML 1.0 cannot hold, even escaped, in a skip reason.
NASTY_REASON = "torch.nn.init has no <LeCun> & \"friends\"\x00\x1b[31m\x07"


def moved_bfloat16_uniform(rng, n):
    """bfloat16 U(-1, 1) that never returns +1 and puts that mass on -1 (PyTorch's CPU uniform_)."""
    x = rng.uniform(-1.0, 1.0, n).astype(np.float32).astype(numpy_dtype("bfloat16"))
    x[x == 1] = -1
    return x


def rows():
    law = Normal(0.0, 0.05)
    return [
        Row("xavier normal\n(against the paper's law)", "dense 784→256",
            sampler_plan(law, lambda rng, n: rng.normal(0.0, 0.05, n), shape=(500, 1000), name="numpy")),
        Row("too wide", "dense 784→256",
            sampler_plan(law, lambda rng, n: rng.normal(0.0, 0.06, n), shape=(500, 1000), name="numpy")),
        Row("lecun normal", "dense 784→256",
            Skip("torch", "torch.nn.init", NASTY_REASON, "cpu", "float32", (256, 784))),
        Row("uniform", "dense\x07 1000→500",
            sampler_plan(Uniform(-1.0, 1.0), moved_bfloat16_uniform, shape=(500, 1000), dtype="bfloat16",
                         name="torch")),
    ]


def environment_for_tests():
    env = environment([])
    env["frameworks"] = {"torch": "2.13.0+cpu", "numpy": "2.4"}
    env["devices"] = {"torch": ["cpu"], "numpy": ["cpu"]}
    return env


@pytest.fixture(scope="module")
def results():
    found = run(rows(), SAMPLES, 0, 1e-6, show_progress=False).results
    assert [r.verdict for r in found] == ["PASS", "FAIL", "SKIP", "WARN"], [(r.verdict, r.reason) for r in found]
    return found


@pytest.fixture(scope="module")
def document(results):
    text = junit_xml(results, SETTINGS, environment_for_tests())
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(text.encode("utf-8"))  # fails on any character XML 1.0 does not allow


def cases(root):
    return {case.get("name"): case for case in root.iter("testcase")}


def test_counts(document):
    assert document.tag == "testsuites" and document.get("name") == "initcheck"
    assert (document.get("tests"), document.get("failures"), document.get("errors"), document.get("skipped")) == (
        "4", "1", "0", "1"
    )
    assert float(document.get("time")) >= 0


def test_one_suite_per_framework(document):
    suites = {suite.get("name"): suite for suite in document.findall("testsuite")}
    assert list(suites) == ["initcheck.numpy", "initcheck.torch"]
    numpy_suite, torch_suite = suites["initcheck.numpy"], suites["initcheck.torch"]
    assert (numpy_suite.get("tests"), numpy_suite.get("failures"), numpy_suite.get("skipped")) == ("2", "1", "0")
    assert (torch_suite.get("tests"), torch_suite.get("failures"), torch_suite.get("skipped")) == ("2", "0", "1")
    for suite in suites.values():
        assert suite.get("errors") == "0" and suite.get("hostname") and suite.get("timestamp")
        assert float(suite.get("time")) >= 0
        assert {case.get("classname") for case in suite.iter("testcase")} == {
            "initcheck." + suite.get("name").split(".")[1]
        }


def test_properties(document):
    for suite in document.findall("testsuite"):
        properties = {p.get("name"): p.get("value") for p in suite.find("properties").findall("property")}
        for name in ("initcheck.version", "python.version", "platform", "seed", "alpha", "samples", "device"):
            assert properties.get(name), name
        assert properties["torch.version"] == "2.13.0+cpu" and properties["torch.devices"] == "cpu"
        assert (properties["samples"], properties["seed"], properties["alpha"]) == (str(SAMPLES), "0", "1e-06")
        assert properties["strict"] == "false"


def test_testcase_names_are_one_line(document):
    names = list(cases(document))
    assert names == [
        "xavier normal (against the paper's law) | dense 784→256 | float32 cpu",
        "too wide | dense 784→256 | float32 cpu",
        "lecun normal | dense 784→256 | float32 cpu",
        "uniform | dense 1000→500 | bfloat16 cpu",
    ]
    assert all("\n" not in name for name in names)
    for case in document.iter("testcase"):
        assert float(case.get("time")) >= 0


def test_failure_reads_like_the_table(document, results):
    case = cases(document)["too wide | dense 784→256 | float32 cpu"]
    (failure,) = case.findall("failure")
    assert failure.get("type") == "FAIL"
    reason = results[1].reason
    assert reason in failure.get("message") and failure.get("message").startswith("std ")
    body = failure.text
    assert f"FAIL: {reason}" in body
    assert "law: N(0, σ=0.05)" in body
    assert f"N: {SAMPLES:,}" in body
    assert "\nstd: 0.0599" in body and "(law 0.05, +19.8" in body and "\nmean: " in body and "\nKS D / crit: " in body
    assert "\n  variance: std 19.9% above the law's" in body  # each failing check's detail
    assert "power at N = 500,000 (probability 0.999): detects mean shift" in body
    assert case.find("skipped") is None


def test_skip(document, results):
    case = cases(document)["lecun normal | dense 784→256 | float32 cpu"]
    (skipped,) = case.findall("skipped")
    assert skipped.get("message") == 'torch.nn.init has no <LeCun> & "friends"[31m'
    assert case.find("failure") is None and case.get("classname") == "initcheck.torch"


def test_warn_passes_with_a_note(document, results):
    case = cases(document)["uniform | dense 1000→500 | bfloat16 cpu"]
    assert case.find("failure") is None and case.find("skipped") is None
    out = case.find("system-out").text
    assert out.startswith("WARN: bfloat16 mass moved between the bound atoms")
    assert "--strict" in out and "rounded to bfloat16" in out
    assert "  spikes: " in out  # the check the WARN rule explains


def test_pass_has_a_one_line_summary(document):
    case = cases(document)["xavier normal (against the paper's law) | dense 784→256 | float32 cpu"]
    assert list(case) == [case.find("system-out")]
    out = case.find("system-out").text
    assert out.startswith("PASS: N(0, σ=0.05), N = 500,000, mean ") and out.count("\n") == 1
    assert "KS D " in out and "detects " in out


def test_strict_warn_is_a_failure():
    plan = sampler_plan(Uniform(-1.0, 1.0), moved_bfloat16_uniform, shape=(500, 1000), dtype="bfloat16", name="torch")
    outcome = run([Row("uniform", "dense 1000→500", plan)], SAMPLES, 0, 1e-6, show_progress=False, strict=True)
    results = outcome.results
    root = ET.fromstring(junit_xml(results, {**SETTINGS, "strict": True}, environment_for_tests()))
    (failure,) = root.iter("failure")
    assert "(--strict)" in failure.get("message") and root.get("failures") == "1"


def test_write_junit_and_name(tmp_path, results):
    path = tmp_path / "junit.xml"
    write_junit(path, results, SETTINGS, environment_for_tests(), name="nightly")
    root = ET.parse(path).getroot()
    assert root.get("name") == "nightly"
    assert [s.get("name") for s in root.findall("testsuite")] == ["nightly.numpy", "nightly.torch"]
    assert {c.get("classname") for c in root.iter("testcase")} == {"initcheck.numpy", "initcheck.torch"}
    assert path.read_bytes().startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_no_rows_is_still_a_valid_document():
    root = ET.fromstring(junit_xml([], SETTINGS, environment_for_tests()))
    assert root.get("tests") == "0" and root.get("failures") == "0"
    (suite,) = root.findall("testsuite")
    assert suite.get("tests") == "0" and suite.find("properties") is not None


def test_duplicate_names_get_the_shape(results):
    twice = [results[0], results[0]]
    root = ET.fromstring(junit_xml(twice, SETTINGS, environment_for_tests()))
    names = [c.get("name") for c in root.iter("testcase")]
    assert len(set(names)) == 2 and names[1].endswith("| 500x1000 #2")
    assert case_name(results[0]) == names[0]


def test_partial_row_says_so(results):
    partial = dataclasses.replace(results[0], partial=True, reason="partial (interrupted). ")
    root = ET.fromstring(junit_xml([partial], {**SETTINGS, "interrupted": True}, environment_for_tests()))
    (out,) = root.iter("system-out")
    assert out.text.startswith("PASS (partial: interrupted")
