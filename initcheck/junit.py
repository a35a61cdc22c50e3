"""JUnit XML: the rows as test cases, for CI test reporters.

The layout is the common "JUnit" format as Jenkins reads it (also read by
GitLab's test reports, dorny/test-reporter and mikepenz/action-junit-report):

    <testsuites name tests failures errors skipped time>
      <testsuite name="NAME.FRAMEWORK" id package tests failures errors skipped
                 time timestamp hostname>          one per framework, in row order
        <properties>                                versions and the command's settings
        <testcase classname="initcheck.FRAMEWORK"
                  name="INITIALIZER | LAYER | DTYPE DEVICE" time="SECONDS">
          <failure message="REASON" type="FAIL">   FAIL: the row as the table shows it
          <skipped message="REASON"/>              SKIP
          <system-out>                             PASS: one line; WARN: the cause
        </testcase>

One suite per framework lets every reporter group the rows by framework
(Jenkins and GitLab also group by ``classname``).  A WARN row (16-bit rounding
at a uniform law's bounds, see :func:`initcheck.runner.decide`) is a passing
test case whose output says WARN; under ``--strict`` such rows are FAIL
already.  ``errors`` is always 0: a row either ran or was skipped.
"""

from __future__ import annotations

import datetime
import math
import re
import socket
import xml.etree.ElementTree as ET

from initcheck.checks import POWER
from initcheck.results import RowResult

#: Characters XML 1.0 does not allow, even escaped.
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text) -> str:
    """``text`` as a string XML 1.0 can hold (ElementTree escapes the rest)."""
    return _INVALID_XML.sub("", str(text))


def _flat(text) -> str:
    """One line: multi-line labels (initializer, layer) joined with spaces."""
    return " ".join(_clean(text).split())


def _number(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _signed(value: float, decimals: int = 2) -> str:
    """A z score or a percentage: fixed decimals, unless it is huge (a broken sampler)."""
    return f"{value:+.{decimals}f}" if abs(value) < 1e6 else f"{value:+.3g}"


def case_name(result: RowResult) -> str:
    """``initializer | layer | dtype device``, each flattened to one line."""
    parts = [_flat(result.initializer), _flat(result.layer)]
    where = " ".join(p for p in (result.dtype, result.device) if p and p != "?")
    if where:
        parts.append(_flat(where))
    return " | ".join(p for p in parts if p)


def _law_text(result: RowResult) -> str:
    text = result.law.describe()
    if result.summary is not None and result.summary.dtype16:
        text += f", rounded to {result.summary.dtype16} (exact bit-pattern counts)"
    return text


def _table_lines(result: RowResult) -> list[str]:
    """The row as the table shows it: law, N, mean and std against the law,
    bounds, KS, the other checks."""
    summary, law = result.summary, result.law
    lines = [
        f"framework: {result.framework}",
        f"api: {_flat(result.api)}",
        f"shape: {'x'.join(map(str, result.shape)) or '?'}",
        f"law: {_law_text(result)}",
    ]
    count = f"N: {summary.total:,}"
    if summary.nonfinite:
        count += f" ({summary.count:,} finite, {summary.nan:,} NaN, {summary.posinf:,} +Inf, {summary.neginf:,} -Inf)"
    lines.append(count)
    mean, variance = result.check("mean"), result.check("variance")
    if mean is not None:
        lines.append(f"mean: {summary.mean:.4g} (law {law.mean:.4g}), z = {_signed(mean.statistic)}")
    if variance is not None:
        relative = summary.std / law.std - 1.0
        lines.append(
            f"std: {summary.std:.4g} (law {law.std:.4g}, {_signed(relative * 100)}%), z = {_signed(variance.statistic)}"
        )
    if summary.count:
        lines.append(f"min, max: [{summary.minimum:.4g}, {summary.maximum:.4g}]")
    else:
        lines.append("min, max: no finite value")
    ks = result.check("ks")
    if ks is not None:
        lines.append(f"KS D / crit: {ks.statistic:.3g} / {_number(ks.threshold, '.3g')}")
    return lines


def _check_line(check) -> str:
    line = f"{check.name}: {_clean(check.detail)}"
    if check.statistical:
        line += (
            f" (statistic {_number(check.statistic, '.4g')}, threshold {_number(check.threshold, '.4g')},"
            f" p = {check.pvalue:.3g}, Holm level {_number(check.level, '.3g')})"
        )
    return line


def _power_line(result: RowResult) -> str | None:
    texts = [c.power_text for c in result.checks if c.power_text]
    if not texts or result.summary is None:
        return None
    return f"power at N = {result.summary.count:,} (probability {POWER}): detects " + ", ".join(texts)


def _failure_text(result: RowResult) -> str:
    lines = [f"FAIL: {_clean(result.reason)}", *_table_lines(result), "failed checks:"]
    lines += [f"  {_check_line(c)}" for c in result.checks if not c.passed]
    passed = [c.name for c in result.checks if c.passed]
    if passed:
        lines.append(f"passed checks: {', '.join(passed)}")
    power = _power_line(result)
    if power:
        lines.append(power)
    return "\n".join(lines) + "\n"


def _pass_line(result: RowResult) -> str:
    """One line: the law, N, and what each check saw."""
    summary = result.summary
    verdict = "PASS (partial: interrupted, checked on what was drawn)" if result.partial else "PASS"
    parts = [f"{verdict}: {_law_text(result)}", f"N = {summary.total:,}"]
    mean, variance, ks = result.check("mean"), result.check("variance"), result.check("ks")
    if mean is not None:
        parts.append(f"mean {summary.mean:.3g} (z = {_signed(mean.statistic, 1)})")
    if variance is not None:
        relative = summary.std / result.law.std - 1.0
        parts.append(f"std {summary.std:.4g} ({_signed(relative * 100)}%, z = {_signed(variance.statistic, 1)})")
    if ks is not None:
        parts.append(f"KS D {ks.statistic:.2g} / {_number(ks.threshold, '.2g')}")
    constant = result.check("constant")
    if constant is not None:
        parts.append(_clean(constant.detail))
    others = [c.name for c in result.checks if c.name in ("finite", "support", "spikes", "independence")]
    if others:
        parts.append(" ".join(f"{name} ok" for name in others))
    power = [c.power_text for c in result.checks if c.power_text]
    line = ", ".join(parts)
    if power:
        line += f"; detects {', '.join(power)}"
    return line + "\n"


def _warn_text(result: RowResult) -> str:
    lines = [
        f"WARN: {_clean(result.reason)}",
        "WARN is not a failure: 16-bit rounding at the bounds explains every failing check. "
        "Under --strict this row is FAIL.",
        *_table_lines(result),
        "checks that fail before the WARN rule:",
    ]
    lines += [f"  {_check_line(c)}" for c in result.checks if not c.passed]
    power = _power_line(result)
    if power:
        lines.append(power)
    return "\n".join(lines) + "\n"


def _seconds(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) and value >= 0 else "0.000"


def _properties(parent: ET.Element, settings: dict, env: dict) -> None:
    properties = ET.SubElement(parent, "properties")

    def add(name: str, value) -> None:
        if value is None:
            return
        if isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value))
        elif isinstance(value, bool):
            value = "true" if value else "false"
        ET.SubElement(properties, "property", name=_clean(name), value=_flat(value))

    add("initcheck.version", env.get("initcheck"))
    add("python.version", env.get("python"))
    add("platform", env.get("platform"))
    for framework, version in (env.get("frameworks") or {}).items():
        add(f"{framework}.version", version)
    for framework, devices in (env.get("devices") or {}).items():
        add(f"{framework}.devices", devices)
    for key, value in settings.items():
        add(key, value)


