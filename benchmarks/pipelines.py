"""Where a PyTorch row's time goes on a small machine: four schedules of the same draws.

``python benchmarks/pipelines.py [-n 1e8] [--rounds 6] [--dist normal]``

A PyTorch row draws on one core (``torch.nn.init`` on a CPU tensor of
(256, 784) is one thread) and folds on the other.  The draws of a row are
independent, each seeded by its index, so they can be scheduled in several
ways.  In one process, alternating ``--rounds`` times, this times:

* ``own``: PyTorch's own loop, the framework's sampling that the per-framework
  section of ``make bench`` compares with;
* ``pipeline``: initcheck's schedule (``initcheck.sampling.sample_row``): one
  thread draws draw i + 1 while a second one folds draw i into the row's one
  reducer, so every draw is made on one core and read on the other;
* ``swap``: two threads, each drawing every other draw into its own tensor
  and folding it into the one reducer in turn (draw i waits for the fold of
  draw i - 1): each draw is folded on the core that made it, the same
  statistics bit for bit, and the reducer's state (its histogram and the
  previous draw kept for the lag-1 pairs) moves between the cores instead;
* ``two``: two threads, each drawing every other draw and folding it into a
  reducer of its own (the work of two half-rows; their statistics are not
  merged here): nothing moves between the cores.

Each line gives the median seconds of the rounds and their ratio to ``own``.
The gap between ``pipeline`` and ``two`` is what moving each draw (and the
fold's state) between the cores costs on the machine.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

SHAPE = (256, 784)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--samples", type=float, default=1e8)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--dist", choices=("normal", "uniform"), default="normal")
    args = parser.parse_args()

    import numpy as np
    import torch

    from initcheck.laws import Normal, Uniform
    from initcheck.reducers import reducer_for

    size = math.prod(SHAPE)
    draws = math.ceil(int(args.samples) / size)
    init = torch.nn.init.xavier_normal_ if args.dist == "normal" else torch.nn.init.xavier_uniform_
    std = math.sqrt(2.0 / sum(SHAPE))
    law = Normal(0.0, std) if args.dist == "normal" else Uniform(-math.sqrt(3.0) * std, math.sqrt(3.0) * std)

    def draw(generator, weight, index):
        generator.manual_seed(index)
        init(weight, generator=generator)
        return weight.numpy()

    def own() -> float:
        generator, weights = torch.Generator(), [torch.empty(SHAPE) for _ in range(2)]
        start = time.perf_counter()
        for i in range(draws):
            draw(generator, weights[i % 2], i)
        return time.perf_counter() - start

    def pipeline() -> float:
        generator, weights = torch.Generator(), [torch.empty(SHAPE) for _ in range(2)]
        reducer = reducer_for(weights[0].numpy(), law, expected_values=draws * size)
        pending = None
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=1) as folder:
            for i in range(draws):
                x = draw(generator, weights[i % 2], i)
                if pending is not None:
                    pending.result()
                pending = folder.submit(reducer.fold, x)
            pending.result()
        return time.perf_counter() - start

    def on_two_threads(worker) -> float:
        threads = [threading.Thread(target=worker, args=(parity,)) for parity in (0, 1)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - start

    def swap() -> float:
        reducer = reducer_for(np.zeros(SHAPE, np.float32), law, expected_values=draws * size)
        turn, changed = [0], threading.Condition()

        def worker(parity: int) -> None:
            generator, weight = torch.Generator(), torch.empty(SHAPE)
            for i in range(parity, draws, 2):
                x = draw(generator, weight, i)
                with changed:
                    changed.wait_for(lambda: turn[0] == i)
                reducer.fold(x)
                with changed:
                    turn[0] += 1
                    changed.notify_all()

        return on_two_threads(worker)

    def two() -> float:
        def worker(parity: int) -> None:
            generator, weight = torch.Generator(), torch.empty(SHAPE)
            reducer = reducer_for(weight.numpy(), law, expected_values=draws * size // 2)
            for i in range(parity, draws, 2):
                reducer.fold(draw(generator, weight, i))

        return on_two_threads(worker)

    schedules = {"own": own, "pipeline": pipeline, "swap": swap, "two": two}
    for run in schedules.values():  # first calls, allocations
        run()
    seconds = {name: [] for name in schedules}
    for r in range(args.rounds):
        for name, run in schedules.items():
            seconds[name].append(run())
        print(f"round {r + 1}: " + ", ".join(f"{name} {s[-1]:.3f} s" for name, s in seconds.items()), flush=True)
    own_s = statistics.median(seconds["own"])
    print(f"\ntorch {torch.__version__} ({torch.get_num_threads()} intra-op threads), xavier {args.dist} "
          f"{SHAPE} float32, {draws} draws, {platform.processor() or platform.machine()}")
    for name, s in seconds.items():
        print(f"{name:<9}: median {statistics.median(s):.3f} s, {statistics.median(s) / own_s:.2f}x own")


if __name__ == "__main__":
    main()
