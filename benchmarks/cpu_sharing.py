"""How a JAX or Keras row shares a small machine's cores with initcheck's fold.

``python benchmarks/cpu_sharing.py [-n 2e8] [--pairs 5] [--dist normal] [--framework jax]``

In one process, after one untimed run of each (JAX's compile, the first
folds), it alternates ``--pairs`` times:

* the framework's own loop on (784, 256), one call per draw, each draw
  forced: for JAX ``jax.nn.initializers.glorot_{dist}()`` jitted with the key
  made inside; for Keras (TensorFlow backend)
  ``keras.initializers.Glorot{Dist}(seed=i)(shape)`` read as a NumPy array;
* initcheck's row of the same draws: ``initcheck.verify(initcheck.xavier(dist),
  framework=..., fan_in=784, fan_out=256, samples=N)``, its row seconds;

and reports each pair's ratio, their median, and the process CPU time per
wall second of each (2.0 = both cores busy on a 2-core machine).  Then it
folds already-drawn arrays alone (no drawing) to give the fold's CPU cost per
value.  With W the loop's wall time per draw, C_own its CPU time per draw and
C_fold the fold's, no schedule on P cores beats

    row / loop >= max(1, (C_own + C_fold) / (P * W))

which is what bounds a row when the framework's own loop already keeps the
cores busy (JAX's CPU runtime and TensorFlow's op pool split each draw over
every schedulable core).  A row well above that bound loses its time to the
framework's fork-join ops, each waiting for its share on the core the fold
holds.

With ``--schedules R`` it then times, R rounds alternating in one process,
the same draws (with the reducer initcheck uses) under other schedules of
the fold, each as a multiple of the own loop of its round: ``initcheck row``
(the row itself, in the same rounds as the others), ``one thread``
(initcheck's schedule alone: one fold thread folds draw i while draw i + 1
is made),
``nice 19`` and ``SCHED_IDLE`` (that thread at the lowest priorities),
``queue 4`` (up to four draws waiting for it), ``halves after`` (each draw
folded as two halves on two threads once it is drawn) and ``C only`` (the
fold replaced by kernel passes of about its cost that never take the GIL).
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
    parser.add_argument("--framework", choices=("jax", "keras"), default="jax")
    parser.add_argument("--schedules", type=int, default=0, metavar="ROUNDS")
    args = parser.parse_args()
    samples = int(args.samples)

    import initcheck
    from initcheck.reducers import reducer_for

    sample, version = (_jax_draw if args.framework == "jax" else _keras_draw)(args.dist)
    draws = -(-samples // (FAN_IN * FAN_OUT))

    def own() -> tuple[float, float]:
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(draws):
            sample(i)
        return time.perf_counter() - wall, time.process_time() - cpu

    law = None

    def row() -> tuple[float, float]:
        nonlocal law
        cpu = time.process_time()
        result = initcheck.verify(initcheck.xavier(args.dist), framework=args.framework, fan_in=FAN_IN,
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

    arrays = [sample(i) for i in range(200)]
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
    cpu_own = statistics.median(c for _, c in runs["loop"]) / draws
    cpu_fold = min(fold_s)
    print(f"\n{version}, glorot {args.dist} ({FAN_IN}, {FAN_OUT}) float32, {draws} draws, {cores} cores")
    print(f"own loop       : {wall['loop']:.3f} s, {per_draw * 1e3:.3f} ms a draw, "
          f"{busy['loop']:.2f} CPU s per wall s, {cpu_own * 1e3:.3f} ms CPU a draw")
    cpu_row = statistics.median(c for _, c in runs["row"]) / draws
    print(f"initcheck row  : {wall['row']:.3f} s, {busy['row']:.2f} CPU s per wall s, {cpu_row * 1e3:.3f} ms CPU a draw")
    print(f"row / loop     : median of pairs {statistics.median(ratios):.2f}x "
          f"(pairs: {', '.join(f'{r:.2f}' for r in ratios)})")
    print(f"fold alone     : {cpu_fold * 1e3:.3f} ms CPU a draw, {cpu_fold / (FAN_IN * FAN_OUT) * 1e9:.2f} ns a value")
    print(f"sharing        : the row spends {cpu_row * 1e3:.3f} ms CPU a draw where the loop and the fold alone "
          f"spend {(cpu_own + cpu_fold) * 1e3:.3f} ms")
    bound = max(1.0, (cpu_own + cpu_fold) / (cores * per_draw))
    print(f"no schedule on {cores} cores beats row / loop = (CPU of the loop + CPU of the fold) / "
          f"(cores x loop wall) = {bound:.2f}x")
    if args.schedules:
        _schedules(sample, draws, law, args.schedules, own, lambda: row()[0])


def _schedules(sample, draws: int, law, rounds: int, own, row) -> None:
    """The fold schedules of the module docstring, ``rounds`` rounds, each a multiple of its round's own loop."""
    import collections
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from initcheck import kernels
    from initcheck.reducers import reducer_for

    first = sample(0)
    size = first.size

    def on_fold_thread(setup=None, depth=1, fold=None):
        def run() -> float:
            reducer = reducer_for(first, law, expected_values=draws * size)
            step = fold(reducer) if fold else reducer.fold
            pending = collections.deque()
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=1, initializer=setup) as folder:
                for i in range(draws):
                    x = sample(i)
                    while len(pending) >= depth:
                        pending.popleft().result()
                    pending.append(folder.submit(step, x))
                for future in pending:
                    future.result()
            return time.perf_counter() - start
        return run

    def halves_after() -> float:
        rows = first.shape[0] // 2
        reducers = [reducer_for(first[:rows], law), reducer_for(first[rows:], law)]
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=2) as folders:
            for i in range(draws):
                x = sample(i)
                done = [folders.submit(reducers[0].fold, x[:rows]), folders.submit(reducers[1].fold, x[rows:])]
                for future in done:
                    future.result()
        return time.perf_counter() - start

    def kernel_passes(reducer):
        # the value passes of the fold (twice the kernel fold: about the whole fold's CPU), no Python between
        g = reducer._summary.grid
        sums, extremes, counts = np.zeros(4), np.array([np.inf, -np.inf]), np.zeros(4, np.int64)
        cells = np.zeros(g.cells + 2, np.int32)

        def fold(x):
            x = np.asarray(x).reshape(-1)
            for _ in range(2):
                kernels.fold(x, 0.0, g.lo, g.segment_scale, g.cum, g.slope, sums, extremes, counts, cells)
        return fold

    def priority(nice=None, idle=False):
        def setup():
            tid = threading.get_native_id()
            if idle:
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
            else:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        return setup

    schedules = {"initcheck row": row, "one thread": on_fold_thread(), "nice 19": on_fold_thread(priority(nice=19)),
                 "SCHED_IDLE": on_fold_thread(priority(idle=True)), "queue 4": on_fold_thread(depth=4),
                 "halves after": halves_after, "C only": on_fold_thread(fold=kernel_passes)}
    ratios = {name: [] for name in schedules}
    for r in range(rounds):
        loop = own()[0]
        for name, run in schedules.items():
            ratios[name].append(run() / loop)
        print(f"round {r + 1}: " + ", ".join(f"{name} {v[-1]:.2f}x" for name, v in ratios.items()), flush=True)
    print("\nfold schedules, median of rounds (each round's own loop = 1):")
    for name, v in ratios.items():
        print(f"  {name:<14}: {statistics.median(v):.2f}x (rounds {min(v):.2f}-{max(v):.2f}x)")


def _jax_draw(dist: str):
    """JAX's draw i, forced, and JAX's version."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)  # as the adapter draws
    init = getattr(jax.nn.initializers, f"glorot_{dist}")()
    sample = jax.jit(lambda seed: init(jax.random.key(seed), (FAN_IN, FAN_OUT), jnp.float32))
    return (lambda i: sample(np.uint32(i)).block_until_ready()), f"JAX {jax.__version__}"


def _keras_draw(dist: str):
    """Keras' draw i on the TensorFlow backend, as a NumPy array, and the versions."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras
    import tensorflow as tf

    initializer = getattr(keras.initializers, f"Glorot{dist.capitalize()}")

    def sample(i: int):
        with tf.device("/CPU:0"):
            return np.asarray(initializer(seed=i)(shape=(FAN_IN, FAN_OUT), dtype="float32"))

    return sample, f"Keras {keras.__version__} (TensorFlow {tf.__version__})"


if __name__ == "__main__":
    main()
