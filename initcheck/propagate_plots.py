"""Pictures of ``initcheck propagate --plot DIR``.

* One figure per init and framework, laid out like Glorot and Bengio's figures 6
  and 7: on top the normalized histograms of the activation values h^l of
  every layer (one line per layer), below those of the back-propagated
  gradients ∂C/∂s^l.  Each histogram is drawn from a thinned sample of the
  layer's values (:data:`initcheck.propagate.HISTOGRAM_VALUES`, every k-th
  value of the batch x units); the gradients' x axis is cut at the 0.5% and
  99.5% quantiles of every layer together, so the narrow layers stay visible
  beside the wide ones.
* ``variance-vs-depth.png``: the measured forward E[h²] and backward Var ∂C/∂s
  against the layer, on a log scale, for every init, with the theory's
  prediction dashed; a failed check is marked with a red cross.

matplotlib is imported only here (``pip install 'initcheck[plot]'``), on bare
:class:`matplotlib.figure.Figure` objects (never pyplot).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from initcheck.plots import VERDICT_COLORS, require_matplotlib, slug

DPI = 110
DEPTH_FILE = "variance-vs-depth.png"


def _layer_colors(count: int):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.9 * i / max(1, count - 1)) for i in range(count)]


def _histograms(axes, samples, edges, colors, xlabel: str) -> None:
    for index, (values, color) in enumerate(zip(samples, colors), 1):
        density, _ = np.histogram(values, bins=edges, density=True)
        centres = 0.5 * (edges[:-1] + edges[1:])
        axes.plot(centres, density, color=color, linewidth=1.3, label=f"layer {index}")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("density")
    axes.legend(fontsize=8, ncol=2, frameon=False)


def _edges(samples, symmetric: bool, bins: int = 81) -> np.ndarray:
    values = np.concatenate([np.asarray(s) for s in samples])
    low, high = np.quantile(values, [0.005, 0.995]) if values.size else (-1.0, 1.0)
    if symmetric:
        reach = max(abs(low), abs(high)) or 1.0
        low, high = -reach, reach
    if high <= low:
        high = low + 1.0
    return np.linspace(low, high, bins + 1)


def plot_row(row, path: Path) -> None:
    """The activation and gradient histograms of one init's stack (figures 6 and 7)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 7.5), dpi=DPI)
    try:
        top, bottom = fig.subplots(2, 1)
        colors = _layer_colors(len(row.layers))
        activations = [layer.activations for layer in row.layers]
        bounded = {"tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}.get(row.activation)
        edges = np.linspace(*bounded, 82) if bounded else _edges(activations, row.activation != "relu")
        _histograms(top, activations, edges, colors, f"activation value ({row.activation})")
        top.set_title("activations per layer (Glorot and Bengio, figure 6)", fontsize=10)
        gradients = [layer.gradients for layer in row.layers]
        _histograms(bottom, gradients, _edges(gradients, True), colors, "back-propagated gradient ∂C/∂s")
        bottom.set_title("back-propagated gradients per layer (figure 7)", fontsize=10)
        color = VERDICT_COLORS.get(row.verdict, "#333333")
        fig.suptitle(f"{row.init} · {row.framework}: {row.verdict.lower() if row.verdict == 'INFO' else row.verdict}"
                     f"  ({' '.join(row.api.split())[:80]})", fontsize=10, color=color)
        fig.tight_layout()
        fig.savefig(path, dpi=DPI)
    finally:
        fig.clear()


def plot_depth(result, path: Path) -> None:
    """Forward and backward variance against depth, log scale, every init (theory dashed)."""
    from matplotlib.figure import Figure

    rows = [row for row in result.rows if row.layers]
    fig = Figure(figsize=(11.0, 4.6), dpi=DPI)
    try:
        left, right = fig.subplots(1, 2)
        from matplotlib import colormaps

        cmap = colormaps["tab10"]
        for index, row in enumerate(rows):
            color = cmap(index % 10)
            depth = [layer.index for layer in row.layers]
            label = f"{row.init} · {row.framework}"
            for axes, measured, predicted, verdicts in (
                (left, [l.forward_variance for l in row.layers], [l.theory_forward_variance for l in row.layers],
                 [l.forward_verdict for l in row.layers]),
                (right, [l.backward_variance for l in row.layers], [l.theory_backward_variance for l in row.layers],
                 [l.backward_verdict for l in row.layers]),
            ):
                axes.plot(depth, measured, "o-", color=color, label=label)
                axes.plot(depth, predicted, "--", color=color, linewidth=1.0, alpha=0.8)
                failed = [(d, m) for d, m, v in zip(depth, measured, verdicts) if v == "FAIL"]
                if failed:
                    axes.plot(*zip(*failed), "x", color=VERDICT_COLORS["FAIL"], markersize=11, mew=2.2)
        settings = result.settings
        for axes, what in ((left, "forward: E[h²] of the activations"), (right, "backward: Var ∂C/∂s")):
            axes.set_yscale("log")
            axes.set_xlabel("layer")
            axes.set_title(what, fontsize=10)
            axes.set_xticks(range(1, settings["layers"] + 1))
            axes.grid(True, which="both", alpha=0.25)
        left.set_ylabel("variance (log scale); dashed: theory")
        left.legend(fontsize=8, frameon=False)
        fig.suptitle(f"variance against depth: {settings['activation']}, widths "
                     f"{'→'.join(map(str, settings['widths']))}, batch {settings['batch']}", fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=DPI)
    finally:
        fig.clear()


def write_plots(result, directory) -> list[Path]:
    """Every init's histograms and the depth plot in ``directory``; the paths written."""
    require_matplotlib()
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index, row in enumerate(result.rows, 1):
        if not row.layers:
            continue
        path = folder / f"propagate-{index:02d}-{slug(row.init)}-{slug(row.framework)}.png"
        plot_row(row, path)
        written.append(path)
    if any(row.layers for row in result.rows):
        path = folder / DEPTH_FILE
        plot_depth(result, path)
        written.append(path)
    return written
