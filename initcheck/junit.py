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
at a uniform law's bounds, see :func:`initcheck.policy.decide`) is a passing
test case whose output says WARN; under ``--strict`` such rows are FAIL
already.  ``errors`` is always 0: a row either ran or was skipped.
"""

from __future__ import annotations

import datetime
import math
import socket
import xml.etree.ElementTree as ET

from initcheck.results import RowResult
from initcheck.text import clean as _clean, failure_text, flat as _flat, pass_line, row_label, warn_text

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
            label = row_label(result)
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
                failure.text = failure_text(result) if result.summary is not None else _clean(result.reason)
            elif result.verdict == "SKIP":
                ET.SubElement(case, "skipped", message=_flat(result.reason) or "skipped")
            elif result.verdict == "WARN":
                ET.SubElement(case, "system-out").text = warn_text(result)
            elif result.summary is not None:
                ET.SubElement(case, "system-out").text = pass_line(result)
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(totals[key]))
    root.set("time", _seconds(totals["time"]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path, results: list[RowResult], settings: dict, env: dict, name: str = "initcheck") -> None:
    """Write :func:`junit_xml` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(junit_xml(results, settings, env, name))
