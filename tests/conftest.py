"""Fixtures every test file may use; plain helpers live in helpers.py."""

from __future__ import annotations

import os

import pytest

from helpers import run_cli


def pytest_configure(config):
    # piped tables are COLUMNS wide (160 when unset): the same width in every
    # test process, xdist workers included
    os.environ["COLUMNS"] = "160"
    # A command with no -f runs PyTorch, Keras on TensorFlow, JAX and the
    # reference: the frameworks most tests are written for.  The other
    # frameworks' tests name them with -f.
    from initcheck import frameworks

    core = [name for name in ("torch", "keras", "jax", "reference") if frameworks.installed(name)]
    os.environ.setdefault("INITCHECK_FRAMEWORKS", ",".join(core))
    if not config.getoption("--calibration"):
        # The tests' JAX programs are compiled at XLA's backend optimization
        # level 1 (not 3) and without XLA:CPU's newer fusion emitters (this
        # process and its children): that takes the suite's some 390 compiles
        # from about 100 s of CPU, a third of the suite's, to about 45 s.  The
        # tests' arrays are small, so the programs run as fast, and the values
        # are the same: the tests that compare JAX's draws and folds with the
        # host's pass either way.  `make run` and `make calibrate` keep XLA's
        # defaults.
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_backend_optimization_level" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_backend_optimization_level=1 --xla_cpu_use_fusion_emitters=false".strip()


def pytest_addoption(parser):
    parser.addoption("--calibration", action="store_true",
                     help="also run the slow calibration tests (make calibrate runs them)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--calibration"):
        return
    skip = pytest.mark.skip(reason="calibration: `make calibrate` runs it (pytest --calibration)")
    for item in items:
        if "calibration" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def cli(capsys):
    """``cli(*args)`` runs initcheck in-process: (exit code, stdout, stderr)."""
    return lambda *args: run_cli(capsys, *args)
