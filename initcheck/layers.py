"""Layers, their shapes in each framework's layout, and their fans.

PyTorch stores a weight as ``(out, in, *kernel)``; Keras and JAX store a kernel as
``(*kernel, in, out)``; PaddlePaddle stores a dense weight as ``(in, out)`` and
a conv weight as PyTorch does; MLX stores ``(out, *kernel, in)``.  For every layout

    fan_in  = in  * prod(kernel)
    fan_out = out * prod(kernel)

A dense layer ``A -> B`` is the layer with ``in = A``, ``out = B`` and no kernel.
A 1-d parameter of length n (a bias, a norm's scale) is a *vector*: its shape is
``(n,)`` in every layout, and its fans are (n, n) as Keras and JAX compute them
(PyTorch computes none); only explicit laws (trunc-normal, normal, uniform) are
checked on it.
A :class:`Layer` is layout-free; each framework asks for the shape in its own
layout, so every framework is given the same layer and the fans agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from initcheck.errors import InputError

LAYOUTS = ("torch", "keras")
#: The weight layouts of the frameworks' own tensors (``Layer.shape``):
#: ``torch`` ``(out, in, *kernel)``; ``keras`` ``(*kernel, in, out)`` (Keras,
#: JAX and its layer libraries, tf.keras); ``paddle``: dense ``(in, out)``,
#: conv as torch; ``mlx``: dense ``(out, in)``, conv ``(out, *kernel, in)``
#: (channels last).
WEIGHT_LAYOUTS = (*LAYOUTS, "paddle", "mlx")


@dataclass(frozen=True)
class Layer:
    in_features: int
    out_features: int
    kernel: tuple[int, ...] = ()
    #: A 1-d parameter of length ``out_features`` (``in_features`` is 1).
    vector: bool = False

    @classmethod
    def dense(cls, fan_in: int, fan_out: int) -> Layer:
        for name, value in (("--fan-in", fan_in), ("--fan-out", fan_out)):
            if value is None or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value}")
        return cls(int(fan_in), int(fan_out))

    @classmethod
    def from_shape(cls, shape: tuple[int, ...], layout: str = "torch", vector: bool = False) -> Layer:
        """Read a weight shape; PyTorch layout ``(out, in, *kernel)`` unless
        ``layout == "keras"``, which reads ``(*kernel, in, out)``.  A 1-d
        shape is a vector where ``vector`` allows one (explicit laws)."""
        shape = tuple(shape)
        if vector and len(shape) == 1 and shape[0] >= 1:
            return cls(in_features=1, out_features=shape[0], vector=True)
        if len(shape) < 2:
            raise InputError(
                f"shape {format_shape(shape)} has {len(shape)} dimension(s); fans need at least 2 "
                "(out, in[, *kernel])"
            )
        if any(d < 1 for d in shape):
            raise InputError(f"shape {format_shape(shape)} has a dimension below 1")
        if layout == "torch":
            return cls(in_features=shape[1], out_features=shape[0], kernel=shape[2:])
        if layout == "keras":
            return cls(in_features=shape[-2], out_features=shape[-1], kernel=shape[:-2])
        raise InputError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")

    @property
    def receptive_field(self) -> int:
        return math.prod(self.kernel)

    @property
    def fan_in(self) -> int:
        return self.out_features if self.vector else self.in_features * self.receptive_field

    @property
    def fan_out(self) -> int:
        return self.out_features * self.receptive_field

    @property
    def size(self) -> int:
        return self.fan_in * self.out_features

    def shape(self, layout: str = "torch") -> tuple[int, ...]:
        if self.vector and layout in WEIGHT_LAYOUTS:
            return (self.out_features,)
        if layout == "torch":
            return (self.out_features, self.in_features, *self.kernel)
        if layout == "keras":
            return (*self.kernel, self.in_features, self.out_features)
        if layout == "paddle":
            if self.kernel:
                return (self.out_features, self.in_features, *self.kernel)
            return (self.in_features, self.out_features)
        if layout == "mlx":
            return (self.out_features, *self.kernel, self.in_features)
        raise InputError(f"unknown layout {layout!r}; expected one of {', '.join(WEIGHT_LAYOUTS)}")

    def describe(self) -> str:
        if self.vector:
            return f"vector {self.out_features}"
        if not self.kernel:
            return f"dense {self.in_features}→{self.out_features}"
        return f"conv {self.in_features}→{self.out_features} {'×'.join(map(str, self.kernel))}"


def parse_shape(text: str) -> tuple[int, ...]:
    """``"128,64,3,3"`` (or with ``x``) -> ``(128, 64, 3, 3)``: every part an
    integer, a trailing comma allowed (``"10,20,"``), an empty part (``"3,,3"``,
    ``"3,x"``) not."""
    if not text.strip():
        raise InputError("--shape is empty")
    parts = [p.strip() for p in text.replace("x", ",").replace("×", ",").split(",")]
    if len(parts) > 1 and not parts[-1] and text.rstrip().endswith(","):
        parts.pop()
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"--shape {text!r} is not a comma-separated list of integers") from None


def format_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"
