"""initcheck's CI suite across framework versions, each in a fresh virtual
environment, and ``initcheck compare`` between the versions of each framework.

    nox -s versions            # every pinned environment below, then compare
    nox -s jax-0.4.38          # one pinned environment: its suite report only
    nox -s versions --no-dependencies   # compare the reports already in .nox/reports
    nox -l                     # the sessions
    nox -s requirements -- "jax==0.9.2 jaxlib==0.9.2" "jax==0.10.2 jaxlib==0.10.2"

Each pinned session (:data:`PINNED`, one per framework version) gets its own
new virtual environment under ``.nox/<session>/`` (nox recreates it on every
run unless ``-r``), installs initcheck from this working tree together with
the pinned framework and nothing else, and runs

    initcheck suite .nox/reports/ci-<framework>.toml --json .nox/reports/<session>.json

``ci-<framework>.toml`` is ``configs/ci.toml`` with one line added to its
``[defaults]``, ``frameworks = ["<framework>", "reference"]`` (``initcheck
suite`` has no ``-f``): the pinned framework's rows and the NumPy reference
rows, a control that must not move between two environments with the same
NumPy.  Without it, the suite runs every adapter whose import name the
environment has, and adapters that need a second package (``keras-jax`` needs
Keras beside JAX) stop the run.
``versions`` requires every pinned session, then, in an environment of its
own with initcheck and ml_dtypes alone, runs ``initcheck compare OLD.json NEW.json`` on each
consecutive pair of a framework's versions (old first, as listed) and writes
into ``benchmarks/results/versions/``: one ``<old>_vs_<new>.txt`` per pair
(machine, versions, commands, the comparison as printed) and ``SUMMARY.txt``
(each environment's verdict counts and times, each pair's outcome and power).
The JSON reports stay in ``.nox/reports/`` (a few MB each, with every row's
histogram).

A failing row is a finding, not a broken session: the suite's exit 1 and
compare's exit 1 (a regression) are recorded in the files, and the session
goes on; a bad suite (exit 2) or a suite with nothing checked (exit 3) stops it.

PyTorch is left out of the pinned environments: any release other than the
``torch==2.13.0`` CPU wheel on this machine is a multi-GB CUDA download.
``requirements`` (one environment per positional argument, each argument one
environment's pip requirements separated by spaces) is for other versions.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
SUITE = "configs/ci.toml"
REPORTS = ROOT / ".nox" / "reports"
RESULTS = ROOT / "benchmarks" / "results" / "versions"
#: Wide enough that compare's table keeps one line per change.
COLUMNS = "200"
#: compare reads the bfloat16 rows' bit patterns through ml_dtypes (which
#: JAX and TensorFlow bring along; the compare environment has neither).
COMPARE_NEEDS = "ml_dtypes==0.7.0"
#: Exit codes of ``initcheck suite`` and ``compare`` that are results, not errors.
RESULT_CODES = [0, 1]


@dataclass(frozen=True)
class Pinned:
    """One framework at one version: the adapter name ``-f`` takes, the version
    compared, and the exact pip requirements of its environment."""

    framework: str
    version: str
    requirements: tuple[str, ...]

    @property
    def session(self) -> str:
        return f"{self.framework}-{self.version}"


#: Each framework's versions, old to new.  JAX: 0.4.38 is the last 0.4 release
#: (before 0.5.0 made the partitionable threefry PRNG the default), 0.10.2 the
#: project's.  Keras 3 on TensorFlow 2.21.0, which requires keras>=3.12.0: the
#: oldest Keras it accepts, and the project's 3.15.1.
PINNED = (
    Pinned("jax", "0.4.38", ("jax==0.4.38", "jaxlib==0.4.38")),
    Pinned("jax", "0.10.2", ("jax==0.10.2", "jaxlib==0.10.2")),
    Pinned("keras", "3.12.0", ("keras==3.12.0", "tensorflow==2.21.0")),
    Pinned("keras", "3.15.1", ("keras==3.15.1", "tensorflow==2.21.0")),
)

nox.options.sessions = ["versions"]


def pairs(pinned=PINNED) -> list[tuple[Pinned, Pinned]]:
    """Consecutive versions of each framework, in the order listed."""
    by_framework: dict[str, list[Pinned]] = {}
    for pin in pinned:
        by_framework.setdefault(pin.framework, []).append(pin)
    return [(old, new) for pins in by_framework.values() for old, new in zip(pins, pins[1:])]


def report_path(pin: Pinned) -> Path:
    return REPORTS / f"{pin.session}.json"


def _timing_path(pin: Pinned) -> Path:
    return REPORTS / f"{pin.session}.timing.json"


def _command(words) -> str:
    return " ".join(shlex.quote(str(w)) for w in words)


def _relative(path: Path) -> str:
    return os.path.relpath(path, ROOT)


def suite_path(framework: str) -> Path:
    return REPORTS / f"ci-{framework}.toml"


def framework_suite(framework: str, text: str) -> str:
    """The suite ``text`` restricted to ``framework`` and the reference: a
    ``frameworks`` line right under its ``[defaults]`` (which must exist and
    not set ``frameworks`` already)."""
    if re.search(r"^\s*frameworks\s*=", text, re.MULTILINE):
        raise ValueError(f"{SUITE} names its frameworks already")
    line = f'frameworks = ["{framework}", "reference"]   # added by noxfile.py'
    restricted, count = re.subn(r"^\[defaults\][^\n]*$", lambda m: f"{m.group(0)}\n{line}", text, count=1,
                                flags=re.MULTILINE)
    if not count:
        raise ValueError(f"{SUITE} has no [defaults] table")
    return restricted


def _suite_command(pin: Pinned) -> list[str]:
    return ["initcheck", "suite", _relative(suite_path(pin.framework)), "--json", _relative(report_path(pin)),
            "--no-progress", "--quiet"]


def _run_pinned(session: nox.Session, pin: Pinned) -> None:
    REPORTS.mkdir(parents=True, exist_ok=True)
    started = time.time()
    suite_path(pin.framework).write_text(framework_suite(pin.framework, (ROOT / SUITE).read_text()))
    session.install(".", *pin.requirements)
    installed = time.time()
    session.run(*_suite_command(pin), success_codes=RESULT_CODES, env={"COLUMNS": COLUMNS})
    finished = time.time()
    _timing_path(pin).write_text(json.dumps({
        "session": pin.session, "requirements": list(pin.requirements), "started": started,
        "install_s": installed - started, "suite_s": finished - installed,
    }))


def _define_pinned(pin: Pinned):
    def run(session: nox.Session) -> None:
        _run_pinned(session, pin)

    run.__doc__ = f"initcheck suite {SUITE} on {pin.framework} with {' '.join(pin.requirements)}"
    return nox.session(name=pin.session, venv_backend="venv")(run)


for _pin in PINNED:
    globals()[f"suite_{_pin.session.replace('-', '_').replace('.', '_')}"] = _define_pinned(_pin)


# ------------------------------------------------------------------ compare, files


def machine_text() -> str:
    """CPU model, logical cores and platform of this machine."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            found = re.search(r"^model name\s*:\s*(.+)$", handle.read(), re.MULTILINE)
        model = found.group(1).strip() if found else model
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical cores, {platform.platform()}, Python {platform.python_version()}"


