"""The table of ``initcheck model``: one row per parameter, grouped by module.

Each row names the parameter, the law it was checked against and where that
law comes from (a rule, the preset, the layer type's default), how it is
placed over the ranks of a sharded run (``Shard(0) over 4 ranks``), N, the mean
and std against the law, KS D against its critical value and the verdict.
Under the table: every row that is not PASS with its reason, the tied
parameters, how many instances were built (and what stopped them, with the
power reached by the parameter that got the fewest values), and the summary
line (``212 parameters: 209 PASS, 1 FAIL, 2 SKIP, 5 tied``).
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from initcheck.report import _VERDICT_STYLE, _compact_cells


def module_of(name: str) -> str:
    """``encoder.0.weight`` -> ``encoder.0``."""
    return name.rpartition(".")[0]


def render_model(verification, console: Console, title: str = "") -> None:
    table = Table(title=title or None, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("parameter\nlayer shape dtype", overflow="fold")
    table.add_column("law · from", overflow="fold")
    for name in ("N", "mean", "std vs law", "KS D\n/ crit"):
        table.add_column(name, justify="right", no_wrap=True, overflow="fold")
    table.add_column("verdict", no_wrap=True)
    previous = None
    placed = dict(getattr(verification, "placements", ()))
    for index, result in enumerate(verification.results, 1):
        module = module_of(result.layer)
        if previous is not None and module != previous:
            table.add_section()
        previous = module
        what = Text(result.layer, style="bold")
        layer_type = result.api.split(":")[0].rpartition(".")[0]
        what.append(f"\n{layer_type} {_shape(result.shape)} {result.dtype}", style="dim")
        if result.layer in placed:
            what.append(f"\n{placed[result.layer]}", style="dim")
        law = Text(result.law.describe() if result.law else "—")
        law.append(f"\n{result.initializer}", style="dim")
        table.add_row(str(index), what, law, *_compact_cells(result, marks=True),
                      Text(result.verdict, style=_VERDICT_STYLE[result.verdict]))
    console.print(table)
    for index, result in enumerate(verification.results, 1):
        if result.verdict == "PASS":
            continue
        line = Text(f"#{index} {result.layer} ", style="bold")
        line.append(f"{result.verdict}: ", style=_VERDICT_STYLE[result.verdict])
        line.append(" ".join(result.reason.split()))
        console.print(line, overflow="fold")
    for name, owner in verification.tied:
        console.print(Text(f"tied: {name} is {owner} (the same parameter, verified once)", style="dim"))
    console.print(instances_line(verification))
    tested = sum(1 for r in verification.results for c in r.checks if c.statistical)
    console.print(Text(f"{verification.summary_line}.", style="bold")
                  + Text(f"  Family-wise alpha {verification.alpha:g}, Holm over {tested} statistical checks."))


def instances_line(verification) -> str:
    """How many instances, in how long, and what the cap left undone."""
    ranks = getattr(verification, "ranks", 1)
    on = f" on {ranks} ranks ({verification.backend})" if getattr(verification, "placements", ()) else ""
    text = (f"{verification.instances} instances of {verification.target} ({verification.framework}){on}, built in "
            f"{verification.build_seconds:.3g} s, checked in {verification.check_seconds:.3g} s")
    short = [r for r in verification.results if r.summary is not None and r.check("variance") is not None
             and r.summary.total < r.samples]
    if not short:
        return text + f"; every parameter has its {verification.samples:,} values."
    weakest = min(short, key=lambda r: r.summary.total)
    variance = weakest.check("variance")
    power = f" (detects a std error ≥ {variance.power * 100:.2g}%)" if variance.power is not None else ""
    return (text + f"; stopped by {verification.stopped or 'the instance count'}: {len(short)} parameter(s) below "
            f"{verification.samples:,} values, fewest {weakest.layer} with {weakest.summary.total:,}{power}; "
            "--instances R or --time-limit S for more.")


def _shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"
