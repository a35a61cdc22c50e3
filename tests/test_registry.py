"""Which frameworks a command runs when it names none (``-f`` left out)."""

from __future__ import annotations

import pytest

from initcheck import frameworks
from initcheck.errors import InputError


def test_no_names_means_the_environment_list(monkeypatch):
    monkeypatch.setenv("INITCHECK_FRAMEWORKS", "reference")
    assert [f.name for f in frameworks.resolve(None)] == ["reference"]


def test_no_names_and_no_list_means_every_installed_framework(monkeypatch):
    monkeypatch.setenv("INITCHECK_FRAMEWORKS", " ")
    installed = [name for name in frameworks.ADAPTERS if frameworks.installed(name)]
    monkeypatch.setattr(frameworks, "load", lambda name: name)  # no framework is imported
    assert frameworks.resolve(None) == installed


def test_an_unknown_name_in_the_list_is_one_line(monkeypatch):
    monkeypatch.setenv("INITCHECK_FRAMEWORKS", "reference,nosuch")
    with pytest.raises(InputError, match="unknown framework 'nosuch'"):
        frameworks.resolve(None)


def test_explicit_names_win_over_the_list(monkeypatch):
    monkeypatch.setenv("INITCHECK_FRAMEWORKS", "nosuch")
    assert [f.name for f in frameworks.resolve("reference")] == ["reference"]