def junit_xml(results: list[RowResult], settings: dict, env: dict, name: str = "initcheck") -> str:
    """The rows as a JUnit XML document (a string with its XML declaration).

    ``settings`` and ``env`` are what the JSON report records (``samples``,
    ``seed``, ``alpha``, ``device``... and :func:`initcheck.report.environment`);
    they become each suite's ``<properties>``."""
    timestamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    hostname = socket.gethostname() or "localhost"
    frameworks = list(dict.fromkeys(r.framework for r in results)) or [""]
    root = ET.Element("testsuites", name=_clean(name))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
    for index, framework in enumerate(frameworks):
        rows = [r for r in results if r.framework == framework]
        suite_name = f"{name}.{framework}" if framework else name
        counts = {
            "tests": len(rows),
            "failures": sum(r.verdict == "FAIL" for r in rows),
            "errors": 0,
            "skipped": sum(r.verdict == "SKIP" for r in rows),
            "time": sum(r.seconds for r in rows),
        }
        for key, value in counts.items():
            totals[key] += value
        suite = ET.SubElement(
            root,
            "testsuite",
            name=_flat(suite_name),
            id=str(index),
            package=_flat(name),
            tests=str(counts["tests"]),
            failures=str(counts["failures"]),
            errors="0",
            skipped=str(counts["skipped"]),
            time=_seconds(counts["time"]),
            timestamp=timestamp,
            hostname=_clean(hostname),
        )
        _properties(suite, settings, env)
        seen: dict[str, int] = {}
        for result in rows:
            label = case_name(result)
            seen[label] = seen.get(label, 0) + 1
            if seen[label] > 1:  # same labels, another shape: keep names unique within the class
                label += f" | {'x'.join(map(str, result.shape))} #{seen[label]}"
            case = ET.SubElement(
                suite,
                "testcase",
                name=label,
                classname=_flat(f"initcheck.{framework}"),
                time=_seconds(result.seconds),
            )
            if result.verdict == "FAIL":
                failure = ET.SubElement(case, "failure", message=_flat(result.reason) or "FAIL", type="FAIL")
                failure.text = _failure_text(result) if result.summary is not None else _clean(result.reason)
            elif result.verdict == "SKIP":
                ET.SubElement(case, "skipped", message=_flat(result.reason) or "skipped")
            elif result.verdict == "WARN":
                ET.SubElement(case, "system-out").text = _warn_text(result)
            elif result.summary is not None:
                ET.SubElement(case, "system-out").text = _pass_line(result)
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(totals[key]))
    root.set("time", _seconds(totals["time"]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path, results: list[RowResult], settings: dict, env: dict, name: str = "initcheck") -> None:
    """Write :func:`junit_xml` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(junit_xml(results, settings, env, name))
