"""``initcheck propagate``: the command line of :func:`initcheck.propagate.propagate`.

    initcheck propagate --layers 5 --width 1000 --activation tanh --init standard,xavier,kaiming -f torch

One table, a section per init and framework, a line per layer: the measured
activation and gradient variances beside the theory's, the ratio with its
tolerance and the verdict (PASS/FAIL where the theory is exact, ``info``
where it is the linear regime's approximation), the weight-gradient variance
and the share of saturated units.  Exit 0 when no check failed, 1 when one
did, 2 for bad input, 3 when every row was skipped.
"""

from __future__ import annotations

import math

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from initcheck.errors import InputError

_STYLE = {"PASS": "bold green", "FAIL": "bold red", "INFO": "dim", "SKIP": "dim"}


def _framework_help() -> str:
    from initcheck import frameworks as registry

    aliases = ", ".join(f"{alias} = {name}" for alias, name in registry.ALIASES.items())
    return (f"Comma list of {', '.join(registry.ADAPTERS)} (also {aliases}): the frameworks whose initializers "
            "draw the weights; standard is NumPy's, once.")


@click.command("propagate")
@click.option("--layers", "-L", type=int, help="Dense layers in the stack (default 5; or as many as --width lists).")
@click.option("--width", default="1000", show_default=True,
              help="Width of every layer, or the sizes n_0,n_1,...,n_L (e.g. 784,1000,1000,10).")
@click.option("--activation", default="tanh", show_default=True,
              help="After every layer: linear, tanh, relu, sigmoid or softsign.")
@click.option("--init", "inits", default="standard,xavier,kaiming", show_default=True,
              help="Comma list of standard (U(±1/√n_in), NumPy), xavier (fan_avg, gain 1), kaiming (He: "
                   "fan_in, ReLU gain √2), lecun.")
@click.option("--dist", default="uniform", show_default=True,
              help="Distribution of the framework schemes: uniform, normal or truncated-normal.")
@click.option("--framework", "-f", default="torch", show_default=True, help=_framework_help())
@click.option("--batch", type=int, default=1000, show_default=True, help="Inputs propagated (iid N(0, 1) rows).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--alpha", type=float, default=1e-6, show_default=True,
              help="Family-wise false-failure rate of the whole command (Holm over every checked variance).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
              help="Write every init's layers, theory and verdicts to this JSON file (initcheck-propagate/1).")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False),
              help="Write per-init histograms of activations and gradients per layer (the paper's figures 6 "
                   "and 7) and the variance against depth (needs matplotlib).")
@click.option("--quiet", "-q", is_flag=True, help="Print the table only when a check failed.")
@click.option("--progress/--no-progress", default=True, help="Name each stack on stderr as it runs (on a terminal).")
def propagate_command(layers, width, activation, inits, dist, framework, batch, seed, alpha, json_path, plot_dir,
                      quiet, progress):
    """Glorot and Bengio's experiment: how activation and gradient variances
    flow through a stack of dense layers initialized by each framework's real
    initializer (weights the framework's, propagation NumPy float64; inputs and
    output gradients iid N(0, 1)).

    Where the theory is exact in expectation (linear: both directions; ReLU:
    the forward second moment, He's) each layer's variance is checked against
    Var[x] Π n_in Var[W] (ReLU: × ½ a layer) within the sampling tolerance of
    this one weight draw; tanh, sigmoid and softsign rows show the linear
    regime's prediction and are informational.
    """
    from initcheck import cli as main_cli
    from initcheck import frameworks as registry
    from initcheck.propagate import propagate
    from initcheck.report import environment, make_console, write_json

    main_cli.check_outputs({"--json": json_path}, plot_dir)
    if plot_dir:
        from initcheck.plots import require_matplotlib

        require_matplotlib()
    import sys

    def announce(text: str) -> None:
        click.echo(f"initcheck: propagating {text}", err=True)

    with main_cli.stop_signals():
        result = propagate(layers, width, activation, inits, framework, batch, seed, alpha, dist,
                           progress=announce if progress and sys.stderr.isatty() else None)
    code = result.exit_code
    if code or not quiet:
        console = make_console()
        render_propagation(result, console)
    if code == 3:
        click.echo("initcheck: nothing was propagated: every row was skipped (exit 3)", err=True)
    try:
        if json_path:
            used = [name for name in result.settings["frameworks"] if name != "numpy"]
            write_json(json_path, result.to_dict(environment(registry.resolve(",".join(used)) if used else []),
                                                 code))
        if plot_dir:
            from initcheck.propagate_plots import write_plots

            written = write_plots(result, plot_dir)
            click.echo(f"initcheck: {len(written)} plot(s) in {plot_dir}", err=True)
    except OSError as error:
        raise InputError(f"cannot write {error.filename or 'a report'}: {error.strerror}") from None
    return code


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3g}"


