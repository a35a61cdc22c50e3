"""What a weight of a given shape must look like, for any scheme.

:func:`expectation` is the one entry point: from an
:class:`~initcheck.schemes.InitSpec` and a shape (read in a layout) it gives
the law of the values and, for structured schemes, a factory of the checks made
on each whole draw (:mod:`initcheck.draw_checks`).  The framework adapters, the
reference sampler, the Python API and the model engine all ask it.

* Fan schemes (xavier, kaiming, lecun, variance-scaling): the fans are read off
  the shape in its layout (:meth:`initcheck.layers.Layer.from_shape`); no draw
  checks.
* Explicit laws (normal, uniform, trunc-normal) and constants (constant,
  zeros, ones): the law as given; no draw checks.
* Structured schemes (docs/design.md section 10), on the draw's matrix view
  (``(shape[0], prod(shape[1:]))`` in PyTorch's layout, ``(prod(shape[:-1]),
  shape[-1])`` in Keras', m its long side):

  ``orthogonal(gain)``   law :class:`~initcheck.laws.OrthogonalEntry` (gain, m);
                         draw checks ``orthogonal`` and ``diagonal signs``.
  ``sparse(sparsity, std)``  2-d; z = ceil(sparsity x column length) zeros in
                         every column (a column runs along the first axis in
                         PyTorch's layout, the last in Keras'); law
                         :class:`~initcheck.laws.ZeroInflated` (z / length,
                         N(0, std)); draw check ``zeros per column``.
  ``eye(gain)``          2-d; gain on the diagonal of the rectangle, 0 elsewhere;
                         law :class:`~initcheck.laws.Exact`; draw check ``exact``.
  ``dirac(groups)``      3-5-d ``(out, in, *kernel)`` in PyTorch's layout: for
                         each group g and d < min(out / groups, in),
                         w[g out / groups + d, d, kernel // 2] = 1, else 0 (as
                         ``torch.nn.init.dirac_``); law Exact; draw check ``exact``.
  ``delta-orthogonal(gain)``  3-5-d, in <= out: JAX's ``delta_orthogonal``, 0
                         everywhere but the kernel's centre (index (k - 1) // 2
                         on each spatial axis), which holds gain x an (in, out)
                         matrix with orthonormal rows; law ZeroInflated(1 - 1 /
                         prod(kernel), OrthogonalEntry(gain, out)); draw checks
                         ``exact`` (the zeros), ``orthogonal`` and ``diagonal
                         signs`` (the centre).

:func:`sample` draws the same tensors with NumPy (the reference rows).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from initcheck import draw_checks as checks
from initcheck.errors import InputError
from initcheck.laws import Constant, Exact, Law, Normal, OrthogonalEntry, ZeroInflated
from initcheck.layers import LAYOUTS, Layer, format_shape
from initcheck.schemes import InitSpec

#: A factory of fresh per-draw checks (one call per row).
DrawChecks = Callable[[], list]

#: The shape of a structured command when none is given: the explicit laws'
#: dense layer, or a 64 -> 128 3x3 convolution where the scheme needs a kernel.
DENSE_SHAPE = (256, 784)
CONV_SHAPE = (128, 64, 3, 3)


def default_shape(spec: InitSpec) -> tuple[int, ...]:
    """The weight shape (PyTorch layout) a command uses when given none."""
    return CONV_SHAPE if spec.scheme in ("dirac", "delta-orthogonal") else DENSE_SHAPE


def expectation(spec: InitSpec, shape: tuple[int, ...], layout: str = "torch") -> tuple[Law, DrawChecks | None]:
    """(law of the values, per-draw checks factory or None) of ``spec`` on a
    weight of ``shape`` read in ``layout`` ("torch": ``(out, in, *kernel)``,
    "keras": ``(*kernel, in, out)``), for any scheme (module docstring).
    InputError when the shape does not fit the scheme."""
    shape = _checked(shape, layout)
    if spec.uses_fans:
        layer = Layer.from_shape(shape, layout)
        return spec.law(layer.fan_in, layer.fan_out), None
    if not spec.structured or spec.constant_value is not None:
        return spec.law(1, 1), None
    check_shape(spec, shape, layout)
    if spec.scheme == "orthogonal":
        return _orthogonal(spec, shape, layout)
    if spec.scheme == "sparse":
        return _sparse(spec, shape, layout)
    if spec.scheme == "delta-orthogonal":
        return _delta_orthogonal(spec, shape, layout)
    expected, what = expected_tensor(spec, shape, layout)
    law = Exact(what, float(spec.gain or 1.0), int(np.count_nonzero(expected)), expected.size)
    return law, lambda: [checks.Exact(expected, what)]


def check_shape(spec: InitSpec, shape: tuple[int, ...], layout: str = "torch") -> None:
    """InputError (one line) unless a structured scheme can fill ``shape``."""
    shape = _checked(shape, layout)
    scheme, text, dims = spec.scheme, format_shape(shape), len(shape)
    if scheme in ("orthogonal",) and dims < 2:
        raise InputError(f"{scheme} needs a weight of at least 2 dimensions, not {text}")
    if scheme in ("sparse", "eye") and dims != 2:
        raise InputError(f"{scheme} needs a 2-d weight, not {text}")
    if scheme in ("dirac", "delta-orthogonal"):
        if dims not in (3, 4, 5):
            raise InputError(f"{scheme} needs a convolution weight of 3, 4 or 5 dimensions, not {text}")
        out, inputs = (shape[0], shape[1]) if layout == "torch" else (shape[-1], shape[-2])
        if scheme == "dirac" and out % spec.effective_groups:
            raise InputError(f"dirac: the {out} output channels of {text} do not divide into "
                             f"{spec.effective_groups} groups")
        if scheme == "delta-orthogonal" and inputs > out:
            raise InputError(f"delta-orthogonal needs in <= out; {text} has {inputs} inputs and {out} outputs")


def _checked(shape, layout: str) -> tuple[int, ...]:
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    try:
        dims = tuple(shape)
    except TypeError:
        raise InputError(f"shape must be a sequence of positive integers, got {shape!r}") from None
    if not dims or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in dims):
        raise InputError(f"shape must be a sequence of positive integers, got {shape!r}")
    return tuple(int(d) for d in dims)


def matrix_sides(shape: tuple[int, ...], layout: str) -> tuple[int, int]:
    """(rows, columns) of the matrix view of a draw (module docstring)."""
    if layout == "torch":
        return shape[0], math.prod(shape[1:])
    return math.prod(shape[:-1]), shape[-1]


def _gain(spec: InitSpec) -> float:
    return 1.0 if spec.gain is None else float(spec.gain)


def _orthogonal(spec, shape, layout):
    gain, view = _gain(spec), checks.matrix_view(shape, layout)
    law = OrthogonalEntry(gain, max(matrix_sides(shape, layout)))
    return law, lambda: [checks.Orthogonal(gain, view), checks.DiagonalSigns(view)]


def sparse_zeros(spec: InitSpec, shape: tuple[int, ...], layout: str) -> tuple[int, int]:
    """(zeros per column, column length) of ``sparse_`` on a 2-d ``shape``:
    ceil(sparsity x length), as torch computes it."""
    length = shape[0] if layout == "torch" else shape[1]
    return min(length, math.ceil(spec.sparsity * length)), length


def _sparse(spec, shape, layout):
    zeros, length = sparse_zeros(spec, shape, layout)
    std = spec.effective_std
    if zeros == length:
        law = Constant(0.0)
    elif zeros == 0:
        law = Normal(0.0, std)
    else:
        law = ZeroInflated(zeros / length, Normal(0.0, std))
    axis = 0 if layout == "torch" else 1
    return law, lambda: [checks.ZerosPerColumn(zeros, std, axis)]


def _centre(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The kernel's centre of delta_orthogonal, (k - 1) // 2 on each spatial axis."""
    kernel = shape[2:] if layout == "torch" else shape[:-2]
    return tuple((k - 1) // 2 for k in kernel)


def _delta_orthogonal(spec, shape, layout):
    gain, kernel_size = _gain(spec), math.prod(shape[2:] if layout == "torch" else shape[:-2])
    out = shape[0] if layout == "torch" else shape[-1]
    centre = _centre(shape, layout)
    mask = np.ones(shape, dtype=bool)
    if layout == "torch":
        mask[(slice(None), slice(None), *centre)] = False

        def view(x):  # (draws, out, in) -> (draws, in, out): JAX's (in, out) matrix
            return np.swapaxes(x[(slice(None), slice(None), slice(None), *centre)], 1, 2)
    else:
        mask[centre] = False
        view = checks.centre_view(shape)
    entry = OrthogonalEntry(gain, out)
    law = entry if kernel_size == 1 else ZeroInflated(1.0 - 1.0 / kernel_size, entry, fixed_zeros=True)
    zeros = np.zeros(shape)
    what = "0 outside the kernel's centre"
    return law, lambda: [checks.Exact(zeros, what, mask=mask), checks.Orthogonal(gain, view),
                         checks.DiagonalSigns(view)]


def expected_tensor(spec: InitSpec, shape: tuple[int, ...], layout: str = "torch") -> tuple[np.ndarray, str]:
    """(the tensor, its name in words) of a deterministic structured scheme (eye, dirac)."""
    if spec.scheme == "eye":
        gain = _gain(spec)
        tensor = gain * np.eye(shape[0], shape[1])
        scale = "" if gain == 1.0 else f"{gain:g}·"
        return tensor, f"{scale}I {shape[0]}×{shape[1]}"
    if spec.scheme == "dirac":
        torch_shape = shape if layout == "torch" else (shape[-1], shape[-2], *shape[:-2])
        groups = spec.effective_groups
        out, inputs, kernel = torch_shape[0], torch_shape[1], torch_shape[2:]
        per_group = out // groups
        tensor = np.zeros(torch_shape)
        centre = tuple(k // 2 for k in kernel)
        for g in range(groups):
            for d in range(min(per_group, inputs)):
                tensor[(g * per_group + d, d, *centre)] = 1.0
        if layout != "torch":
            tensor = np.transpose(tensor, (*range(2, len(shape)), 1, 0))
        text = "dirac" + ("" if groups == 1 else f" of {groups} groups")
        return tensor, text
    raise AssertionError(spec.scheme)


def sample(spec: InitSpec, shape: tuple[int, ...], rng: np.random.Generator, count: int,
           layout: str = "torch") -> np.ndarray:
    """``count`` draws of a structured scheme with NumPy, float64, shape
    ``(count, *shape)``: a Haar matrix by the QR of a Gaussian one with the
    signs of R's diagonal moved into Q (Mezzadri 2007), the zeros of a sparse
    column by a random permutation, the deterministic tensors as they are."""
    shape = tuple(shape)
    if spec.constant_value is not None:
        return np.full((count, *shape), spec.constant_value)
    if spec.scheme in ("eye", "dirac"):
        return np.broadcast_to(expected_tensor(spec, shape, layout)[0], (count, *shape)).copy()
    if spec.scheme == "sparse":
        zeros, length = sparse_zeros(spec, shape, layout)
        values = rng.normal(0.0, spec.effective_std, (count, *shape))
        axis = 1 if layout == "torch" else 2
        chosen = np.argsort(rng.random(values.shape), axis=axis)
        chosen = chosen[:, :zeros, :] if axis == 1 else chosen[:, :, :zeros]
        np.put_along_axis(values, chosen, 0.0, axis=axis)
        return values
    if spec.scheme == "orthogonal":
        rows, cols = matrix_sides(shape, layout)
        return _haar(rng, count, rows, cols, _gain(spec)).reshape((count, *shape))
    if spec.scheme == "delta-orthogonal":
        out, inputs = (shape[0], shape[1]) if layout == "torch" else (shape[-1], shape[-2])
        matrix = _haar(rng, count, inputs, out, _gain(spec))  # (count, in, out), orthonormal rows
        values = np.zeros((count, *shape))
        centre = _centre(shape, layout)
        if layout == "torch":
            values[(slice(None), slice(None), slice(None), *centre)] = np.swapaxes(matrix, 1, 2)
        else:
            values[(slice(None), *centre)] = matrix
        return values
    raise AssertionError(spec.scheme)


def _haar(rng: np.random.Generator, count: int, rows: int, cols: int, gain: float) -> np.ndarray:
    """``count`` matrices rows x cols, gain x Haar with orthonormal rows (rows
    <= cols) or columns."""
    a = rng.standard_normal((count, max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    if rows < cols:
        q = np.swapaxes(q, 1, 2)
    return gain * q
