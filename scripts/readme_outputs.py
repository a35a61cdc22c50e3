"""Regenerate the README's sample outputs from real runs: `make readme`.

Every block of the README between

    <!-- initcheck-output: ARGS -->
    ```
    ...
    ```
    <!-- end-output -->

is replaced by what ``initcheck ARGS`` prints now, 100 columns wide, preceded
by the command.  tests/test_readme.py checks that every such ARGS, and every
command of the README's examples, is one that initcheck accepts.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(<!-- initcheck-output: (?P<args>.+?) -->\n)```\n.*?```\n(<!-- end-output -->)", re.S)
WIDTH = 100


def output_of(args: str) -> str:
    """What ``initcheck ARGS`` prints, run from the repository's root."""
    done = subprocess.run([sys.executable, "-m", "initcheck", *shlex.split(args), "--no-progress"],
                          capture_output=True, text=True, cwd=README.parent,
                          env={**os.environ, "COLUMNS": str(WIDTH)}, timeout=1800)
    text = "\n".join(line.rstrip() for line in done.stdout.splitlines())
    return f"$ initcheck {args}\n{text}\n"


def main() -> None:
    readme = README.read_text()

    def fresh(match: re.Match) -> str:
        print(f"initcheck {match['args']}", file=sys.stderr)
        return f"{match.group(1)}```\n{output_of(match['args'])}```\n{match.group(3)}"

    README.write_text(BLOCK.sub(fresh, readme))


if __name__ == "__main__":
    main()