def _pair(measured: float, predicted: float) -> Text:
    """The measured value over the theory's, in brackets."""
    text = Text(_number(measured))
    text.append(f"\n({_number(predicted)})", style="dim")
    return text


def _ratio(measured: float, predicted: float, check) -> Text:
    ratio = measured / predicted if predicted else math.nan
    text = Text(f"{ratio:.3g}")
    if check is not None and check.tolerance is not None:
        low, high = check.tolerance  # the ratios the check allows: ± while nearly symmetric
        allowed = f"±{max(-low, high) * 100:.2g}%" if high < 0.25 else f"{1 + low:.2g}–{1 + high:.2g}"
        text.append("\n" + allowed, style="dim")
    if check is not None and check.passed is False:
        text.stylize("red")
    return text


def _verdict(verdict: str, check) -> Text:
    label = "info" if verdict == "INFO" else verdict
    text = Text(label, style=_STYLE[verdict])
    if check is not None and math.isfinite(check.statistic):
        text.append(f"\nz={check.statistic:+.1f}", style="dim")
    return text


def render_propagation(result, console: Console) -> None:
    """The table (a section per row), each row's API and reason, the theory and the family."""
    settings = result.settings
    import initcheck

    widths = settings["widths"]
    square = len(set(widths)) == 1  # the title says the width; the layer column only the index
    shape = (f"{settings['layers']} layers of {widths[1]}" if square
             else "widths " + "→".join(map(str, widths)))
    title = (f"initcheck {initcheck.__version__}: propagate, {shape}, {settings['activation']}, "
             f"batch {settings['batch']}, seed {settings['seed']}")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("init\nframework", no_wrap=True)
    table.add_column("layer", no_wrap=True)
    for name in ("forward\nE[h²]", "ratio", "verdict", "backward\nVar ∂C/∂s", "ratio",
                 "verdict", "Var\n∂C/∂W", "sat."):
        table.add_column(Text(name), justify="left" if name == "verdict" else "right", no_wrap=True)
    for index, row in enumerate(result.rows, 1):
        if index > 1:
            table.add_section()
        who = Text(row.init, style="bold")
        who.append(f"\n{row.framework}")
        if not row.layers:
            table.add_row(str(index), who, "", "", "", "", Text("SKIP", style=_STYLE["SKIP"]))
            continue
        for layer in row.layers:
            first = layer.index == 1
            table.add_row(
                str(index) if first else "",
                who if first else Text(row.verdict if layer.index == 2 else "", style=_STYLE[row.verdict]),
                str(layer.index) if square else f"{layer.index} {layer.fan_in}→{layer.fan_out}",
                _pair(layer.forward_variance, layer.theory_forward_variance),
                _ratio(layer.forward_variance, layer.theory_forward_variance, layer.forward_check),
                _verdict(layer.forward_verdict, layer.forward_check),
                _pair(layer.backward_variance, layer.theory_backward_variance),
                _ratio(layer.backward_variance, layer.theory_backward_variance, layer.backward_check),
                _verdict(layer.backward_verdict, layer.backward_check),
                _pair(layer.weight_gradient_variance, layer.theory_weight_gradient_variance),
                "—" if layer.saturated is None else f"{layer.saturated:.0%}",
            )
    console.print(table)
    for index, row in enumerate(result.rows, 1):
        line = Text(f"#{index} ", style="bold")
        line.append(" ".join(row.api.split()), style="dim")
        if row.reason:
            line.append(f"\n   {row.verdict}: ", style=_STYLE[row.verdict])
            line.append(row.reason)
        reasons = sorted({r for layer in row.layers for r in (layer.forward_reason, layer.backward_reason)
                          if r and "degrees of freedom" in r})
        for reason in reasons:
            line.append(f"\n   info: {reason}", style="dim")
        console.print(line, overflow="fold")
    from initcheck.propagate_checks import REGIMES

    console.print(Text("Theory: " + REGIMES[settings["activation"]].note + ".  Forward: E[h²] of the activations "
                       "(their variance for odd activations, He's second moment for ReLU); backward: Var ∂C/∂s "
                       "from iid N(0, 1) output gradients; ∂C/∂W per example.", style="dim"), overflow="fold")
    counts = ", ".join(f"{count} {verdict.upper()}" for verdict, count in result.verdicts.items() if count)
    console.print(Text(f"{counts}.", style="bold")
                  + Text(f"  Family-wise alpha {result.alpha:g}, Holm over {result.checks} checked variances."))
