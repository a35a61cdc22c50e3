"""How a JAX row shares a small machine's cores with initcheck's fold.

``python benchmarks/cpu_sharing.py [-n 2e8] [--pairs 5] [--dist normal]``

In one process, after one untimed run of each (JAX's compile, the first
folds), it alternates ``--pairs`` times:

* JAX's own loop: ``jax.nn.initializers.glorot_{dist}()`` on (784, 256),
  jitted with the key made inside, called once per draw, each draw forced;
* initcheck's row of the same draws: ``initcheck.verify(initcheck.xavier(dist),
  framework="jax", fan_in=784, fan_out=256, samples=N)``, its row seconds;

and reports each pair's ratio, their median, and the process CPU time per
wall second of each (2.0 = both cores busy on a 2-core machine).  Then it
folds already-drawn arrays alone (no drawing) to give the fold's CPU cost per
value.  With W the loop's wall time per draw, C_jax its CPU time per draw and
C_fold the fold's, no schedule on P cores beats

    row / loop >= max(1, (C_jax + C_fold) / (P * W))

which is what bounds a JAX row when JAX's own loop already keeps the cores
busy (its CPU runtime splits each draw over every schedulable core).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

FAN_IN, FAN_OUT = 784, 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--samples", type=float, default=2e8)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--dist", choices=("normal", "uniform"), default="normal")
    args = parser.parse_args()
    samples = int(args.samples)

    import jax
    import jax.numpy as jnp

    import initcheck
    from initcheck.reducers import reducer_for

    jax.config.update("jax_enable_x64", True)  # as the adapter draws
    init = getattr(jax.nn.initializers, f"glorot_{args.dist}")()
    sample = jax.jit(lambda seed: init(jax.random.key(seed), (FAN_IN, FAN_OUT), jnp.float32))
    draws = -(-samples // (FAN_IN * FAN_OUT))

    def own() -> tuple[float, float]:
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(draws):
            sample(np.uint32(i)).block_until_ready()
        return time.perf_counter() - wall, time.process_time() - cpu

    law = None

    def row() -> tuple[float, float]:
        nonlocal law
        cpu = time.process_time()
        result = initcheck.verify(initcheck.xavier(args.dist), framework="jax", fan_in=FAN_IN,
                                  fan_out=FAN_OUT, samples=samples)
        decided = result.results[0]
        assert decided.verdict == "PASS", decided.verdict
        law = decided.law
        return decided.seconds, time.process_time() - cpu

    own(), row()
    runs = {"loop": [], "row": []}
    for pair in range(args.pairs):
        runs["loop"].append(own())
        runs["row"].append(row())
        print(f"pair {pair + 1}: loop {runs['loop'][-1][0]:.3f} s, row {runs['row'][-1][0]:.3f} s", flush=True)

    arrays = [sample(np.uint32(i)).block_until_ready() for i in range(200)]
    fold_s = []
    for _ in range(5):
        reducer = reducer_for(arrays[0], law, expected_values=samples)
        cpu = time.thread_time()
        for x in arrays:
            reducer.fold(x)
        fold_s.append((time.thread_time() - cpu) / len(arrays))

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    busy = {k: statistics.median(c / w for w, c in v) for k, v in runs.items()}
    ratios = [r[0] / o[0] for o, r in zip(runs["loop"], runs["row"])]
    per_draw = wall["loop"] / draws
    cpu_jax = statistics.median(c for _, c in runs["loop"]) / draws
    cpu_fold = min(fold_s)
    print(f"\nJAX {jax.__version__}, glorot_{args.dist} ({FAN_IN}, {FAN_OUT}) float32, {draws} draws, {cores} cores")
    print(f"JAX's own loop : {wall['loop']:.3f} s, {per_draw * 1e3:.3f} ms a draw, "
          f"{busy['loop']:.2f} CPU s per wall s, {cpu_jax * 1e3:.3f} ms CPU a draw")
    cpu_row = statistics.median(c for _, c in runs["row"]) / draws
    print(f"initcheck row  : {wall['row']:.3f} s, {busy['row']:.2f} CPU s per wall s, {cpu_row * 1e3:.3f} ms CPU a draw")
    print(f"row / loop     : median of pairs {statistics.median(ratios):.2f}x "
          f"(pairs: {', '.join(f'{r:.2f}' for r in ratios)})")
    print(f"fold alone     : {cpu_fold * 1e3:.3f} ms CPU a draw, {cpu_fold / (FAN_IN * FAN_OUT) * 1e9:.2f} ns a value")
    print(f"sharing        : the row spends {cpu_row * 1e3:.3f} ms CPU a draw where the loop and the fold alone "
          f"spend {(cpu_jax + cpu_fold) * 1e3:.3f} ms")
    bound = max(1.0, (cpu_jax + cpu_fold) / (cores * per_draw))
    print(f"no schedule on {cores} cores beats row / loop = (CPU of the loop + CPU of the fold) / "
          f"(cores x loop wall) = {bound:.2f}x")


if __name__ == "__main__":
    main()