def _verdicts(report: dict) -> str:
    counts: dict[str, int] = {}
    for row in report.get("rows", []):
        counts[row.get("verdict", "SKIP")] = counts.get(row.get("verdict", "SKIP"), 0) + 1
    return ", ".join(f"{counts[v]} {v}" for v in ("PASS", "WARN", "FAIL", "SKIP") if v in counts)


def _framework_versions(report: dict) -> str:
    versions = (report.get("environment") or {}).get("frameworks") or {}
    return ", ".join(f"{name} {version}" for name, version in versions.items()) or "?"


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def _pair_name(old: Pinned, new: Pinned) -> str:
    return f"{old.session}_vs_{new.session}"


@nox.session(venv_backend="venv", requires=[pin.session for pin in PINNED])
def versions(session: nox.Session) -> None:
    """Every pinned environment's suite, then initcheck compare on each pair of versions."""
    session.install(".", COMPARE_NEEDS)
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = machine_text()
    timings = {pin.session: json.loads(_timing_path(pin).read_text()) for pin in PINNED}
    reports = {pin.session: json.loads(report_path(pin).read_text()) for pin in PINNED}
    lines = [f"initcheck across framework versions: nox -s versions (noxfile.py), suite {SUITE}",
             f"machine: {machine}", "", "environments (fresh virtual environment each, initcheck from the "
             "working tree):"]
    for pin in PINNED:
        timing, report = timings[pin.session], reports[pin.session]
        lines.append(f"  {pin.session}: pip install . {' '.join(pin.requirements)} "
                     f"({_seconds(timing['install_s'])}); suite {_seconds(timing['suite_s'])}, "
                     f"exit {report.get('exit_code')}: {len(report.get('rows', []))} rows, {_verdicts(report)} "
                     f"[{_framework_versions(report)}]")
        lines.append(f"    {_command(_suite_command(pin))}")
    lines += ["", "comparisons (initcheck compare OLD NEW, Holm over every two-sample test, alpha 1e-6):"]
    for old, new in pairs():
        out_json = REPORTS / f"{_pair_name(old, new)}.compare.json"
        command = ["initcheck", "compare", _relative(report_path(old)), _relative(report_path(new)),
                   "--json", _relative(out_json)]
        printed = session.run(*command, success_codes=RESULT_CODES, silent=True,
                              env={"COLUMNS": COLUMNS, "NO_COLOR": "1"})
        comparison = json.loads(out_json.read_text())
        header = [f"initcheck compare: {old.session} -> {new.session}",
                  f"machine: {machine}",
                  f"old: {_framework_versions(reports[old.session])} ({' '.join(old.requirements)})",
                  f"new: {_framework_versions(reports[new.session])} ({' '.join(new.requirements)})",
                  f"reports: {_command(_suite_command(old))}",
                  f"         {_command(_suite_command(new))}",
                  f"command: {_command(command)}  (exit {comparison['exit_code']})", ""]
        (RESULTS / f"{_pair_name(old, new)}.txt").write_text("\n".join(header) + (printed or "").rstrip() + "\n")
        session.log(f"{_pair_name(old, new)}: exit {comparison['exit_code']}")
        lines.append(f"  {old.session} -> {new.session}: " + _comparison_line(comparison))
        lines += [f"    {change}" for change in _changed_rows(comparison)]
        if comparison.get("power"):
            lines.append(f"    {comparison['power']['text']}")
    first_start = min(t["started"] for t in timings.values())
    lines += ["", f"from the first environment's start to the end of compare: {_seconds(time.time() - first_start)} "
              "wall (installs, suites, comparisons; with --no-dependencies, the time since the reports were made)"]
    (RESULTS / "SUMMARY.txt").write_text("\n".join(lines) + "\n")
    session.log("\n".join(lines))


