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
"process" ratio columns compare process with process, since that is what a user
waits for.

The "checking" columns ask a different question: what does it cost to verify
samples that are being drawn anyway?  For initcheck that is its row time (the
``"seconds"`` of the row in ``--json``: the row's draws and folds inside the
process, imports, planning and the report excluded) minus the torch draw-only
in-process draw time; for the SciPy pipeline it is its in-process time minus
its own draw time (convert + concatenate + kstest).  Their ratio is the
"checking" ratio.

Peak RSS comes from ``os.wait4`` on each child: the kernel's high-water mark of
resident memory for that one process (initcheck streams, so its peak should stay
close to that of torch alone; the SciPy pipeline holds every sample at once).

Process times are the median of 3 runs, except the SciPy pipeline at 10^8,
which runs once (half a minute a run); --repeats changes that.  The runs of the three kinds are interleaved, and one small
untimed round first warms the page cache.  At 10^7 the process times are mostly
interpreter and import start-up (``import torch`` alone takes seconds here);
the details table shows it.  Targets at N = 10^8: initcheck's process at
most 1.5x the torch draw-only process; the SciPy pipeline at least 10x
initcheck's process, and its in-process time at least 20x initcheck's row
time (DESIGN section 6).

A second section, "per-framework row time at N = 10^8", compares initcheck with
each framework's own sampler, PyTorch, Keras (TensorFlow backend) and JAX, for
``xavier --dist normal`` and ``--dist uniform`` on the same layer, in-process on
both sides (imports excluded):

* framework sampling: a helper process draws ceil(N / 200704) tensors exactly
  as initcheck's adapter (``initcheck/frameworks/*.py``, ``plan()``) does:
  torch, one ``torch.Generator`` re-seeded per draw and ``xavier_*_`` into one
  of two preallocated (256, 784) tensors used in turn; Keras, a fresh
  ``keras.initializers.GlorotNormal(seed=s)`` / ``GlorotUniform(seed=s)`` per
  draw called with shape (784, 256) and dtype "float32" under ``tf.device``,
  then ``np.asarray`` on the result to force it (on a GPU: no copy, one device
  sync at the end); JAX, ``jax.nn.initializers.glorot_normal()`` /
  ``glorot_uniform()`` jitted once, key included, with ``jax_enable_x64`` on
  (as the adapter sets it), called with the seed ``s`` per draw, each result
  ``block_until_ready()``.  All the draws are timed, the first one
  included, as initcheck's row times its own first draw: for JAX the first
  call is the jit compile, on both sides (its time is also shown apart).
* initcheck row: ``initcheck xavier --dist D --fan-in 784 --fan-out 256 -f F
  -n 1e8 -q --no-progress --json PATH``, the row's ``"seconds"``: its draws and
  folds, first draw (and JAX's compile) included.

Target on CPU: initcheck row <= 1.5x the framework's sampling.  On a GPU
(``--device cuda``) the target is a rate: >= 1e9 values verified per second
after warm-up, read from two sizes as (extra values) / (extra row time), so
that start-up, jit compiles and CUDA warm-up cancel; the end-to-end rate is
printed beside it.  Each pair of runs is repeated 3 times up to 10^8 and
once beyond (the median is shown; --repeats changes that), which keeps
these two sections within about 7 minutes on 2 cores; --quick runs N = 10^7 only.

A third section, "layers", asks whether small layers cost what their size
says.  For each framework (PyTorch, Keras on TensorFlow, JAX; --frameworks), at
N = 10^7 values (--layer-samples), it takes the shapes (2, 5), (1, 1, 3, 3),
(64,) and (256, 784), in PyTorch layout (out, in, *kernel) (initcheck gives each
framework the same layer in its own layout), and runs, side by side, one each:

* initcheck's command ``initcheck xavier --dist uniform --shape S -f F -n N -q
  --no-progress --json OUT``: its process wall time and its row's
  ``"seconds"``.  A 1-d shape has no fans, so (64,) runs ``initcheck
  trunc-normal --std 0.02 --low -0.04 --high 0.04 --shape 64`` instead (2 std
  either side: the only cut Keras' TruncatedNormal and JAX's truncated_normal
  make with these bounds); a command that exits with an error or a SKIP row is
  shown with its reason.
* the framework's own loop: a helper process draws ceil(N / size) tensors the
  way a user loops them: torch, ``xavier_uniform_(w, generator=g)`` (or
  ``trunc_normal_``) into one preallocated tensor, g re-seeded per draw; Keras,
  ``GlorotUniform(seed=s)(shape)`` (or ``TruncatedNormal``) per draw; JAX, the
  initializer jitted once (key made inside from the draw's seed), each draw
  forced.
* the framework's own batched loop, where it has one: ``torch.func.vmap(lambda
  w: init(w), randomness="different")`` over a (K, *shape) tensor, and
  ``jax.jit(jax.vmap(...))`` over K seeds, K = 2^20 // size draws a call.  Keras
  has none (a (K, *shape) call computes other fans); an initializer vmap
  cannot run is shown with its error.

Both helpers' times are in-process, from after the imports (set-up and jit
compiles included).  Derived: each command's process time over the (256, 784)
command of the same framework (target <= 2x), and initcheck's own cost per
draw, (row seconds - the faster of the two own loops) / draws (target <= 10 us
on CPU; below 0 where initcheck draws faster than a user's loop).  Both targets
apply to the three small shapes; the (256, 784) row is their reference.  Every
process of this section is killed after 600 s (--layer-timeout) and reads
"timeout"; one run each, after one small untimed command and loop per
framework.  It runs on CPU only.  With every framework it takes about 10
minutes on 2 cores, and twice that on a busy machine (Keras' own per-draw loop
is over 3 minutes for each of the two smallest shapes); ``--layer-samples 1e5``
takes one or two.

A fourth section, "structure", measures in one process what the structure
checks (positions, draws, copies) cost per value beside the pooled fold they
ride on (benchmarks/structure_cost.py; a few seconds).

A fifth section, "model", measures ``initcheck model`` on BERT-base (built from
its config, --preset transformers) and a plain-torch ResNet-50: the whole
verification of 2 instances against the factory's own time for them, and its
peak RSS against one instance's (benchmarks/model_cost.py; fresh processes,
about 3 minutes on 2 cores).

    .venv/bin/python benchmarks/bench.py            # every section, about 20 minutes on 2 cores
    .venv/bin/python benchmarks/bench.py --quick    # N = 10^7 only, no per-framework section
    .venv/bin/python benchmarks/bench.py --device cuda   # torch cuda:0, Keras /GPU:0, JAX gpu 0
    .venv/bin/python benchmarks/bench.py --sections layers --frameworks torch --layer-samples 1e5
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
import threading
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
TARGET_VS_SCIPY_ROW = 20.0  # SciPy pipeline in-process >= 20 x initcheck's row time (DESIGN 6)
TARGET_N = 10**8
MARKER = "BENCH-RESULT "

