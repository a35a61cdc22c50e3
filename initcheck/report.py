"""Present results: the rich table, the JSON report and the exit code.

Exit codes: 0 when nothing failed, 1 when any check failed, 2 for usage and
input errors (raised before any row runs), 3 when every row was skipped
(nothing was checked), 130 after Ctrl-C and 143 after SIGTERM.
"""

from __future__ import annotations

import datetime
import json
import math
import platform
import sys

from rich.console import Console
from rich.table import Table
from rich.text import Text

import initcheck
from initcheck.results import RowResult

REPORT_SCHEMA = "initcheck-report/2"
_VERDICT_STYLE = {"PASS": "bold green", "WARN": "bold yellow", "FAIL": "bold red", "SKIP": "dim"}


def make_console() -> Console:
    """stdout console; logs and pipes get 160 columns rather than rich's 80."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


#: Exit code of a command whose every row was skipped: it checked nothing.
NOTHING_CHECKED = 3


def exit_code(results: list[RowResult]) -> int:
    """1 when any row failed, 3 when every row was skipped, else 0."""
    if any(r.verdict == "FAIL" for r in results):
        return 1
    return NOTHING_CHECKED if all(r.verdict == "SKIP" for r in results) else 0


def _mark(passed: bool | None) -> str:
    return "" if passed is None or passed else " ✗"


def _cells(result: RowResult) -> list:
    """The statistics columns of one row, each flagged when its check failed."""
    summary = result.summary
    if summary is None:
        return ["", "", "", "", "", ""]
    n = f"{summary.total:,}"
    bounds = f"[{summary.minimum:.3g}, {summary.maximum:.3g}]" if summary.count else "no finite value"
    if result.check("mean") is None:  # a constant law, or too few finite values
        failed = [c for c in result.checks if not c.passed]
        return [n, "", "", bounds + (" ✗" if failed else ""), "", ""]
    mean = result.check("mean")
    variance = result.check("variance")
    ks = result.check("ks")
    support = result.check("support")
    finite = result.check("finite")
    mean_text = f"{summary.mean:.3g}\nz={mean.statistic:+.1f}{_mark(mean.passed)}"
    relative = summary.std / result.law.std - 1.0
    std_text = f"{summary.std:.4g} ({relative * 100:+.2f}%)\nz={variance.statistic:+.1f}{_mark(variance.passed)}"
    if support is not None:
        bounds += _mark(support.passed)
    if finite.statistic:
        bounds += f"\n{int(finite.statistic):,} non-finite ✗"
    ks_text = f"{ks.statistic:.2g} / {ks.threshold:.2g}{_mark(ks.passed)}"
    others = [c for c in result.checks if c.name in ("spikes", "independence")]
    other_text = "\n".join(f"{c.name}{' ✗' if not c.passed else ' ok'}" for c in others)
    return [n, mean_text, std_text, bounds, ks_text, other_text]


def render_table(results: list[RowResult], console: Console, title: str = "") -> None:
    table = Table(title=title or None, show_lines=True, title_justify="left")
    table.add_column("framework / API", overflow="fold", max_width=38)
    table.add_column("initializer\nlayer", overflow="fold")
    table.add_column("law")
    table.add_column("N", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("std (vs law)", justify="right")
    table.add_column("min, max", justify="right")
    table.add_column("KS D / crit", justify="right")
    table.add_column("other")
    table.add_column("verdict")
    for result in results:
        who = Text(result.framework, style="bold")
        who.append(f"\n{result.api}", style="dim")
        where = f"\n{result.dtype} {result.device}" if result.dtype and result.dtype != "?" else ""
        verdict = Text(result.verdict, style=_VERDICT_STYLE[result.verdict])
        if result.reason:
            verdict.append(f"\n{result.reason}", style="default")
        table.add_row(
            who,
            (f"{result.name}\n" if result.name else "") + f"{result.initializer}\n{result.layer}{where}",
            result.law.describe() if result.law else "",
            *_cells(result),
            verdict,
        )
    console.print(table)


def render_footer(results: list[RowResult], alpha: float, console: Console) -> None:
    tested = [c for r in results for c in r.checks if c.statistical]
    counts = {v: sum(r.verdict == v for r in results) for v in _VERDICT_STYLE}
    line = ", ".join(f"{count} {verdict}" for verdict, count in counts.items() if count)
    console.print(f"{line}.  Family-wise alpha {alpha:g}, Holm over {len(tested)} statistical checks.")
    powered = [r for r in results if r.summary is not None and r.check("variance") is not None]
    if powered:
        weakest = min(powered, key=lambda r: r.summary.count)
        texts = [c.power_text for c in weakest.checks if c.power_text]
        console.print(
            f"Power at N = {weakest.summary.count:,} (probability {0.999}): detects " + ", ".join(texts) + "."
        )


def environment(frameworks) -> dict:
    versions, devices = {}, {}
    for framework in frameworks:
        try:
            versions[framework.name] = framework.version()
            devices[framework.name] = framework.devices()
        except Exception as error:  # a broken install is worth reporting, not crashing on
            versions[framework.name] = f"unavailable: {error}"
    return {
        "initcheck": initcheck.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "frameworks": versions,
        "devices": devices,
    }


def json_report(results: list[RowResult], settings: dict, env: dict, code: int | None = None) -> dict:
    """The report of schema initcheck-report/2; ``code`` is the process's exit
    code when it is not the results' own (after Ctrl-C or SIGTERM)."""
    counts = {v.lower(): sum(r.verdict == v for r in results) for v in _VERDICT_STYLE}
    return {
        "schema": REPORT_SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "environment": env,
        "settings": settings,
        "verdicts": counts,
        "exit_code": exit_code(results) if code is None else code,
        "rows": [r.to_dict() for r in results],
    }


def json_safe(value):
    """JSON-safe copy: NumPy scalars to Python, non-finite floats to strings."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_json(path: str, report: dict) -> None:
    with open(path, "w") as handle:
        json.dump(json_safe(report), handle, indent=2, allow_nan=False)
        handle.write("\n")
