"""How fast is initcheck, compared with torch alone and with a plain SciPy check?

For a dense 784 -> 256 layer (torch weight shape (256, 784)), xavier normal and
xavier uniform, N = 10^7 and 10^8 values, on PyTorch (CPU unless --device says
otherwise), this script runs three kinds of process, side by side:

1. torch draw-only: the floor.  A fresh ``python -c`` process imports torch and
   draws ceil(N / 200704) tensors of shape (256, 784) with
   ``torch.nn.init.xavier_normal_`` / ``xavier_uniform_``, each through a
   ``torch.Generator`` seeded for that draw, exactly as initcheck draws; the
   tensors are thrown away.  Whatever initcheck does, it cannot beat this.
2. initcheck: the whole command
   ``initcheck xavier --dist D --fan-in 784 --fan-out 256 -f torch -n N -q --no-progress``,
   start-up, drawing, streaming statistics, checks and report included.
3. the SciPy pipeline: what one would write without initcheck.  The same
   draws (same shape, count and per-draw generators), each converted to NumPy,
   concatenated into one array, then ``scipy.stats.kstest`` against N(0, std)
   or U(-a, a), with std = sqrt(2 / (784 + 256)) and a = sqrt(3) * std.  It does
   only the KS test (initcheck also checks mean, variance and bounds), so it is
   a lower bound on the cost of that approach.

Every number is a separate process, so each pays its own interpreter and import
cost; the "process" times are wall clock from spawn to exit, measured here.  The
helper processes of 1 and 3 also report their "in-process" time, from after the
imports to the end of the work (for a CUDA device, after a synchronize).  The
ratio columns compare process with process, since that is what a user waits for.

Peak RSS comes from ``os.wait4`` on each child: the kernel's high-water mark of
resident memory for that one process (initcheck streams, so its peak should stay
close to that of torch alone; the SciPy pipeline holds every sample at once).

Process times are the median of 3 runs, except the SciPy pipeline at 10^8,
which runs once (half a minute a run); --repeats changes that.  The runs of the three kinds are interleaved, and one small
untimed round first warms the page cache.  At 10^7 the process times are mostly
interpreter and import start-up (``import torch`` alone takes seconds here);
the details table shows it.  Targets: initcheck at most 1.5x the
torch draw-only process at N = 10^8, and at least 10x faster than the SciPy
pipeline.

    .venv/bin/python benchmarks/bench.py            # full run, a few minutes on 2 cores
    .venv/bin/python benchmarks/bench.py --quick    # N = 10^7 only
    .venv/bin/python benchmarks/bench.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FAN_IN, FAN_OUT = 784, 256
SHAPE = (FAN_OUT, FAN_IN)  # torch layout: (out, in)
DISTS = ("normal", "uniform")
SIZES_FULL = (10**7, 10**8)
SIZES_QUICK = (10**7,)
# Runs per kind at each N; the median is reported.  At 10^8 the SciPy pipeline
# takes half a minute a run, so it runs once; the two fast kinds run 3 times.
DEFAULT_REPEATS = {
    10**7: {"torch": 3, "initcheck": 3, "scipy": 3},
    10**8: {"torch": 3, "initcheck": 3, "scipy": 1},
}
WARMUP_N = 10**6
TARGET_VS_TORCH = 1.5  # initcheck process <= 1.5 x torch draw-only process, at 10^8
TARGET_VS_SCIPY = 10.0  # SciPy pipeline process >= 10 x initcheck process
TARGET_N = 10**8
MARKER = "BENCH-RESULT "

# The helper run by processes 1 and 3: ``python -c HELPER '{"mode": ..., ...}'``.
# It prints one line, MARKER + JSON, with its own timings (seconds after import).
HELPER = r"""
import json, math, sys, time
t_start = time.perf_counter()
cfg = json.loads(sys.argv[1])
import torch
if cfg["mode"] == "scipy":
    import numpy as np
    import scipy.stats
t_imported = time.perf_counter()

device = torch.device(cfg["device"])
shape = tuple(cfg["shape"])
size = math.prod(shape)
draws = math.ceil(cfg["n"] / size)
init = torch.nn.init.xavier_normal_ if cfg["dist"] == "normal" else torch.nn.init.xavier_uniform_

def sync():
    if device.type == "cuda":
        torch.cuda.synchronize(device)

def draw(index):
    generator = torch.Generator(device=device)
    generator.manual_seed(index)
    weight = torch.empty(shape, dtype=torch.float32, device=device)
    init(weight, generator=generator)
    return weight

out = {"draws": draws, "samples": draws * size, "torch": torch.__version__,
       "threads": torch.get_num_threads(), "import_s": t_imported - t_start}
t0 = time.perf_counter()
if cfg["mode"] == "draw":
    for i in range(draws):
        draw(i)
    sync()
    out["draw_s"] = time.perf_counter() - t0