def _comparison_line(comparison: dict) -> str:
    changed = {c["key"] for c in comparison["changes"] if c["kind"] not in ("added", "gone")}
    regressions = len(comparison["regressions"])
    return (f"{comparison['matched']} rows matched, {len(comparison['added'])} added, "
            f"{len(comparison['gone'])} gone, {comparison['tests']} two-sample tests; "
            f"{len(changed)} rows changed, {regressions} regression{'' if regressions == 1 else 's'} "
            f"(exit {comparison['exit_code']})")


def _changed_rows(comparison: dict) -> list[str]:
    return [f"{c['key']}: {c['kind']} {c['old']} -> {c['new']}" + (f" ({c['detail']})" if c["detail"] else "")
            for c in comparison["changes"]]


# ------------------------------------------------------------- any requirements


@nox.session(venv_backend="venv")
def requirements(session: nox.Session) -> None:
    """One fresh environment per positional argument (its pip requirements), the suite in each, compare on each
    consecutive pair: nox -s requirements -- [--suite FILE] "REQ ..." "REQ ..."."""
    args = list(session.posargs)
    suite = SUITE
    if "--suite" in args:
        at = args.index("--suite")
        suite = args[at + 1]
        del args[at : at + 2]
    if not args:
        session.error('give each environment\'s requirements, e.g. nox -s requirements -- "jax==0.10.2 '
                      'jaxlib==0.10.2"')
    REPORTS.mkdir(parents=True, exist_ok=True)
    written, initcheck = [], None
    for number, requirement in enumerate(args, start=1):
        slug = re.sub(r"[^A-Za-z0-9.=_-]+", "_", requirement)
        env = ROOT / ".nox" / "requirements-envs" / f"{number}-{slug}"
        session.run(sys.executable, "-m", "venv", "--clear", str(env), external=True)
        python = str(env / "bin" / "python")
        session.run(python, "-m", "pip", "install", "-q", str(ROOT), *requirement.split(), external=True)
        report = REPORTS / f"requirements-{number}-{slug}.json"
        initcheck = str(env / "bin" / "initcheck")
        session.run(initcheck, "suite", suite, "--json", str(report), "--no-progress", "--quiet",
                    external=True, success_codes=RESULT_CODES)
        written.append(report)
    for old, new in zip(written, written[1:]):
        session.run(initcheck, "compare", str(old), str(new), external=True, success_codes=RESULT_CODES)
