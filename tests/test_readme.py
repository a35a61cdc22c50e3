"""The README's commands are ones initcheck accepts, and its sample outputs come
from `make readme` (scripts/readme_outputs.py), not from memory."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from initcheck.cli import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def readme_commands() -> list[str]:
    """Every `initcheck ...` line of the README's sh blocks, comments dropped."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("initcheck "):
                commands.append(line.removeprefix("initcheck "))
    return commands


OUTPUTS = re.findall(r"<!-- initcheck-output: (.+?) -->\n```\n(.*?)```", README, re.S)


def test_the_readme_has_examples_and_generated_outputs():
    assert len(readme_commands()) >= 10 and len(OUTPUTS) >= 2


@pytest.mark.parametrize("args", readme_commands() + [args for args, _ in OUTPUTS])
def test_every_readme_command_parses(args):
    words = shlex.split(args)
    command = cli.get_command(None, words[0])
    assert command is not None, f"no command {words[0]!r}"
    command.make_context(words[0], words[1:])  # raises on an unknown option or a bad value


@pytest.mark.parametrize("args, output", OUTPUTS)
def test_each_sample_output_is_its_command_s(args, output):
    lines = output.splitlines()
    assert lines[0] == f"$ initcheck {args}"
    assert lines[1].startswith("initcheck ") and "verdict" in output and "Family-wise alpha" in output
