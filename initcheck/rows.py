"""What a request turns into: the rows to sample.

A row is one framework's initializer (or a user's function, or a layer's
default) on one layer, dtype and device, with the law it must follow.  The
command line (:mod:`initcheck.cli`) and suite files (:mod:`initcheck.suite`)
both build their rows here, so a suite check means exactly what the same
command means.
"""

from __future__ import annotations

import math

from initcheck.errors import InputError
from initcheck.frameworks.base import Plan, Skip
from initcheck.layers import Layer, format_shape
from initcheck.resources import check_fits
from initcheck.runner import Row
from initcheck.schemes import DISTRIBUTIONS, InitSpec

MIN_SAMPLES = 1000
DEFAULT_SAMPLES = "1e7"
#: Layer of the explicit-law commands (trunc-normal, custom) when none is given.
DEFAULT_SHAPE = (256, 784)
#: Layers of `initcheck defaults` when none is given: a dense 784 -> 256 and a 64 -> 128 3x3 conv.
DEFAULT_LAYERS = (Layer.dense(784, 256), Layer(64, 128, (3, 3)))

#: Laws a custom function may be checked against (``--expect``).
EXPECTATIONS = ("xavier", "kaiming", "lecun", "normal", "uniform", "trunc-normal")


def parse_samples(text) -> int:
    """``1e7``, ``10000000`` or ``10_000_000`` -> int, at least 1000."""
    try:
        value = float(str(text).replace("_", ""))
    except ValueError:
        raise InputError(f"--samples {text!r} is not a number") from None
    if not math.isfinite(value) or value != int(value):
        raise InputError(f"--samples {text!r} is not a whole number")
    if value < MIN_SAMPLES:
        raise InputError(f"--samples must be at least {MIN_SAMPLES:,}, got {int(value):,}")
    return int(value)


def scheme_rows(specs: list[InitSpec], layers: list[Layer], frameworks: list, device: str, dtype: str,
                reference: str = "documented") -> list[Row]:
    """Every spec on every layer in every framework.  ``reference="paper"``
    checks each framework against the paper's law instead of its documented one."""
    for framework in frameworks:
        framework.check_device(device)
    for layer in layers:
        check_fits(layer.shape("torch"), dtype, device)
        if layer.vector and any(spec.uses_fans for spec in specs):
            raise InputError(f"shape ({layer.out_features},) has 1 dimension; fans need at least 2 (out, in[, "
                             "*kernel]): a 1-d parameter takes an explicit law (trunc-normal, normal, uniform)")
        for spec in specs:
            if spec.structured:  # one line, before any framework draws: eye needs 2-d, dirac 3-5-d, ...
                from initcheck.structured import check_shape

                check_shape(spec, layer.shape("torch"))
    rows = []
    for spec in specs:
        for layer in layers:
            for framework in frameworks:
                if framework.name == "reference" and device != "cpu":
                    plan = Skip("reference", "numpy", f"the reference samples with NumPy on the CPU, not on {device}",
                                device, dtype, layer.shape("torch"))
                else:
                    plan = framework.plan(spec, layer, device, dtype)
                label = spec.describe()
                if reference == "paper" and isinstance(plan, Plan) and not spec.structured:  # (structured: one law)
                    plan.law = spec.law(layer.fan_in, layer.fan_out)
                    label += "\n(against the paper's law)"
                rows.append(Row(label, layer.describe(), plan))
    return rows


def default_rows(layers: list[Layer], frameworks: list, device: str, dtype: str) -> list[Row]:
    """The weight (kernel) and bias of each framework's own layers, built for real."""
    frameworks = [f for f in frameworks if f.name != "reference"]
    for framework in frameworks:
        framework.check_device(device)
    for layer in layers:
        check_fits(layer.shape("torch"), dtype, device)
        if layer.vector:
            raise InputError(f"layer defaults need a weight of at least 2 dimensions, not ({layer.out_features},)")
    rows = [
        Row(f"default {parameter}", layer.describe(), plan)
        for layer in layers
        for framework in frameworks
        for parameter, plan in framework.default_rows(layer, device, dtype)
    ]
    if not rows:
        raise InputError("no framework with layers was selected")
    return rows


