"""The informational commands: ``fans``, ``gains`` and ``env``.

Each asks the frameworks themselves and prints their answer beside initcheck's
closed form, so a disagreement is visible at a glance.
"""

from __future__ import annotations

import importlib.metadata
import math
import platform

from rich.table import Table

import initcheck
from initcheck import frameworks as registry
from initcheck import kernels
from initcheck.layers import format_shape
from initcheck.schemes import NONLINEARITIES, gain


def fans_table(layers, frameworks) -> Table:
    """fan_in / fan_out of each layer: closed form, then each framework's own."""
    table = Table(title="fans: closed form and as each framework computes them", title_justify="left")
    table.add_column("layer", overflow="fold")
    table.add_column("closed form\nfan_in, fan_out", justify="right", overflow="fold")
    for framework in frameworks:
        if framework.name != "reference":
            table.add_column(f"{framework.name}\nshape ({framework.layout} layout)", justify="right", overflow="fold")
    for layer in layers:
        cells = [layer.describe(), f"{layer.fan_in}, {layer.fan_out}"]
        for framework in frameworks:
            if framework.name == "reference":
                continue
            fan_in, fan_out = framework.fans(layer)
            mark = "" if (fan_in, fan_out) == (layer.fan_in, layer.fan_out) else " ✗"
            cells.append(f"{format_shape(layer.shape(framework.layout))}\n{fan_in}, {fan_out}{mark}")
        table.add_row(*cells)
    return table


#: (nonlinearity, slope) rows of the gains table; None = calculate_gain's default.
GAIN_ROWS = [(name, None) for name in NONLINEARITIES if name != "leaky_relu"] + [
    ("leaky_relu", None),
    ("leaky_relu", 0.0),
    ("leaky_relu", math.sqrt(5.0)),
]


def gains_table(extra_slopes=()) -> tuple[Table, bool]:
    """Every nonlinearity's gain: closed form, torch's calculate_gain, Keras/JAX scale.

    Returns the table and whether torch agreed everywhere (None-safe when torch is
    not installed).
    """
    torch_gain = None
    if registry.installed("torch"):
        import torch

        torch_gain = torch.nn.init.calculate_gain
    table = Table(title="gains: closed form, torch.nn.init.calculate_gain, and the Keras/JAX scale", title_justify="left")
    table.add_column("nonlinearity", overflow="fold")
    table.add_column("param", justify="right", overflow="fold")
    table.add_column("closed form", justify="right", overflow="fold")
    table.add_column("calculate_gain", justify="right", overflow="fold")
    table.add_column("scale = gain²", justify="right", overflow="fold")
    table.add_column("note", overflow="fold")
    agree = True
    notes = {
        ("leaky_relu", None): "calculate_gain's default slope 0.01",
        ("leaky_relu", 0.0): "kaiming_*'s default (a = 0)",
        ("leaky_relu", math.sqrt(5.0)): "nn.Linear / nn.Conv*'s default (a = √5)",
    }
    for name, slope in GAIN_ROWS + [("leaky_relu", s) for s in extra_slopes]:
        ours = gain(name, slope)
        theirs = ""
        if torch_gain is not None:
            value = torch_gain(name, slope)
            agree = agree and math.isclose(value, ours, rel_tol=1e-12)
            theirs = f"{value:.6g}" + ("" if math.isclose(value, ours, rel_tol=1e-12) else " ✗")
        param = "" if slope is None else f"{slope:.6g}"
        table.add_row(name, param, f"{ours:.6g}", theirs or "torch not installed", f"{ours**2:.6g}", notes.get((name, slope), ""))
    return table, agree


#: The distributions whose versions name each framework, read from package metadata (no import).
DISTRIBUTIONS = {"torch": ("torch",), "keras": ("keras", "tensorflow"), "jax": ("jax", "jaxlib")}
DISTRIBUTIONS["paddle"] = ("paddlepaddle",)
DISTRIBUTIONS.update({"keras-jax": ("keras", "jax"), "keras-torch": ("keras", "torch"), "tf-keras": ("tf_keras", "tensorflow")})
DISTRIBUTIONS["mlx"] = ("mlx",)
DISTRIBUTIONS["jax"] += ("flax", "equinox", "dm-haiku")  # the layer libraries of `defaults -f jax`


def _metadata_versions(name: str) -> str | None:
    """``keras 3.15.1, tensorflow 2.21.0`` from installed package metadata, or None."""
    found = []
    for distribution in DISTRIBUTIONS.get(name, ()):
        try:
            found.append(f"{distribution} {importlib.metadata.version(distribution)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(found) or None


def environment_table(devices: bool = False) -> Table:
    """Versions from package metadata (fast: no framework is imported); with
    ``devices``, each framework is imported and asked which devices it sees."""
    table = Table(title=f"initcheck {initcheck.__version__} environment", title_justify="left", show_header=False)
    table.add_column("what", overflow="fold")
    table.add_column("value", overflow="fold")
    table.add_row("python", f"{platform.python_version()} ({platform.platform()})")
    for package in ("numpy", "scipy", "click", "rich"):
        table.add_row(package, importlib.metadata.version(package))
    table.add_row("fold path", kernels.PATH)
    for name in registry.ADAPTERS:
        if name == "reference":
            continue
        if not registry.installed(name):
            table.add_row(name, "not installed")
            continue
        if not devices:
            table.add_row(name, _metadata_versions(name) or "installed")
            continue
        try:
            framework = registry.load(name)
            table.add_row(name, f"{framework.version()}\ndevices: {', '.join(framework.devices())}")
        except Exception as error:  # a broken install is what `env` is for
            table.add_row(name, f"installed but failed to load: {type(error).__name__}: {error}")
    if not devices:
        table.add_row("devices", "initcheck env --devices lists them (it imports each framework)")
    return table
