"""Shared test helpers: run synthetic samplers through the real pipeline."""

from __future__ import annotations

import sys

import numpy as np

from initcheck.frameworks.base import Plan
from initcheck.policy import decide
from initcheck.runner import Row, run, sample_rows


def sampler_plan(law, sample, shape=(1000, 1000), dtype="float32", name="synthetic") -> Plan:
    """A plan whose draws are ``sample(rng, size)`` reshaped, checked against ``law``."""
    size = int(np.prod(shape))

    from initcheck.lowp import sample_dtype

    def draw(seed):
        rng = np.random.default_rng(seed)
        x = sample(rng, size)
        if type(x).__module__.startswith("torch"):
            return x.reshape(shape)
        return np.asarray(x).astype(sample_dtype(dtype)).reshape(shape)

    return Plan(name, f"{name} sampler", law, tuple(shape), "cpu", dtype, draw)


def check_rows(plans, samples=1_000_000, seed=0, alpha=1e-6, strict=False):
    """Run plans as one command; returns the row results."""
    outcome = run([Row("test", "layer", p) for p in plans], samples, seed, alpha, show_progress=False, strict=strict)
    return list(outcome.results)


def check_rows_lenient_and_strict(plans, samples=1_000_000, seed=0, alpha=1e-6):
    """The row results of one sampling decided twice: (without, with) ``strict``."""
    sampled, _ = sample_rows([Row("test", "layer", p) for p in plans], samples, seed, show_progress=False)
    return decide(sampled, alpha), decide(sampled, alpha, strict=True)


def failed(result) -> set[str]:
    return {c.name for c in result.checks if not c.passed}


def run_cli(capsys, *args):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    import pytest

    from initcheck.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


#: ``python -m initcheck`` as a terminal starts it, for tests that send it
#: Ctrl-C.  A child inherits an ignored SIGINT (a shell starts a background job
#: with SIGINT ignored) and a blocked one (the signal mask of the thread that
#: started it, which native libraries loaded in a test worker may change);
#: either way Python never raises KeyboardInterrupt, and the command itself
#: rightly leaves an ignored SIGINT ignored.
INITCHECK_AS_FROM_A_TERMINAL = [
    sys.executable, "-c",
    "import runpy, signal; signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
    "signal.signal(signal.SIGINT, signal.default_int_handler); runpy.run_module('initcheck', run_name='__main__')",
]


def signal_state(pid: int) -> str:
    """The blocked, ignored and caught signal masks of a process (Linux), for a failure message."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return " ".join(line.strip() for line in status if line.startswith(("SigBlk", "SigIgn", "SigCgt")))
    except OSError:
        return "signal masks unknown"