# The per-framework section: sizes, frameworks, runs per (framework, dist, N).
FRAMEWORK_SIZES = (10**7, 10**8, 10**9)
FRAMEWORK_N = 10**8  # the ratio target applies from here up
FRAMEWORKS = ("torch", "keras", "jax")
FRAMEWORK_REPEATS = {10**7: 3, 10**8: 3}  # and 1 beyond: keeps `make bench` within ~7 minutes on 2 cores
TARGET_VS_FRAMEWORK = 1.5  # initcheck row seconds <= 1.5 x the framework's own sampling, in-process
TARGET_GPU_RATE = 1e9  # values verified per second, end to end after warm-up, on a GPU

# The layer-size section: one command per (framework, shape), beside the framework's own loops.
LAYER_SAMPLES = 10**7
LAYER_SHAPES = ((2, 5), (1, 1, 3, 3), (64,), (256, 784))  # PyTorch layout (out, in, *kernel)
LAYER_REFERENCE = (256, 784)  # each framework's other commands are compared with this one
LAYER_TRUNC = {"std": 0.02, "low": -0.04, "high": 0.04}  # the 1-d shape's scheme: cut at 2 std, as Keras cuts
LAYER_TIMEOUT_S = 600.0  # per process; a slower one is killed and reads "timeout"
LAYER_WARMUP_N = 10**4  # one untimed command and loop per framework at this N, first
LAYER_CHUNK_VALUES = 2**20  # a batched call draws K = 2^20 // size tensors (at least 1, at most all)
TARGET_LAYER_VS_REFERENCE = 2.0  # a small layer's command <= 2 x the (256, 784) command, same framework
TARGET_LAYER_COST_US = 10.0  # initcheck's own cost per draw, beyond the framework's fastest loop, on CPU

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
       "threads": torch.get_num_threads(), "import_s": t_imported - t_start,
       "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
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
        law = scipy.stats.norm(0.0, std)
    else:
        bound = math.sqrt(3.0) * std
        law = scipy.stats.uniform(-bound, 2.0 * bound)
    ks = scipy.stats.kstest(x, law.cdf)
    t3 = time.perf_counter()
    out.update(draw_s=t1 - t0, concat_s=t2 - t1, kstest_s=t3 - t2,
               ks_statistic=float(ks.statistic), ks_pvalue=float(ks.pvalue))
out["work_s"] = time.perf_counter() - t0
print(__MARKER__ + json.dumps(out), flush=True)
""".replace("__MARKER__", repr(MARKER))

# The helper of the per-framework section: ``python -c FRAMEWORK_HELPER '{...}'``.
# It draws exactly as initcheck's adapter for cfg["framework"] does (see plan() in
# initcheck/frameworks/pytorch.py, tf_keras.py, jax_nn.py) and prints MARKER + JSON.
FRAMEWORK_HELPER = r"""
import json, math, os, sys, time
t_start = time.perf_counter()
cfg = json.loads(sys.argv[1])
framework, normal, device = cfg["framework"], cfg["dist"] == "normal", cfg["device"]  # device: cpu | cuda:N
gpu = None if device == "cpu" else int(device.split(":")[1])
fan_in, fan_out = cfg["fan_in"], cfg["fan_out"]
finish = lambda x: None  # forces one draw's value
done = lambda last: None  # waits for the device, once, at the end (given the last draw)

if framework == "torch":
    import itertools
    import torch
    version = f"torch {torch.__version__}"
    shape = (fan_out, fan_in)
    target = torch.device(device)
    function = torch.nn.init.xavier_normal_ if normal else torch.nn.init.xavier_uniform_
    generator = torch.Generator(device=target)
    weights = [torch.empty(shape, dtype=torch.float32, device=target) for _ in range(2)]
    turn = itertools.count()

    def draw(seed):
        weight = weights[next(turn) % 2]
        generator.manual_seed(seed)
        function(weight, gain=1.0, generator=generator)
        return weight

    if gpu is not None:
        done = lambda last: torch.cuda.synchronize(target)
elif framework == "keras":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import numpy as np
    import tensorflow as tf
    import keras
    version = f"keras {keras.__version__} (tensorflow {tf.__version__})"
    shape = (fan_in, fan_out)
    initializer_class = keras.initializers.GlorotNormal if normal else keras.initializers.GlorotUniform
    tf_device = "/CPU:0" if gpu is None else f"/GPU:{gpu}"

    def draw(seed):
        initializer = initializer_class(seed=seed % (2**31 - 1))
        with tf.device(tf_device):
            return initializer(shape=shape, dtype="float32")

    if gpu is None:
        finish = np.asarray
    else:  # no copy per draw (initcheck folds GPU draws where they are); one sync at the end
        sync_devices = getattr(tf.test.experimental, "sync_devices", None)
        done = (lambda last: sync_devices()) if sync_devices else (lambda last: np.asarray(last))
elif framework == "jax":
    import logging
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)
    import jax
    jax.config.update("jax_enable_x64", True)  # initcheck's adapter turns it on
    version = f"jax {jax.__version__}"
    shape = (fan_in, fan_out)
    initializer = jax.nn.initializers.glorot_normal() if normal else jax.nn.initializers.glorot_uniform()
    target = jax.devices("cpu")[0] if gpu is None else jax.devices("gpu")[gpu]
    import numpy as np
    sample = jax.jit(lambda seed: initializer(jax.random.key(seed), shape, "float32"))

    def draw(seed):
        with jax.default_device(target):
            return sample(np.uint32(seed % 2**32))

    finish = lambda x: x.block_until_ready()
else:
    raise SystemExit(f"unknown framework {framework!r}")
t_imported = time.perf_counter()

size = math.prod(shape)
draws = math.ceil(cfg["n"] / size)
t0 = time.perf_counter()
x = draw(0)  # the first draw, timed apart too: for JAX, the jit compile
finish(x)
done(x)
t1 = time.perf_counter()
for index in range(1, draws):
    x = draw(index)
    finish(x)
done(x)
t2 = time.perf_counter()
out = {"framework": framework, "version": version, "draws": draws, "samples": draws * size,
       "import_s": t_imported - t_start, "first_draw_s": t1 - t0, "draw_s": t2 - t0}
