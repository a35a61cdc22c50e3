"""N local ranks on torch.distributed: launch, watch, stop, and bring back rank 0's answer.

:func:`launch` starts ``nproc`` processes with torch's own launcher machinery
(``torch.multiprocessing.start_processes(..., start_method="spawn",
join=False)``), each of which

* dies with its parent (``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux), and
  ignores SIGINT: a Ctrl-C reaches the parent, which stops every rank;
* sets what ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``, a free TCP port on
  127.0.0.1) and joins the process group through a ``file://`` rendezvous in
  a private temporary folder: gloo on the CPU, NCCL with ``device="cuda"``
  (one GPU per rank, ``torch.cuda.set_device(rank)``);
* runs ``worker(rank, payload)`` (an importable function: spawn pickles it by
  name) and, on rank 0, writes what it returned for the parent.

Each rank reports its *phase* (``Rank.phase``: "in FACTORY(), instance 3",
"waiting in a collective") to a file of its own.  The parent polls the ranks
and ends the run, killing every rank still alive, as soon as one of them

* raises: its one-line message ("rank 1: FACTORY raised ValueError: ...");
  the errors other ranks raise afterwards because their peer left a
  collective are not the cause and are not reported;
* dies (a signal, ``os._exit``): "rank 1 died (killed by SIGKILL)";
* makes no progress for ``timeout`` seconds outside a collective (a hang):
  "rank 1 made no progress for 5 s (in FACTORY(), instance 0)"; when every
  live rank waits in a collective, all of them are named.  A rank gets
  ``max(timeout, STARTUP_GRACE)`` seconds to start (spawning and importing
  torch take seconds on a busy machine).

Each of these is an :class:`~initcheck.errors.InputError` in the parent (the
CLI's exit 2).  A KeyboardInterrupt in the parent kills every rank and is
raised again.  No rank outlives :func:`launch`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from initcheck.errors import InputError

#: Seconds a rank may take to join the process group, at least.
STARTUP_GRACE = 120.0
#: Default seconds without progress after which a rank is hung.
DEFAULT_TIMEOUT = 300.0
#: Seconds between two looks at the ranks.
POLL = 0.05
#: The phase of a rank blocked in a collective (waiting for its peers is not a hang of its own).
WAITING = "waiting in a collective"
BACKENDS = {"cpu": "gloo", "cuda": "nccl"}


@dataclass
class Rank:
    """What a worker knows of its place: ``rank``, ``world`` (the number of
    ranks), ``device`` (``cpu`` or ``cuda:R``), and where to report its phase."""

    rank: int
    world: int
    device: str
    folder: str

    def phase(self, text: str) -> None:
        """Report what this rank does now (the parent names it if the rank hangs)."""
        path = os.path.join(self.folder, f"phase-{self.rank}")
        with open(path + ".tmp", "w") as out:
            out.write(text)
        os.replace(path + ".tmp", path)

    @contextlib.contextmanager
    def collective(self, then: str):
        """A block that waits for the other ranks; ``then`` is the phase after it."""
        self.phase(WAITING)
        try:
            yield
        finally:
            self.phase(then)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_launch(nproc, timeout, device: str) -> None:
    """InputError for a rank count, timeout or device that cannot run."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise InputError(f"--nproc must be a whole number of at least 1, got {nproc!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise InputError(f"--timeout must be a positive number of seconds, got {timeout!r}")
    if device not in BACKENDS:
        raise InputError(f"--device must be one of {', '.join(BACKENDS)} with --nproc, got {device!r}")
    if device == "cuda":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count < nproc:
            raise InputError(f"--device cuda --nproc {nproc} needs {nproc} GPUs (one per rank, NCCL); "
                             f"this machine has {count}")


def launch(worker: Callable[[Rank, Any], Any], payload: Any, nproc: int, *, timeout: float = DEFAULT_TIMEOUT,
           device: str = "cpu") -> Any:
    """Run ``worker(rank, payload)`` on ``nproc`` ranks; what rank 0 returned
    (module docstring)."""
    import torch.multiprocessing as mp

    check_launch(nproc, timeout, device)
    try:
        pickle.dumps((worker, payload))
    except Exception as error:
        raise InputError(f"what each rank runs must be importable by name (ranks are spawned): {error}") from None
    folder = tempfile.mkdtemp(prefix="initcheck-ranks-")
    context = None
    try:
        context = mp.start_processes(_rank_main, args=(nproc, folder, free_port(), device, timeout, worker, payload),
                                     nprocs=nproc, join=False, start_method="spawn")
        _watch(context.processes, folder, timeout)
        with open(os.path.join(folder, "result.pkl"), "rb") as source:
            return pickle.load(source)
    finally:
        if context is not None:
            _stop(context.processes)
        shutil.rmtree(folder, ignore_errors=True)


def _watch(processes, folder: str, timeout: float) -> None:
    """Poll until every rank exited 0; InputError naming the rank otherwise."""
    started = time.monotonic()
    while True:
        codes = [p.exitcode for p in processes]
        if all(code == 0 for code in codes):
            return
        failed = [r for r, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            raise InputError(_failure(failed, codes, folder))
        hung = _hung(processes, folder, timeout, started)
        if hung:
            raise InputError(hung)
        time.sleep(POLL)


def _failure(failed: list[int], codes: list, folder: str) -> str:
    """One line: the rank that raised first (outside a collective), else the one that died."""
    errors = []
    for rank in range(len(codes)):
        path = os.path.join(folder, f"error-{rank}")
        if os.path.exists(path):
            with open(path) as source:
                secondary, _, text = source.read().partition("\n")
            errors.append((secondary == "collective", os.path.getmtime(path), rank, text.strip()))
    if errors:
        return min(errors)[3]
    rank = failed[0]
    code = codes[rank]
    if code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    return f"rank {rank} died ({how})"


def _hung(processes, folder: str, timeout: float, started: float) -> str | None:
    """The line naming the ranks that made no progress for ``timeout`` seconds, or None."""
    now, wall = time.monotonic(), time.time()
    stuck, waiting = [], []
    for rank, process in enumerate(processes):
        if process.exitcode is not None:
            continue
        path = os.path.join(folder, f"phase-{rank}")
        try:
            with open(path) as source:
                phase = source.read()
            quiet = wall - os.path.getmtime(path)
        except OSError:  # not started yet
            if now - started > max(timeout, STARTUP_GRACE):
                stuck.append((rank, "starting", now - started))
            continue
        if quiet <= timeout:
            continue
        (waiting if phase == WAITING else stuck).append((rank, phase, quiet))
    if not stuck and not waiting:
        return None
    if not stuck and len(waiting) < sum(p.exitcode is None for p in processes):
        return None  # some ranks wait for others that still make progress
    named = stuck or waiting
    ranks = ", ".join(str(r) for r, _, _ in named)
    where = "; ".join(f"rank {r}: {phase}" for r, phase, _ in named)
    return (f"rank{'s' if len(named) > 1 else ''} {ranks} made no progress for {timeout:g} s ({where}); "
            "--timeout SECONDS allows more")


def _stop(processes) -> None:
    """Every rank still alive: SIGTERM, then SIGKILL after a second; all reaped."""
    for process in processes:
        if process.exitcode is None:
            process.terminate()
    deadline = time.monotonic() + 1.0
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.exitcode is None:
            process.kill()
            process.join()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _rank_main(rank: int, world: int, folder: str, port: int, device: str, timeout: float, worker, payload) -> None:
    """One rank: join the group, run the worker, hand rank 0's answer back."""
    import datetime

    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    me = Rank(rank, world, "cpu" if device == "cpu" else f"cuda:{rank}", folder)
    try:
        import torch
        import torch.distributed as dist

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        if device == "cuda":
            torch.cuda.set_device(rank)
        with me.collective("started"):
            dist.init_process_group(BACKENDS[device], init_method=f"file://{os.path.join(folder, 'rendezvous')}",
                                    rank=rank, world_size=world,
                                    timeout=datetime.timedelta(seconds=max(timeout, STARTUP_GRACE)))
        result = worker(me, payload)
        if rank == 0:
            with open(os.path.join(folder, "result.pkl.tmp"), "wb") as out:
                pickle.dump(result, out)
            os.replace(os.path.join(folder, "result.pkl.tmp"), os.path.join(folder, "result.pkl"))
        with me.collective("done"):
            dist.barrier()
        dist.destroy_process_group()
    except BaseException as error:  # noqa: B902 - every way out of a rank is reported
        _report(me, error)
        sys.stderr.flush()
        os._exit(1)  # no teardown: the peers may be blocked, and the parent stops them


def _report(me: Rank, error: BaseException) -> None:
    """The rank's one line for the parent, marked ``collective`` when it was
    raised while waiting for its peers (a consequence, not the cause)."""
    try:
        with open(os.path.join(me.folder, f"phase-{me.rank}")) as source:
            secondary = source.read() == WAITING
    except OSError:
        secondary = False
    if isinstance(error, InputError):
        text = str(error)
    else:
        lines = str(error).strip().splitlines()
        frames = traceback.extract_tb(error.__traceback__)
        where = f" ({os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
        text = f"raised {type(error).__name__}" + (f": {lines[0]}" if lines else "") + where
    with open(os.path.join(me.folder, f"error-{me.rank}"), "w") as out:
        out.write(("collective" if secondary else "own") + "\n" + f"rank {me.rank}: {text}")


def join_from_env(worker: Callable[[Rank, Any], Any], payload: Any, *, timeout: float = DEFAULT_TIMEOUT,
                  device: str = "cpu") -> Any:
    """This process as one rank of the group ``torchrun`` started (``env://``:
    ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``): what
    ``worker`` returned on rank 0, None on the others.  torchrun itself
    watches the ranks (``--max-restarts 0``: one that fails ends the job)."""
    import datetime

    import torch.distributed as dist

    missing = [name for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise InputError(f"--nproc torchrun: {', '.join(missing)} not set; start initcheck with torchrun "
                         "(torchrun --nproc-per-node N -m initcheck ...)")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    folder = tempfile.mkdtemp(prefix="initcheck-rank-")
    me = Rank(rank, world, "cpu" if device == "cpu" else f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}", folder)
    try:
        dist.init_process_group(BACKENDS[device], init_method="env://", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=max(timeout, STARTUP_GRACE)))
        try:
            result = worker(me, payload)
            dist.barrier()
        finally:
            dist.destroy_process_group()
        return result if rank == 0 else None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