else:
    arrays = [draw(i).cpu().numpy() for i in range(draws)]  # .cpu() is a no-op on CPU
    t1 = time.perf_counter()
    x = np.concatenate([a.reshape(-1) for a in arrays])
    del arrays
    t2 = time.perf_counter()
    std = math.sqrt(2.0 / (cfg["fan_in"] + cfg["fan_out"]))
    if cfg["dist"] == "normal":
        ks = scipy.stats.kstest(x, "norm", args=(0.0, std))
    else:
        bound = math.sqrt(3.0) * std
        ks = scipy.stats.kstest(x, "uniform", args=(-bound, 2.0 * bound))
    t3 = time.perf_counter()
    out.update(draw_s=t1 - t0, concat_s=t2 - t1, kstest_s=t3 - t2,
               ks_statistic=float(ks.statistic), ks_pvalue=float(ks.pvalue))
out["work_s"] = time.perf_counter() - t0
print(__MARKER__ + json.dumps(out), flush=True)
""".replace("__MARKER__", repr(MARKER))


@dataclass
class Run:
    """One finished process: wall time, peak RSS and whatever the helper reported."""

    wall_s: float
    peak_rss_mib: float
    report: dict = field(default_factory=dict)
    exit_code: int = 0


def run_process(argv: list[str]) -> Run:
    """Spawn ``argv``, wait for it with ``os.wait4`` and return its wall time and peak RSS.

    ``wait4`` gives the resource usage of that one child (not the max over all
    children, as ``RUSAGE_CHILDREN`` would).  Exit 1 from initcheck means a
    statistical check failed: the timing still stands, but it is reported.
    """
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr)
        stdout = process.stdout.read()
        process.stdout.close()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = code = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        errors = stderr.read().decode(errors="replace")
    text = stdout.decode(errors="replace")
    failed_check = code == 1 and Path(argv[0]).name == "initcheck" and "Traceback" not in errors
    if failed_check:
        tail = "\n    ".join((text + errors).strip().splitlines()[-4:])
        print(f"  note: initcheck exit 1 (a check failed): {' '.join(argv[1:])}\n    {tail}", file=sys.stderr)
    elif code != 0:
        raise SystemExit(f"command failed (exit {code}): {' '.join(argv[:3])} ...\n{text}{errors}")
    report = {}
    for line in text.splitlines():
        if line.startswith(MARKER):
            report = json.loads(line[len(MARKER):])
    return Run(wall, usage.ru_maxrss / 1024.0, report, code)  # ru_maxrss is in KiB on Linux


def helper_argv(mode: str, dist: str, n: int, device: str) -> list[str]:
    config = {"mode": mode, "dist": dist, "n": n, "device": device,
              "shape": list(SHAPE), "fan_in": FAN_IN, "fan_out": FAN_OUT}
    return [sys.executable, "-c", HELPER, json.dumps(config)]


def initcheck_argv(dist: str, n: int, device: str) -> list[str]:
    executable = Path(sys.executable).parent / "initcheck"
    return [str(executable), "xavier", "--dist", dist, "--fan-in", str(FAN_IN), "--fan-out", str(FAN_OUT),
            "-f", "torch", "-n", str(n), "--device", device, "-q", "--no-progress"]


KINDS = ("torch", "initcheck", "scipy")


def commands(dist: str, n: int, device: str) -> dict[str, list[str]]:
    return {
        "torch": helper_argv("draw", dist, n, device),
        "initcheck": initcheck_argv(dist, n, device),
        "scipy": helper_argv("scipy", dist, n, device),
    }


@dataclass
class Case:
    """All runs of one (N, dist) cell, by kind."""

    n: int
    dist: str
    runs: dict[str, list[Run]]

    def wall(self, kind: str) -> float:
        return statistics.median(r.wall_s for r in self.runs[kind])

    def inner(self, kind: str, key: str) -> float:
        return statistics.median(r.report[key] for r in self.runs[kind])

    def rss(self, kind: str) -> float:
        return max(r.peak_rss_mib for r in self.runs[kind])

    def report(self, kind: str) -> dict:
        return self.runs[kind][0].report


def measure(n: int, dist: str, repeats: dict[str, int], device: str) -> Case:
    """Run each kind ``repeats[kind]`` times, interleaved so drift hits the kinds alike."""
    argvs = commands(dist, n, device)
    runs: dict[str, list[Run]] = {kind: [] for kind in KINDS}
    for attempt in range(max(repeats.values())):
        for kind in KINDS:
            if attempt >= repeats[kind]:
                continue
            run = run_process(argvs[kind])
            runs[kind].append(run)
            print(f"  N={fmt_n(n)} {dist:<7} {kind:<9} run {attempt + 1}/{repeats[kind]}: "
                  f"{run.wall_s:6.2f} s", file=sys.stderr, flush=True)
    return Case(n, dist, runs)


def machine_lines(device: str, probe: dict) -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import numpy
    import scipy

    return [
        f"CPU      : {model}, {os.cpu_count()} logical cores ({usable} usable by this process)",
        f"Python   : {platform.python_version()} on {platform.system()} {platform.release()}",
        f"torch    : {probe['torch']} ({probe['threads']} intra-op threads), numpy {numpy.__version__}, "
        f"scipy {scipy.__version__}",
        f"device   : {device}",
        f"load avg : {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min, at the end; "
        f"other work on the machine skews the times)",
    ]


def fmt_n(n: int) -> str:
    exponent = math.log10(n)
    return f"1e{round(exponent)}" if exponent == round(exponent) else f"{n:,}"


def render(cases: list[Case], repeats: dict[int, dict[str, int]]) -> list[str]:
    header = ("N", "dist", "torch draw-only", "initcheck", "scipy pipeline",
              "initcheck/torch", "scipy/initcheck")
    sub = ("", "", "process / in-proc s", "process s", "process / in-proc s",
           "(process)", "(process)")
    rows = []
    for c in cases:
        rows.append((
            fmt_n(c.n), c.dist,
            f"{c.wall('torch'):.2f} / {c.inner('torch', 'draw_s'):.2f}",
            f"{c.wall('initcheck'):.2f}",
            f"{c.wall('scipy'):.2f} / {c.inner('scipy', 'work_s'):.2f}",
            f"{c.wall('initcheck') / c.wall('torch'):.2f}x",
            f"{c.wall('scipy') / c.wall('initcheck'):.1f}x",
        ))
    widths = [max(len(r[i]) for r in (header, sub, *rows)) for i in range(len(header))]

    def line(cells):
        return "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths)))

    out = [line(header), line(sub), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    for n, counts in repeats.items():
        runs = ", ".join(f"{kind} {k}" for kind, k in counts.items())
        out.append(f"(N={fmt_n(n)}: median of runs per kind: {runs})")
    out.append("(in-proc = after the imports, until the work is done)")
    return out


def render_details(cases: list[Case]) -> list[str]:
    """Where the time goes inside the helpers, how many values, and peak memory."""
    out = ["N     dist     values       draws | import torch s | scipy: draw  concat  kstest  KS p-value | "
           "peak RSS MiB: torch  initcheck  scipy"]
    for c in cases:
        s = c.report("scipy")
        out.append(
            f"{fmt_n(c.n):<5} {c.dist:<8} {s['samples']:>11,} {s['draws']:>6} | "
            f"{c.inner('torch', 'import_s'):14.2f} | "
            f"{c.inner('scipy', 'draw_s'):11.2f} {c.inner('scipy', 'concat_s'):7.2f} "
            f"{c.inner('scipy', 'kstest_s'):7.2f} {s['ks_pvalue']:11.3g} | "
            f"{c.rss('torch'):19.0f} {c.rss('initcheck'):10.0f} {c.rss('scipy'):6.0f}"
        )
    return out


def render_targets(cases: list[Case]) -> list[str]:
    out = [f"Targets (at N={fmt_n(TARGET_N)}): initcheck <= {TARGET_VS_TORCH}x torch draw-only process; "
           f"scipy pipeline >= {TARGET_VS_SCIPY:.0f}x initcheck"]
    at_target = [c for c in cases if c.n == TARGET_N]
    if not at_target:
        out.append(f"  not measured: N={fmt_n(TARGET_N)} was not run (--quick); the ratios above are for reference")
    failed = sum(r.exit_code == 1 for c in cases for r in c.runs["initcheck"])
    if failed:
        out.append(f"  note: {failed} initcheck run(s) exited 1 (a check failed; see stderr)")
    for c in at_target:
        vs_torch = c.wall("initcheck") / c.wall("torch")
        vs_scipy = c.wall("scipy") / c.wall("initcheck")
        out.append(
            f"  xavier {c.dist:<7}: initcheck/torch = {vs_torch:.2f}x "
            f"[{'MET' if vs_torch <= TARGET_VS_TORCH else 'MISSED'}]   "
            f"scipy/initcheck = {vs_scipy:.1f}x [{'MET' if vs_scipy >= TARGET_VS_SCIPY else 'MISSED'}]"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 10^7 only.")
    parser.add_argument("--device", default="cpu", help="Torch device, passed to every process (default cpu).")
    parser.add_argument("--repeats", type=int, help="Runs of every kind at every N (default: 3, "
                        "but 1 for the SciPy pipeline at 10^8); the median is reported.")
    args = parser.parse_args()

    sizes = SIZES_QUICK if args.quick else SIZES_FULL
    repeats = {n: {kind: args.repeats or DEFAULT_REPEATS[n][kind] for kind in KINDS} for n in sizes}
    started = time.perf_counter()

    print("warming up (one untimed round at N=1e6) ...", file=sys.stderr, flush=True)
    probe = run_process(helper_argv("draw", "normal", WARMUP_N, args.device)).report
    for argv in commands("normal", WARMUP_N, args.device).values():
        run_process(argv)

    cases = [measure(n, dist, repeats[n], args.device) for n in sizes for dist in DISTS]

    title = f"initcheck benchmark: xavier, dense {FAN_IN} -> {FAN_OUT} (torch shape {SHAPE}), float32"
    lines = [title, "=" * len(title), *machine_lines(args.device, probe), ""]
    lines += render(cases, repeats) + [""] + render_details(cases) + [""] + render_targets(cases)
    lines.append(f"(benchmark wall time {time.perf_counter() - started:.0f} s)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