print(__MARKER__ + json.dumps(out), flush=True)
""".replace("__MARKER__", repr(MARKER))


# The helper of the layer-size section: ``python -c LAYER_HELPER '{...}'``.  It draws
# ceil(n / size) tensors of one shape the way a user would loop ("loop"), or in
# batches of K under vmap ("batched"), and prints MARKER + JSON: work_s from after
# the imports (set-up, jit compiles and every draw included), or "skip" / "error".
LAYER_HELPER = r"""
import json, math, os, sys, time
t_start = time.perf_counter()
cfg = json.loads(sys.argv[1])
framework, mode, xavier = cfg["framework"], cfg["mode"], cfg["scheme"] == "xavier-uniform"
std, low, high = cfg["std"], cfg["low"], cfg["high"]
torch_shape = tuple(cfg["shape"])
# Keras and JAX hold a kernel as (*kernel, in, out); a 1-d shape reads the same in both layouts.
shape = torch_shape if framework == "torch" or len(torch_shape) < 2 else \
    (*torch_shape[2:], torch_shape[1], torch_shape[0])
size = math.prod(shape)
draws = math.ceil(cfg["n"] / size)
per_call = max(1, min(draws, cfg["chunk_values"] // size))
calls = [per_call] * (draws // per_call) + ([draws % per_call] if draws % per_call else [])
out = {"framework": framework, "mode": mode, "shape": list(shape), "draws": draws}

def finish(**fields):
    out.update(fields)
    print(__MARKER__ + json.dumps(out), flush=True)
    raise SystemExit(0)

if framework == "torch":
    import torch
    out["version"] = f"torch {torch.__version__}"
    if xavier:
        init = torch.nn.init.xavier_uniform_
    else:
        init = lambda w, **kw: torch.nn.init.trunc_normal_(w, mean=0.0, std=std, a=low, b=high, **kw)
    if mode == "loop":  # one preallocated tensor, its generator re-seeded per draw
        weight = torch.empty(shape)
        generator = torch.Generator()

        def run():
            for seed in range(draws):
                generator.manual_seed(seed)
                init(weight, generator=generator)
    else:  # vmap over a (K, *shape) tensor: each slice sees the layer's shape, gets its own values
        torch.manual_seed(0)
        batched = torch.func.vmap(lambda w: init(w), randomness="different")

        def run():
            for count in calls:
                batched(torch.empty((count, *shape)))
elif framework == "keras":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf
    import keras
    out["version"] = f"keras {keras.__version__} (tensorflow {tf.__version__})"
    if mode != "loop":
        finish(skip="no faithful batch: a (K, *shape) call computes other fans")
    if xavier:
        make = lambda seed: keras.initializers.GlorotUniform(seed=seed)
    elif abs(low + 2 * std) < 1e-12 and abs(high - 2 * std) < 1e-12:
        make = lambda seed: keras.initializers.TruncatedNormal(mean=0.0, stddev=std, seed=seed)
    else:
        finish(skip="TruncatedNormal cuts at 2 std only")

    def run():
        for seed in range(draws):
            make(seed)(shape, dtype="float32")
elif framework == "jax":
    import logging
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)
    import jax
    import numpy as np
    out["version"] = f"jax {jax.__version__}"
    if xavier:
        init = jax.nn.initializers.glorot_uniform()
    elif abs(low + 2 * std) < 1e-12 and abs(high - 2 * std) < 1e-12:
        init = jax.nn.initializers.truncated_normal(stddev=std)  # cut at -2, 2 std by default
    else:
        finish(skip="truncated_normal cuts in std units; these bounds are not +-2 std")
    one = lambda seed: init(jax.random.key(seed), shape, jax.numpy.float32)
    if mode == "loop":  # jitted once, key made inside from the draw's seed, each draw forced
        sample = jax.jit(one)

        def run():
            for seed in range(draws):
                sample(np.uint32(seed)).block_until_ready()
    else:  # jax.vmap over K seeds, jitted (the last, shorter call compiles once more)
        sample = jax.jit(jax.vmap(one))

        def run():
            start = 0
            for count in calls:
                sample(np.arange(start, start + count, dtype=np.uint32)).block_until_ready()
                start += count
else:
    raise SystemExit(f"unknown framework {framework!r}")
t_imported = time.perf_counter()
out.update(import_s=t_imported - t_start, per_call=per_call if mode == "batched" else 1)
try:
    run()
except Exception as error:  # e.g. an initializer that vmap cannot run
    finish(error=f"{type(error).__name__}: {str(error).strip().splitlines()[0][:90]}")
finish(work_s=time.perf_counter() - t_imported)
""".replace("__MARKER__", repr(MARKER))


@dataclass
class Run:
    """One finished process: wall time, peak RSS and whatever the helper reported.

    ``problem`` is empty for a run that finished; otherwise "timeout" or the
    error it ended with (only runs made with ``bounded=True`` get one: the
    others stop the benchmark instead)."""

    wall_s: float
    peak_rss_mib: float
    report: dict = field(default_factory=dict)
    exit_code: int = 0
    problem: str = ""


def run_process(argv: list[str], timeout_s: float | None = None, bounded: bool = False) -> Run:
    """Spawn ``argv``, wait for it with ``os.wait4`` and return its wall time and peak RSS.

    ``wait4`` gives the resource usage of that one child (not the max over all
    children, as ``RUSAGE_CHILDREN`` would).  Exit 1 from initcheck means a
    statistical check failed: the timing still stands, but it is reported.
    With ``timeout_s`` the child is killed once it has run that long and the
    run's ``problem`` reads "timeout"; with ``bounded`` a failed command is
    returned with its last error line as ``problem`` instead of ending the
    benchmark.
    """
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr)
        expired = threading.Event()

        def expire():
            expired.set()
            process.kill()  # not reaped yet (wait4 comes after the timer is joined): still our child

        timer = threading.Timer(timeout_s, expire) if timeout_s else None
        if timer:
            timer.start()
        try:
            stdout = process.stdout.read()
        finally:
            if timer:
                timer.cancel()
                timer.join()
        process.stdout.close()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = code = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        errors = stderr.read().decode(errors="replace")
    text = stdout.decode(errors="replace")
    rss = usage.ru_maxrss / 1024.0  # ru_maxrss is in KiB on Linux
    if expired.is_set():
        return Run(wall, rss, {}, code, f"timeout ({timeout_s:.0f} s)")
    failed_check = code == 1 and Path(argv[0]).name == "initcheck" and "Traceback" not in errors
    if failed_check:
        tail = "\n    ".join((text + errors).strip().splitlines()[-4:])
        print(f"  note: initcheck exit 1 (a check failed): {' '.join(argv[1:])}\n    {tail}", file=sys.stderr)
    elif code != 0:
        if bounded:
            last = ((errors or text).strip().splitlines() or [""])[-1]
            return Run(wall, rss, {}, code, f"exit {code}: {last.removeprefix('initcheck: error: ')}")
        raise SystemExit(f"command failed (exit {code}): {' '.join(argv[:3])} ...\n{text}{errors}")
    report = {}
    for line in text.splitlines():
        if line.startswith(MARKER):
            report = json.loads(line[len(MARKER):])
    return Run(wall, rss, report, code)


def helper_argv(mode: str, dist: str, n: int, device: str) -> list[str]:
    config = {"mode": mode, "dist": dist, "n": n, "device": device,
              "shape": list(SHAPE), "fan_in": FAN_IN, "fan_out": FAN_OUT}
    return [sys.executable, "-c", HELPER, json.dumps(config)]


def framework_helper_argv(framework: str, dist: str, n: int, device: str) -> list[str]:
    config = {"framework": framework, "dist": dist, "n": n, "device": device_name(device),
              "fan_in": FAN_IN, "fan_out": FAN_OUT}
    return [sys.executable, "-c", FRAMEWORK_HELPER, json.dumps(config)]


def device_name(device: str) -> str:
    """``cpu``, ``cuda``, ``cuda:N``, ``gpu``, ``gpu:N`` -> ``cpu`` or ``cuda:N`` (as initcheck reads --device)."""
    kind, _, index = device.strip().lower().partition(":")
    if kind == "cpu":
        return "cpu"
    if kind in ("cuda", "gpu"):
        return f"cuda:{index or 0}"
    raise SystemExit(f"unknown device {device!r}; expected cpu, cuda, cuda:N, gpu or gpu:N")


def initcheck_argv(dist: str, n: int, device: str, json_path: Path, framework: str = "torch") -> list[str]:
    executable = Path(sys.executable).parent / "initcheck"
    return [str(executable), "xavier", "--dist", dist, "--fan-in", str(FAN_IN), "--fan-out", str(FAN_OUT),
            "-f", framework, "-n", str(n), "--device", device, "-q", "--no-progress", "--json", str(json_path)]


def run_initcheck(argv: list[str]) -> Run:
    """Run an initcheck command that writes ``--json PATH``; the run's report is that
    file's one row: ``row_s`` (its "seconds": draws and folds, in-process), api, verdict."""
    json_path = Path(argv[argv.index("--json") + 1])
    json_path.unlink(missing_ok=True)
    run = run_process(argv)
    try:
        rows = json.loads(json_path.read_text())["rows"]
    except (OSError, ValueError, KeyError) as error:
        raise SystemExit(f"initcheck wrote no usable --json ({error}): {' '.join(argv[1:])}")
    if len(rows) != 1 or rows[0]["verdict"] == "SKIP":
        raise SystemExit(f"expected one sampled row, got {[(r['framework'], r['verdict'], r['reason']) for r in rows]}")
    row = rows[0]
    run.report = {"row_s": row["seconds"], "api": row["api"], "verdict": row["verdict"], "device": row["device"],
                  "values": row["statistics"]["count"]}
    return run


KINDS = ("torch", "initcheck", "scipy")


def commands(dist: str, n: int, device: str, json_path: Path) -> dict[str, list[str]]:
    return {
        "torch": helper_argv("draw", dist, n, device),
        "initcheck": initcheck_argv(dist, n, device, json_path),
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


def measure(n: int, dist: str, repeats: dict[str, int], device: str, scratch: Path) -> Case:
    """Run each kind ``repeats[kind]`` times, interleaved so drift hits the kinds alike."""
    argvs = commands(dist, n, device, scratch / "initcheck.json")
    runs: dict[str, list[Run]] = {kind: [] for kind in KINDS}
    for attempt in range(max(repeats.values())):
        for kind in KINDS:
            if attempt >= repeats[kind]:
                continue
            run = run_initcheck(argvs[kind]) if kind == "initcheck" else run_process(argvs[kind])
            runs[kind].append(run)
            print(f"  N={fmt_n(n)} {dist:<7} {kind:<9} run {attempt + 1}/{repeats[kind]}: "
                  f"{run.wall_s:6.2f} s", file=sys.stderr, flush=True)
    return Case(n, dist, runs)


@dataclass
class FrameworkCase:
    """The per-framework section's runs for one (framework, dist): the helper's and initcheck's."""

    framework: str
    dist: str
    n: int
    sampler: list[Run]
    initcheck: list[Run]

    def sampling_s(self) -> float:
        return statistics.median(r.report["draw_s"] for r in self.sampler)

    def first_draw_s(self) -> float:
        return statistics.median(r.report["first_draw_s"] for r in self.sampler)

    def row_s(self) -> float:
        return statistics.median(r.report["row_s"] for r in self.initcheck)

    def ratio(self) -> float:
        return self.row_s() / self.sampling_s()

    def rate(self) -> float:
        """Values verified per second: the row's values over its seconds."""
        return self.initcheck[0].report["values"] / self.row_s()

    def rss(self) -> float:
        return statistics.median(r.peak_rss_mib for r in self.initcheck)


def measure_frameworks(sizes, frameworks, repeats: dict[int, int], device: str, scratch: Path) -> list[FrameworkCase]:
    """Each framework's sampler and initcheck's row, ``repeats[n]`` times each, interleaved."""
    cases = [FrameworkCase(f, dist, n, [], []) for n in sizes for dist in DISTS for f in frameworks]
    for attempt in range(max(repeats.values())):
        for case in cases:
            n = case.n
            if attempt >= repeats[n]:
                continue
            helper = framework_helper_argv(case.framework, case.dist, n, device)
            command = initcheck_argv(case.dist, n, device, scratch / "framework.json", case.framework)
            for label, runs, runner, argv in (("sampling", case.sampler, run_process, helper),
                                              ("initcheck", case.initcheck, run_initcheck, command)):
                run = runner(argv)
                runs.append(run)
                inner = run.report.get("draw_s", run.report.get("row_s"))
                print(f"  N={fmt_n(n)} {case.framework:<5} {case.dist:<7} {label:<9} run {attempt + 1}/{repeats[n]}: "
                      f"{run.wall_s:6.2f} s process, {inner:6.2f} s in-process", file=sys.stderr, flush=True)
    return cases


def fmt_s(seconds: float) -> str:
    """Seconds to 3 significant figures or so (1234.5 -> 1235, 12.34 -> 12.3, 0.01234 -> 0.0123)."""
    return f"{seconds:.0f}" if seconds >= 100 else f"{seconds:.3g}" if seconds >= 0.001 else f"{seconds:.1g}"


def layer_scheme(shape: tuple[int, ...]) -> str:
    """xavier uniform where the shape has fans; a 1-d shape has none, so the truncated normal."""
    return "xavier-uniform" if len(shape) >= 2 else "trunc-normal"


def layer_command(framework: str, shape: tuple[int, ...], n: int, device: str, json_path: Path) -> list[str]:
    executable = Path(sys.executable).parent / "initcheck"
    if layer_scheme(shape) == "xavier-uniform":
        scheme = ["xavier", "--dist", "uniform"]
    else:
        scheme = ["trunc-normal", "--std", str(LAYER_TRUNC["std"]), "--low", str(LAYER_TRUNC["low"]),
                  "--high", str(LAYER_TRUNC["high"])]
    return [str(executable), *scheme, "--shape", ",".join(map(str, shape)), "-f", framework, "-n", str(n),
            "--device", device, "-q", "--no-progress", "--json", str(json_path)]


def layer_helper_argv(framework: str, shape: tuple[int, ...], n: int, mode: str) -> list[str]:
    config = {"framework": framework, "mode": mode, "scheme": layer_scheme(shape), "shape": list(shape), "n": n,
              "chunk_values": LAYER_CHUNK_VALUES, **LAYER_TRUNC}
    return [sys.executable, "-c", LAYER_HELPER, json.dumps(config)]


def run_layer_command(argv: list[str], timeout_s: float) -> Run:
    """initcheck's command, bounded: its --json row (row_s, api, count) or a ``problem``
    ("timeout", the error it exited with, or "SKIP: why")."""
    json_path = Path(argv[argv.index("--json") + 1])
    json_path.unlink(missing_ok=True)
    run = run_process(argv, timeout_s=timeout_s, bounded=True)
    if run.problem:
        return run
    try:
        rows = json.loads(json_path.read_text())["rows"]
    except (OSError, ValueError, KeyError) as error:
        run.problem = f"no usable --json ({error})"
        return run
    if len(rows) != 1:
        run.problem = f"{len(rows)} rows, expected 1"
    elif rows[0]["verdict"] == "SKIP":
        run.problem = f"SKIP: {rows[0]['reason']}"
    else:
        row = rows[0]
        run.report = {"row_s": row["seconds"], "api": row["api"], "verdict": row["verdict"],
                      "values": row["statistics"]["count"], "shape": row["shape"]}
    return run


def run_layer_helper(argv: list[str], timeout_s: float) -> Run:
    """The framework's own loop, bounded; "skip" and "error" from the helper become the run's ``problem``."""
    run = run_process(argv, timeout_s=timeout_s, bounded=True)
    if not run.problem:
        if "skip" in run.report:
            run.problem = f"n/a: {run.report['skip']}"
        elif "error" in run.report:
            run.problem = f"fails: {run.report['error']}"
        elif "work_s" not in run.report:
            run.problem = "no result"
    return run


@dataclass
class LayerCase:
    """One (framework, shape) of the layer-size section: initcheck's command and the framework's own loops."""

    framework: str
    shape: tuple[int, ...]
    n: int
    command: Run
    loop: Run
    batched: Run

    @property
    def draws(self) -> int:
        return math.ceil(self.n / math.prod(self.shape))

    def fastest_own_s(self) -> float | None:
        times = [r.report["work_s"] for r in (self.loop, self.batched) if not r.problem]
        return min(times) if times else None

    def cost_per_draw_us(self) -> float | None:
        """initcheck's own cost per draw: (row seconds - the fastest own loop) / draws, in microseconds."""
        own = self.fastest_own_s()
        if self.command.problem or own is None:
            return None
        return (self.command.report["row_s"] - own) / self.draws * 1e6


def measure_layers(frameworks, n: int, device: str, timeout_s: float, scratch: Path) -> list[LayerCase]:
    """For each framework and shape, one run each of: initcheck's command, the loop, the batched loop."""
    cases = []
    for framework in frameworks:
        # One small untimed command and loop first: the framework's files into the page cache.
        run_process(layer_command(framework, LAYER_SHAPES[0], LAYER_WARMUP_N, device, scratch / "layer.json"),
                    timeout_s=timeout_s, bounded=True)
        run_process(layer_helper_argv(framework, LAYER_SHAPES[0], LAYER_WARMUP_N, "loop"), timeout_s=timeout_s,
                    bounded=True)
        for shape in LAYER_SHAPES:
            runs = {}
            for label, argv, runner in (
                ("command", layer_command(framework, shape, n, device, scratch / "layer.json"), run_layer_command),
                ("loop", layer_helper_argv(framework, shape, n, "loop"), run_layer_helper),
                ("batched", layer_helper_argv(framework, shape, n, "batched"), run_layer_helper),
            ):
                run = runs[label] = runner(argv, timeout_s)
                inner = run.report.get("row_s", run.report.get("work_s"))
                said = run.problem or f"{run.wall_s:7.2f} s process, {inner:7.2f} s in-process"
                print(f"  layers N={fmt_n(n)} {framework:<5} {str(shape):<12} {label:<7}: {said}",
                      file=sys.stderr, flush=True)
            cases.append(LayerCase(framework, shape, n, **runs))
    return cases


def layer_reference(cases: list[LayerCase], c: LayerCase) -> LayerCase | None:
    return next((r for r in cases if r.framework == c.framework and r.shape == LAYER_REFERENCE), None)


def layer_vs_reference(cases: list[LayerCase], c: LayerCase) -> tuple[float | None, str]:
    """(ratio, text): this command's process time over the (256, 784) command's, same framework;
    a timed-out command reads "> t/ref" (a lower bound)."""
    ref = layer_reference(cases, c)
    if ref is None or ref.command.problem:
        return None, "n/a (no reference)"
    if c.command.problem.startswith("timeout"):
        ratio = c.command.wall_s / ref.command.wall_s
        return ratio, f"> {ratio:.1f}x"
    if c.command.problem:
        return None, "n/a"
    ratio = c.command.wall_s / ref.command.wall_s
    return ratio, f"{ratio:.2f}x"


def render_layers(cases: list[LayerCase], device: str, timeout_s: float) -> list[str]:
    n = cases[0].n
    title = f"Layer sizes at N={fmt_n(n)} on {device}: initcheck's command beside the framework's own loops"
    out = [title, "-" * len(title)]
    header = ("framework", "shape", "scheme", "draws", "initcheck command", "vs (256, 784)", "own loop",
              "batched (K a call)", "initcheck cost")
    sub = ("", "(torch layout)", "", "", "process s / row s", "command, process", "in-proc s", "in-proc s",
           "us a draw")
    rows = []
    problems = []

    def cell(run: Run, text: str) -> str:
        if not run.problem:
            return text
        if run.problem.startswith("timeout"):
            return "timeout"
        if run.problem not in problems:
            problems.append(run.problem)
        return f"[{problems.index(run.problem) + 1}]"

    for c in cases:
        command = c.command
        scheme = "xavier uniform" if layer_scheme(c.shape) == "xavier-uniform" else "trunc-normal"
        command_text = cell(command, f"{fmt_s(command.wall_s)} / {fmt_s(command.report.get('row_s', 0))}")
        if command.problem.startswith("timeout"):
            command_text = f"timeout (> {command.wall_s:.0f} s)"
        cost = c.cost_per_draw_us()
        rows.append((
            c.framework, str(c.shape), scheme, f"{c.draws:,}", command_text, layer_vs_reference(cases, c)[1],
            cell(c.loop, fmt_s(c.loop.report.get("work_s", 0))),
            cell(c.batched, f"{fmt_s(c.batched.report.get('work_s', 0))} ({c.batched.report.get('per_call', 0):,})"),
            f"{cost:.3g}" if cost is not None else "n/a",
        ))
    out += table(header, sub, rows, left=3)
    out += [f"  [{i}] {problem}" for i, problem in enumerate(problems, 1)]
    out.append(f"(one run each; every process bounded at {timeout_s:.0f} s.  initcheck command = "
               f"`initcheck xavier --dist uniform --shape S -f F -n N -q --no-progress --json OUT`,\n"
               f" for (64,) `initcheck trunc-normal --std {LAYER_TRUNC['std']} --low {LAYER_TRUNC['low']} "
               f"--high {LAYER_TRUNC['high']} --shape 64 ...`: process = wall time, row = its --json \"seconds\";\n"
               f" own loop = ceil(N / size) draws as a user loops them (torch: xavier_uniform_ / trunc_normal_ "
               f"into one tensor, its Generator re-seeded per draw;\n keras: GlorotUniform(seed=s)(shape) / "
               f"TruncatedNormal per draw; jax: the initializer jitted once, key from the draw's seed, each "
               f"draw forced);\n batched = torch.func.vmap(..., randomness=\"different\") over (K, *shape), "
               f"jax.jit(jax.vmap(...)) over K seeds, K = {LAYER_CHUNK_VALUES:,} // size;\n in-proc = after the "
               f"imports, set-up and jit compiles included; vs (256, 784) = process time over that command's, "
               f"same framework;\n initcheck cost = (row s - the fastest of own loop and batched) / draws; "
               f"below 0 where initcheck draws faster than that loop)")
    versions = sorted({r.report["version"] for c in cases for r in (c.loop, c.batched) if r.report.get("version")})
    out.append(f"(versions: {', '.join(versions)})")
    return out


def render_layer_targets(cases: list[LayerCase], device: str) -> list[str]:
    n = cases[0].n if cases else LAYER_SAMPLES
    out = [f"Targets (layer sizes, N={fmt_n(n)}): a small layer's command <= {TARGET_LAYER_VS_REFERENCE:g}x the "
           f"{LAYER_REFERENCE} command of its framework (process time);\n  initcheck's own cost <= "
           f"{TARGET_LAYER_COST_US:g} us a draw beyond the framework's fastest own loop (on CPU)"]
    if not cases:
        out.append("  not measured: the layer-size section was skipped" +
                   (" (it runs on CPU only)" if device != "cpu" else ""))
        return out
    for c in cases:
        if c.shape == LAYER_REFERENCE:
            continue
        ratio, text = layer_vs_reference(cases, c)
        line = f"  {c.framework:<5} {str(c.shape):<12}: "
        if c.command.problem and not c.command.problem.startswith("timeout"):
            out.append(line + f"not measured ({c.command.problem})")
            continue
        if ratio is None:
            line += "command not measured (the reference command did not finish)"
        elif c.command.problem and ratio <= TARGET_LAYER_VS_REFERENCE:
            line += f"command {text} (timed out: not resolved)"
        else:
            line += f"command {text} [{'MET' if ratio <= TARGET_LAYER_VS_REFERENCE else 'MISSED'}]"
        cost = c.cost_per_draw_us()
        if c.command.problem:
            line += "   cost not measured (the command timed out)"
        elif cost is None:
            line += "   cost not measured (no own loop finished)"
        elif device == "cpu":
            line += f"   cost {cost:.3g} us a draw [{'MET' if cost <= TARGET_LAYER_COST_US else 'MISSED'}]"
        else:
            line += f"   cost {cost:.3g} us a draw (the target is for CPU)"
        out.append(line)
    ref = [c for c in cases if c.shape == LAYER_REFERENCE and c.cost_per_draw_us() is not None]
    for c in ref:
        out.append(f"  {c.framework:<5} {str(c.shape):<12}: the reference, not judged (cost {c.cost_per_draw_us():.3g} "
                   f"us a draw, each draw {math.prod(c.shape):,} values to fold)")
    return out


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
        f"device   : {device}" + (f" ({probe['gpu']})" if probe.get("gpu") else ""),
        f"load avg : {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min, at the end; "
        f"other work on the machine skews the times)",
    ]


def fmt_n(n: int) -> str:
    exponent = math.log10(n)
    return f"1e{round(exponent)}" if exponent == round(exponent) else f"{n:,}"


def table(header: tuple[str, ...], sub: tuple[str, ...], rows: list[tuple[str, ...]], left: int = 2) -> list[str]:
    """Plain text columns: the first ``left`` flush left, the rest flush right."""
    widths = [max(len(r[i]) for r in (header, sub, *rows)) for i in range(len(header))]

    def line(cells):
        return "  ".join(cell.ljust(w) if i < left else cell.rjust(w)
                         for i, (cell, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(header), line(sub), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def checking_costs(c: Case) -> tuple[float, float]:
    """(initcheck, scipy): in-process seconds beyond drawing the same samples.

    initcheck: its row seconds (--json) minus the torch draw-only in-process draw;
    scipy: its in-process work minus its own draws (convert + concatenate + kstest)."""
    initcheck = c.inner("initcheck", "row_s") - c.inner("torch", "draw_s")
    scipy = c.inner("scipy", "work_s") - c.inner("scipy", "draw_s")
    return initcheck, scipy


def render(cases: list[Case], repeats: dict[int, dict[str, int]]) -> list[str]:
    header = ("N", "dist", "torch draw-only", "initcheck", "scipy pipeline",
              "initcheck/torch", "scipy/initcheck", "|", "checking: initcheck", "scipy", "scipy/initcheck")
    sub = ("", "", "process / in-proc s", "process / row s", "process / in-proc s",
           "(process)", "(process)", "|", "row - torch draw s", "in-proc - draw s", "(checking)")
    rows = []
    for c in cases:
        check_initcheck, check_scipy = checking_costs(c)
        rows.append((
            fmt_n(c.n), c.dist,
            f"{c.wall('torch'):.2f} / {c.inner('torch', 'draw_s'):.2f}",
            f"{c.wall('initcheck'):.2f} / {c.inner('initcheck', 'row_s'):.2f}",
            f"{c.wall('scipy'):.2f} / {c.inner('scipy', 'work_s'):.2f}",
            f"{c.wall('initcheck') / c.wall('torch'):.2f}x",
            f"{c.wall('scipy') / c.wall('initcheck'):.1f}x",
            "|",
            f"{check_initcheck:.2f}",
            f"{check_scipy:.2f}",
            f"{check_scipy / check_initcheck:.1f}x" if check_initcheck > 0 else "n/a (<= 0)",
        ))
    out = table(header, sub, rows)
    for n, counts in repeats.items():
        runs = ", ".join(f"{kind} {k}" for kind, k in counts.items())
        out.append(f"(N={fmt_n(n)}: median of runs per kind: {runs})")
    out.append("(in-proc = after the imports, until the work is done; row = initcheck's --json row \"seconds\", "
               "its draws + folds)")
    out.append("(process ratios: whole process vs whole process, start-up included; checking ratio: the cost of "
               "verifying samples\n that are drawn anyway, i.e. scipy's convert + concat + kstest vs initcheck's "
               "row time beyond torch's draws)")
    return out


def render_frameworks(cases: list[FrameworkCase], repeats: dict[int, int], device: str) -> list[str]:
    title = f"Per-framework row time on {device} (in-process, imports excluded)"
    out = [title, "-" * len(title)]
    header = ("framework", "dist", "N", "initcheck's API (from --json)", "draws", "framework sampling",
              "initcheck row", "initcheck/framework", "verified", "peak RSS")
    sub = ("", "", "", "", "", "in-proc s (first draw s)", "--json seconds", f"(target <= {TARGET_VS_FRAMEWORK}x)",
           "values/s", "MiB")
    rows = []
    for c in cases:
        report, row = c.sampler[0].report, c.initcheck[0].report
        rows.append((
            c.framework, c.dist, fmt_n(c.n), row["api"], f"{report['draws']}",
            f"{c.sampling_s():.2f} ({c.first_draw_s():.2f})",
            f"{c.row_s():.2f}",
            f"{c.ratio():.2f}x",
            f"{c.rate():.3g}",
            f"{c.rss():.0f}",
        ))
    out += table(header, sub, rows, left=4)
    runs = "runs each: " + ", ".join(f"{repeats[n]} at N={fmt_n(n)}" for n in sorted(repeats)) + " (the median)"
    out.append(f"({runs}; framework sampling = the adapter's exact draw calls, the first one included and also "
               f"shown in brackets\n (for jax: the jit compile); initcheck row = its draws + folds, first draw "
               f"and compile included;\n verified = the row's values / its seconds; peak RSS = the initcheck process's)")
    versions = sorted({c.sampler[0].report["version"] for c in cases})
    out.append(f"(versions: {', '.join(versions)})")
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


def render_targets(cases: list[Case], framework_cases: list[FrameworkCase], device: str) -> list[str]:
    out = []
    if cases:
        out.append(f"Targets (at N={fmt_n(TARGET_N)}): initcheck <= {TARGET_VS_TORCH}x torch draw-only process; "
                   f"scipy pipeline >= {TARGET_VS_SCIPY:.0f}x initcheck process and >= {TARGET_VS_SCIPY_ROW:.0f}x "
                   f"initcheck's row time (in-process, imports excluded on both sides)")
    at_target = [c for c in cases if c.n == TARGET_N]
    if cases and not at_target:
        out.append(f"  not measured: N={fmt_n(TARGET_N)} was not run (--quick); the ratios above are for reference")
    failed = sum(r.exit_code == 1 for c in cases for r in c.runs["initcheck"])
    if failed:
        out.append(f"  note: {failed} initcheck run(s) exited 1 (a check failed; see stderr)")
    for c in at_target:
        vs_torch = c.wall("initcheck") / c.wall("torch")
        vs_scipy = c.wall("scipy") / c.wall("initcheck")
        vs_scipy_row = c.inner("scipy", "work_s") / c.inner("initcheck", "row_s")
        check_initcheck, check_scipy = checking_costs(c)
        checking = f"{check_scipy / check_initcheck:.0f}x" if check_initcheck > 0 else "n/a"
        out.append(
            f"  xavier {c.dist:<7}: initcheck/torch = {vs_torch:.2f}x "
            f"[{'MET' if vs_torch <= TARGET_VS_TORCH else 'MISSED'}]   "
            f"scipy/initcheck = {vs_scipy:.1f}x process [{'MET' if vs_scipy >= TARGET_VS_SCIPY else 'MISSED'}], "
            f"{vs_scipy_row:.0f}x in-process [{'MET' if vs_scipy_row >= TARGET_VS_SCIPY_ROW else 'MISSED'}], "
            f"{checking} checking"
        )
    if device == "cpu":
        out.append(f"Target (N >= {fmt_n(FRAMEWORK_N)}, in-process): initcheck row <= {TARGET_VS_FRAMEWORK}x "
                   f"the framework's own sampling")
    else:
        out.append(f"Target on a GPU: >= {TARGET_GPU_RATE:.0e} values verified per second after warm-up, i.e. "
                   f"the extra values of the largest N over the next one\n  divided by the extra row time "
                   f"(start-up, compiles and CUDA warm-up cancel); end to end, start-up included, shown beside it")
    if not framework_cases:
        out.append("  not measured: the per-framework section was skipped")
    failed = sum(r.exit_code == 1 for c in framework_cases for r in c.initcheck)
    if failed:
        out.append(f"  note: {failed} per-framework initcheck run(s) exited 1 (a check failed; see stderr)")
    for c in framework_cases:
        if device == "cpu" and c.n >= FRAMEWORK_N:
            out.append(f"  {c.framework:<5} xavier {c.dist:<7} N={fmt_n(c.n)}: initcheck/framework = {c.ratio():.2f}x "
                       f"[{'MET' if c.ratio() <= TARGET_VS_FRAMEWORK else 'MISSED'}]")
    if device != "cpu":
        if framework_cases and not list(warm_pairs(framework_cases)):
            out.append("  not measured: it needs two --framework-sizes")
        for (framework, dist), small, big in warm_pairs(framework_cases):
            extra_s = big.row_s() - small.row_s()
            extra_values = big.initcheck[0].report["values"] - small.initcheck[0].report["values"]
            line = f"  {framework:<5} xavier {dist:<7} N={fmt_n(small.n)} -> {fmt_n(big.n)}: "
            if extra_s <= 0:
                line += "after warm-up not resolved (the larger row was no slower: noise)"
            else:
                rate = extra_values / extra_s
                line += f"after warm-up {rate:.3g} values/s [{'MET' if rate >= TARGET_GPU_RATE else 'MISSED'}]"
            out.append(line + f"; end to end at {fmt_n(big.n)} {big.rate():.3g} values/s")
    return out


def warm_pairs(cases: list[FrameworkCase]):
    """((framework, dist), case at the second largest N, case at the largest N) for each pair measured at two N."""
    by_key: dict = {}
    for c in cases:
        by_key.setdefault((c.framework, c.dist), []).append(c)
    for key, found in by_key.items():
        found = sorted(found, key=lambda c: c.n)
        if len(found) >= 2:
            yield key, found[-2], found[-1]


def installed_frameworks() -> list[str]:
    import importlib.util

    module = {"torch": "torch", "keras": "tensorflow", "jax": "jax"}
    return [f for f in FRAMEWORKS if importlib.util.find_spec(module[f]) is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 10^7 only, in both sections.")
    parser.add_argument("--device", default="cpu", help="Device, passed to every process (default cpu; "
                        "cuda / cuda:N means torch cuda:N, Keras /GPU:N, JAX gpu N).")
    parser.add_argument("--repeats", type=int, help="Runs of every kind at every N (default: 3, "
                        "but 1 for the SciPy pipeline at 10^8 and 1 beyond 10^8 in the per-framework "
                        "section); the median is reported.")
    parser.add_argument("--sections", default="process,frameworks,layers,structure,model,sharded",
                        help="Comma list of sections to run: process, frameworks, layers, structure, model, sharded "
                        "(default all six).")
    parser.add_argument("--frameworks", help="Comma list for the per-framework and layer-size sections "
                        "(default: every installed one of torch, keras, jax).")
    parser.add_argument("--layer-samples", default=str(LAYER_SAMPLES),
                        help="N of the layer-size section (default 1e7; 1e5 is quick).")
    parser.add_argument("--layer-timeout", type=float, default=LAYER_TIMEOUT_S,
                        help="Seconds one process of the layer-size section may run before it is killed "
                        "and reads \"timeout\" (default 600).")
    parser.add_argument("--framework-sizes", help="Comma list of N for the per-framework section "
                        "(default 1e7,1e8,1e9; --quick: 1e7).")
    args = parser.parse_args()
    device_name(args.device)  # fail early on a device nobody understands
    sections = set(args.sections.split(","))
    unknown = sections - {"process", "frameworks", "layers", "structure", "model", "sharded"}
    if unknown:
        raise SystemExit(f"unknown section(s) {', '.join(sorted(unknown))}; "
                         "expected process, frameworks, layers, structure, model")
    layer_samples = int(float(args.layer_samples))
    frameworks = args.frameworks.split(",") if args.frameworks else installed_frameworks()
    framework_sizes = (tuple(int(float(n)) for n in args.framework_sizes.split(",")) if args.framework_sizes
                       else SIZES_QUICK if args.quick else FRAMEWORK_SIZES)

    sizes = SIZES_QUICK if args.quick else SIZES_FULL
    repeats = {n: {kind: args.repeats or DEFAULT_REPEATS[n][kind] for kind in KINDS} for n in sizes}
    framework_repeats = {n: args.repeats or FRAMEWORK_REPEATS.get(n, 1) for n in framework_sizes}
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="initcheck-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        print("warming up (one untimed round at N=1e6) ...", file=sys.stderr, flush=True)
        probe = run_process(helper_argv("draw", "normal", WARMUP_N, args.device)).report
        for kind, argv in commands("normal", WARMUP_N, args.device, scratch / "warmup.json").items():
            if kind == "scipy" and "process" not in sections:
                continue
            run_initcheck(argv) if kind == "initcheck" else run_process(argv)

        cases = [measure(n, dist, repeats[n], args.device, scratch)
                 for n in sizes for dist in DISTS] if "process" in sections else []
        framework_cases = measure_frameworks(framework_sizes, frameworks, framework_repeats, args.device, scratch) \
            if "frameworks" in sections else []
        layer_cases = measure_layers(frameworks, layer_samples, args.device, args.layer_timeout, scratch) \
            if "layers" in sections and device_name(args.device) == "cpu" else []

    title = f"initcheck benchmark: xavier, dense {FAN_IN} -> {FAN_OUT} (torch shape {SHAPE}), float32"
    lines = [title, "=" * len(title), *machine_lines(args.device, probe), ""]
    if cases:
        lines += render(cases, repeats) + [""] + render_details(cases) + [""]
    if framework_cases:
        lines += render_frameworks(framework_cases, framework_repeats, args.device) + [""]
    if layer_cases:
        lines += render_layers(layer_cases, args.device, args.layer_timeout) + [""]
    if sections & {"process", "frameworks"}:
        lines += render_targets(cases, framework_cases, args.device)
    if "layers" in sections:
        lines += render_layer_targets(layer_cases, device_name(args.device))
    if "structure" in sections:
        sys.path.insert(0, str(Path(__file__).parent))
        import structure_cost

        lines += [""] + structure_cost.render(structure_cost.measure()) + [""]
    if "model" in sections and device_name(args.device) == "cpu":
        sys.path.insert(0, str(Path(__file__).parent))
        import model_cost

        lines += [""] + model_cost.render(model_cost.measure(log=sys.stderr)) + [""]
    if "sharded" in sections and device_name(args.device) == "cpu":
        # the merge of the ranks' statistics (three all-reduces) beside the folding it rests on
        from initcheck.sharded import bench as sharded_bench

        lines += ["", "sharded models (gloo, CPU)", sharded_bench(nproc=2), ""]
    lines.append(f"(benchmark wall time {time.perf_counter() - started:.0f} s)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
