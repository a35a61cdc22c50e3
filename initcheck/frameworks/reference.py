"""The control row: the closed-form law itself, sampled with NumPy.

It goes through exactly the same folding and checks as the framework rows, so it
shows what a correct sampler looks like at this N (and proves the checks do not
cry wolf on the command's own settings).  It always runs on the CPU.

A batch of small draws is ``law.sample(rng, count * size)`` reshaped to
``(count, *shape)``: the law has no fans or shape of its own, so that is exactly
``count`` draws of the law.

A structured scheme's tensors are made whole (:func:`initcheck.structured.sample`:
a Haar matrix by QR with the sign correction, a sparse matrix's zeros by a
permutation per column, the exact tensors as they are), with the law and
per-draw checks of :func:`initcheck.structured.expectation`.
"""

from __future__ import annotations

import numpy as np

from initcheck.frameworks.base import Framework, Plan
from initcheck.lowp import sample_dtype


class Reference(Framework):
    name = "reference"
    title = "reference"

    def version(self) -> str:
        return f"numpy {np.__version__}"

    def check_device(self, device: str) -> None:
        return None  # always samples on the CPU

    def fans(self, layer):
        return layer.fan_in, layer.fan_out

    def devices(self):
        return ["cpu"]

    def plan(self, spec, layer, device, dtype):
        if spec.structured:
            return structured_plan(self.name, spec, layer.shape("torch"), dtype)
        law = spec.law(layer.fan_in, layer.fan_out)
        return law_plan(self.name, law, layer.shape("torch"), dtype)


def structured_plan(framework: str, spec, shape, dtype) -> Plan:
    """A plan that makes a structured scheme's tensors with NumPy, seeded per draw (or batch)."""
    from initcheck.structured import expectation, sample

    law, draw_checks = expectation(spec, tuple(shape), "torch")
    np_dtype = sample_dtype(dtype)

    def draw_batch(seed: int, count: int) -> np.ndarray:
        return sample(spec, tuple(shape), np.random.default_rng(seed), count).astype(np_dtype, copy=False)

    def draw(seed: int) -> np.ndarray:
        return draw_batch(seed, 1)[0]

    samples = 10 * int(np.prod(shape)) if spec.deterministic else None
    return Plan(framework, f"numpy {spec.scheme} sampler", law, tuple(shape), "cpu", dtype, draw, samples=samples,
                draw_batch=draw_batch, draw_checks=draw_checks)


def law_plan(framework: str, law, shape, dtype) -> Plan:
    """A plan that samples ``law`` with NumPy's PCG64, seeded per draw."""
    size = int(np.prod(shape))
    np_dtype = sample_dtype(dtype)  # 16-bit: NumPy's float64 draw rounded to nearest

    def draw(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return law.sample(rng, size).astype(np_dtype, copy=False).reshape(shape)

    def draw_batch(seed: int, count: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return law.sample(rng, count * size).astype(np_dtype, copy=False).reshape((count, *shape))

    return Plan(framework, f"numpy {law.family} sampler", law, tuple(shape), "cpu", dtype, draw,
                draw_batch=draw_batch)
