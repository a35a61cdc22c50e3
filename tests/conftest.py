"""Fixtures every test file may use; plain helpers live in helpers.py."""

from __future__ import annotations

import pytest

from helpers import run_cli


@pytest.fixture
def cli(capsys):
    """``cli(*args)`` runs initcheck in-process: (exit code, stdout, stderr)."""
    return lambda *args: run_cli(capsys, *args)