#: The options each expectation of a custom function takes (None: not given).
EXPECTATION_OPTIONS = {
    "xavier": ("dist", "gain"),
    "kaiming": ("dist", "mode", "nonlinearity", "a"),
    "lecun": ("dist",),
    "normal": ("std", "mean"),
    "uniform": ("bound", "low", "high"),
    "trunc-normal": ("std", "mean", "low", "high"),
}


def expected_spec(expect, dist=None, gain=None, mode=None, nonlinearity=None, slope=None, std=None,
                  mean=None, bound=None, low=None, high=None) -> InitSpec:
    """The law a custom function is checked against, from --expect and its
    options; an option the expectation does not use is an InputError, not
    silently ignored."""
    if expect not in EXPECTATIONS:
        raise InputError(f"unknown expectation {expect!r}; expected one of {', '.join(EXPECTATIONS)}")
    given = {"dist": dist, "gain": gain, "mode": mode, "nonlinearity": nonlinearity, "a": slope, "std": std,
             "mean": mean, "bound": bound, "low": low, "high": high}
    unused = [name for name, value in given.items() if value is not None and name not in EXPECTATION_OPTIONS[expect]]
    if unused:
        takes = ", ".join(f"--{name}" for name in EXPECTATION_OPTIONS[expect])
        raise InputError(f"--{unused[0]} does not apply to --expect {expect} (it takes {takes})")
    dist = dist or "normal"
    mean = 0.0 if mean is None else mean
    if expect in ("xavier", "kaiming", "lecun"):
        if dist not in DISTRIBUTIONS:
            raise InputError(f"--dist: unknown value {dist!r}; expected one of {', '.join(DISTRIBUTIONS)}")
        if expect == "kaiming":
            return InitSpec("kaiming", dist, mode=mode or "fan_in", nonlinearity=nonlinearity or "leaky_relu",
                            slope=slope)
        return InitSpec(expect, dist, gain=gain if expect == "xavier" else None)
    if expect == "uniform":
        if bound is not None:
            if low is not None or high is not None:
                raise InputError("give either --bound or --low/--high, not both")
            if not bound > 0:
                raise InputError(f"--bound must be positive, got {bound}")
            low, high = -bound, bound
        return InitSpec("uniform", low=low, high=high)
    if expect == "normal":
        return InitSpec("normal", mean=mean, std=std)
    return InitSpec("trunc-normal", mean=mean, std=std, low=low, high=high)


def function_rows(function, name: str, law, label: str, shape: tuple[int, ...], fans: Layer | None,
                  draw_checks=None) -> list[Row]:
    """The row of a user's function ``function(shape, seed)`` checked against
    ``law`` (and a structured law's per-draw checks, ``draw_checks``);
    ``fans``, when the law came from them, are shown in the row."""
    from initcheck.frameworks.custom import custom_plan

    check_fits(tuple(shape), "float64")  # the function's dtype is known only once it has drawn
    layer = f"shape {format_shape(shape)}" + (f"\nfan_in {fans.fan_in}, fan_out {fans.fan_out}" if fans else "")
    plan = custom_plan(function, name, law, tuple(shape))
    plan.draw_checks = draw_checks
    return [Row(label, layer, plan)]


def custom_rows(target: str, spec: InitSpec, shapes: list[tuple[int, ...]], layers: list[Layer],
                fans: Layer | None, with_reference: bool, dtype: str) -> list[Row]:
    """Rows for a user's function: one per shape, each followed (``with_reference``)
    by the closed-form law sampled with NumPy as a control.  ``layers[i]`` gives
    the fans of ``shapes[i]`` unless ``fans`` overrides them."""
    from initcheck.frameworks.custom import load_function
    from initcheck.frameworks.reference import law_plan

    function = load_function(target)
    rows = []
    for shape, layer in zip(shapes, layers):
        fan_layer = fans or layer
        law = spec.law(fan_layer.fan_in, fan_layer.fan_out)
        row = function_rows(function, target, law, f"expect {spec.describe()}", shape,
                            fan_layer if spec.uses_fans else None)[0]
        rows.append(row)
        if with_reference:
            rows.append(Row(row.initializer, row.layer, law_plan("reference", law, shape, dtype)))
    return rows
