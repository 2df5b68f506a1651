"""``python -m minivae``: the command line (its parser and top are in :mod:`minivae.cli`, the
commands in :mod:`minivae.commands` and :mod:`minivae.cli_diffuse`)."""

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
