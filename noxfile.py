"""Run initcheck's CI suite in fresh environments, one per framework version,
then compare each report with the one before it: the local twin of
examples/github-actions.yml.

    nox -s versions -- torch==2.12.0 torch==2.13.0
    nox -s versions -- torch==2.13.0 "jax==0.10.2 jaxlib==0.10.2"
    nox -s versions -- --suite configs/default.toml torch==2.12.0 torch==2.13.0

Each positional argument is one environment's pip requirements (several in one
quoted argument, separated by spaces); each gets its own new virtual
environment under .nox/versions-envs/<n>-<requirements>/, initcheck installed from this checkout,
and writes .nox/reports/<n>-<requirements>.json and .xml.  ``initcheck
compare`` then runs on every consecutive pair; the session fails when a later
version regressed.  Without arguments it uses torch==2.13.0 alone.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["versions"]
ROOT = Path(__file__).resolve().parent


@nox.session(python=False)
def versions(session: nox.Session) -> None:
    args = list(session.posargs)
    suite = "configs/ci.toml"
    if "--suite" in args:
        at = args.index("--suite")
        suite = args[at + 1]
        del args[at : at + 2]
    requirements = args or ["torch==2.13.0"]
    envs, reports = ROOT / ".nox" / "versions-envs", ROOT / ".nox" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    written, initcheck = [], None
    for number, requirement in enumerate(requirements, start=1):
        slug = re.sub(r"[^A-Za-z0-9.=_-]+", "_", requirement)
        env = envs / f"{number}-{slug}"
        shutil.rmtree(env, ignore_errors=True)
        session.run("python3", "-m", "venv", str(env), external=True)
        python = str(env / "bin" / "python")
        session.run(python, "-m", "pip", "install", "-q", *requirement.split(), external=True)
        session.run(python, "-m", "pip", "install", "-q", "-e", str(ROOT), external=True)
        report = reports / f"{number}-{slug}.json"
        initcheck = str(env / "bin" / "initcheck")
        session.run(
            initcheck, "suite", suite, "--json", str(report),
            "--junit", str(report.with_suffix(".xml")), "--no-progress", "--quiet",
            external=True, success_codes=[0, 1],  # a failing row is a finding, not a broken session
        )
        written.append(report)
    for old, new in zip(written, written[1:]):
        session.run(initcheck, "compare", str(old), str(new), external=True)
