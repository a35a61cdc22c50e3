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
