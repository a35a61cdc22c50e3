"""``python -m initcheck`` and the ``initcheck`` command.

Ctrl-C while the command is still importing ends it as Ctrl-C anywhere else
does: one line and exit 130, never a traceback."""

import sys


def main() -> None:
    try:
        from initcheck.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("initcheck: interrupted\n")
        sys.exit(130)
    cli_main()


if __name__ == "__main__":
    main()
