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

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

import initcheck
from initcheck.draw_checks import NAMES as DRAW_CHECKS
from initcheck.results import RowResult

REPORT_SCHEMA = "initcheck-report/2"
_VERDICT_STYLE = {"PASS": "bold green", "WARN": "bold yellow", "FAIL": "bold red", "SKIP": "dim"}


def make_console() -> Console:
    """stdout console: a terminal's own width; piped output COLUMNS wide when
    that is set, else 160 columns rather than rich's 80."""
    import os

    console = Console()
    if console.is_terminal:
        return console
    columns = os.environ.get("COLUMNS", "")
    return Console(width=int(columns) if columns.isdigit() and int(columns) > 0 else 160)


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
    if result.check("mean") is None:  # a constant or exact law, or too few finite values
        failed = [c for c in result.checks if not c.passed]
        drawn = "\n".join(f"{c.name}{' ✗' if not c.passed else ' ok'}" for c in result.checks if c.name in DRAW_CHECKS)
        return [n, "", "", bounds + (" ✗" if failed else ""), "", drawn]
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
    others = [c for c in result.checks if c.name in ("spikes", "independence", *DRAW_CHECKS)]
    other_text = "\n".join(f"{c.name}{' ✗' if not c.passed else ' ok'}" for c in others)
    return [n, mean_text, std_text, bounds, ks_text, other_text]


#: The compact table has a law column from this width on; narrower, the law is printed under it.
LAW_COLUMN_WIDTH = 110


def render_table(results: list[RowResult], console: Console, title: str = "", wide: bool = False) -> None:
    """The rows as a table that folds rather than cuts, at any width.

    The default table is compact: one numbered row each (framework,
    initializer, layer; law; N; mean z; std error and z; KS D against its
    critical value; verdict), at most four lines at 80 columns, and under it
    each row's API call (and its law, below 110 columns) and, for anything
    but PASS, its reason, in full.
    ``wide`` gives every statistic its own column, as before."""
    if wide:
        _render_wide(results, console, title)
        return
    with_law = console.width >= LAW_COLUMN_WIDTH
    table = Table(title=title or None, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("framework initializer · layer · dtype device", overflow="fold")
    if with_law:
        table.add_column("law", overflow="fold")
    for name in ("N", "mean", "std vs law", "KS D\n/ crit"):
        table.add_column(name, justify="right", no_wrap=True, overflow="fold")
    table.add_column("verdict", no_wrap=True)
    for index, result in enumerate(results, 1):
        what = Text(f"{result.name}: " if result.name else "", style="bold")
        what.append(f"{result.framework} ", style="bold")
        what.append(" ".join(result.initializer.split()))
        where = " ".join(p for p in (result.dtype, result.device) if p and p != "?")
        what.append(f" · {' '.join(result.layer.split())}" + (f" · {where}" if where else ""), style="dim")
        law = [result.law.describe() if result.law else ""] if with_law else []
        table.add_row(str(index), what, *law, *_compact_cells(result, marks=with_law),
                      Text(result.verdict, style=_VERDICT_STYLE[result.verdict]))
    console.print(table)
    for index, result in enumerate(results, 1):
        line = Text(f"#{index} ", style="bold")
        line.append(" ".join(result.api.split()), style="dim")
        if result.law is not None and not with_law:
            line.append(f": {result.law.describe()}")
        if result.reason:
            line.append(f"\n   {result.verdict}: ", style=_VERDICT_STYLE[result.verdict])
            line.append(" ".join(result.reason.split()))
        console.print(line, overflow="fold")


def _compact_cells(result: RowResult, marks: bool) -> tuple:
    """N, mean z, std error and z, KS D / critical value, blank where the row
    has no such check; a failed one is red, and flagged ✗ when ``marks`` (at
    narrow widths the reason under the table names it)."""
    summary = result.summary
    if summary is None:
        return "", "", "", ""
    n = f"{summary.total:,}"
    finite = result.check("finite")
    n = Text(n)
    if finite is not None and not finite.passed:
        n.append(f"\n{int(finite.statistic):,} NaN/Inf", style="red")
    mean, variance, ks = result.check("mean"), result.check("variance"), result.check("ks")
    if mean is None:  # a constant law, or too few finite values
        return n, "", "", ""
    relative = summary.std / result.law.std - 1.0

    def flagged(text: str, check) -> Text:
        failed = check.passed is False
        return Text(text + (" ✗" if failed and marks else ""), style="red" if failed else "")

    return (
        n,
        flagged(f"z={mean.statistic:+.1f}", mean),
        flagged(f"{relative * 100:+.2f}%\nz={variance.statistic:+.1f}", variance),
        flagged(f"{ks.statistic:.2g}\n/ {ks.threshold:.2g}", ks),
    )


def _render_wide(results: list[RowResult], console: Console, title: str) -> None:
    """Every statistic in its own column (``--wide``)."""
    table = Table(title=title or None, show_lines=True, title_justify="left")
    fold = {"overflow": "fold"}
    table.add_column("framework / API", overflow="fold", max_width=38)
    table.add_column("initializer\nlayer", overflow="fold")
    table.add_column("law", **fold)
    table.add_column("N", justify="right", **fold)
    table.add_column("mean", justify="right", **fold)
    table.add_column("std (vs law)", justify="right", **fold)
    table.add_column("min, max", justify="right", **fold)
    table.add_column("KS D / crit", justify="right", **fold)
    table.add_column("other", **fold)
    table.add_column("verdict", **fold)
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
