"""What the structure checks cost per value, beside the fold they ride on.

Measured in one process, side by side and interleaved (best of ROUNDS), on
float32 normal draws of the default layer (256, 784): the pooled fold
(``kernels.fold`` + the lag-1 pairs, what every row paid before the structure
statistics), and each structure statistic alone (positions, grams at the
selection rate of a 10^7-value row, draw sums), then the whole
``StructureFolder`` per value and its once-a-row cost (sorting the gram store,
building the result).  The ratio (fold + structure) / fold is the figure the
speed targets care about.

    .venv/bin/python benchmarks/structure_cost.py
"""

from __future__ import annotations

import time

import numpy as np

from initcheck import kernels
from initcheck.grid import Grid
from initcheck.laws import Normal
from initcheck.reducers.host import PairChain
from initcheck.structure import ELEMENTS, GramStore, StructureFolder

SHAPE = (256, 784)
DRAWS = 20
ROUNDS = 7
ROW_VALUES = 10_000_000


def _timer(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def measure() -> dict[str, float]:
    """ns a value of each part, and the once-a-row cost of the structure in ms."""
    law = Normal(0.0, 0.0438)
    rng = np.random.default_rng(0)
    draws = [rng.normal(0.0, law.sigma, SHAPE).astype(np.float32).reshape(-1) for _ in range(DRAWS)]
    values = DRAWS * draws[0].size
    grid = Grid.for_law(law)
    sums, extremes, counts = np.zeros(4), np.array([np.inf, -np.inf]), np.zeros(4, dtype=np.int64)
    cells = np.zeros(grid.cells + 2, dtype=np.int32)
    pairs = np.zeros((3, 4))
    row_length = SHAPE[1]
    start_threshold = GramStore(4, ROW_VALUES).threshold

    def fold():
        chain = PairChain(law.mean, pairs)
        for x in draws:
            kernels.fold(x, law.mean, grid.lo, grid.segment_scale, grid.cum, grid.slope, sums, extremes, counts,
                         cells)
            chain.fold(x, 1, row_length, True)

    def positions():
        r1, r2, c1, c2 = np.empty(SHAPE[0]), np.empty(SHAPE[0]), np.zeros(SHAPE[1]), np.zeros(SHAPE[1])
        for x in draws:
            kernels.positions(x, SHAPE[1], law.mean, r1, r2, c1, c2)

    buffers = [np.empty(1 << 16, dtype) for dtype in (np.int64, np.uint64, np.uint64, np.uint32)]

    def grams():
        for x in draws:
            kernels.grams(x, 4, start_threshold, 0, *buffers)

    def draw_sums():
        p1 = np.zeros(ELEMENTS)
        for x in draws:
            d = np.subtract(x[:ELEMENTS], law.mean, dtype=np.float64)
            p1 += d
            float(np.einsum("i,i->", d, d))

    folder_holder = {}

    def structure():
        folder = StructureFolder(law.mean, SHAPE, 4, ROW_VALUES)
        for x in draws:
            folder.fold(x, 1)
        folder_holder["folder"] = folder

    def result():
        folder_holder["folder"].result()

    parts = {"fold": fold, "positions": positions, "grams": grams, "draw sums": draw_sums,
             "structure": structure}
    best = {name: float("inf") for name in parts}
    best_result = float("inf")
    for _ in range(ROUNDS):
        for name, function in parts.items():
            best[name] = min(best[name], _timer(function))
            if name == "structure":
                best_result = min(best_result, _timer(result))
    out = {name: seconds / values * 1e9 for name, seconds in best.items()}
    out["result_ms"] = best_result * 1e3
    return out


def render(found: dict[str, float]) -> list[str]:
    fold = found["fold"]
    lines = [f"structure checks: cost per value, float32 draws of {SHAPE}, one core, best of {ROUNDS}",
             f"  pooled fold (kernels.fold + lag-1 pairs)   {fold:6.2f} ns"]
    for name in ("positions", "grams", "draw sums"):
        lines.append(f"  {name:<42} {found[name]:6.2f} ns   ({found[name] / fold:.0%} of the fold)")
    lines.append(f"  {'whole StructureFolder.fold':<42} {found['structure']:6.2f} ns   "
                 f"(fold + structure = {(fold + found['structure']) / fold:.2f}x the fold)")
    lines.append(f"  once a row (sort the gram store, result)    {found['result_ms']:6.1f} ms")
    return lines


if __name__ == "__main__":
    print("\n".join(render(measure())))
