"""``python -m minivae``: parse the flags (:mod:`minivae.cli`), run the command
(:mod:`minivae.commands`, :mod:`minivae.cli_diffuse`), and turn minivae's own errors (a refused
flag, setting, input, checkpoint or data set; a file the system would not write) into one line
and an exit status. Anything else is a bug, and keeps its traceback.
"""

import sys

from . import cli_diffuse, commands, validate
from .backend import BackendError
from .checkpoint import CheckpointError
from .cli import FlagError, build_parser
from .train import NonFiniteLossError

try:
    from .course.edition import AssignmentError
except ImportError:  # a student edition has no course/ package: no assign, no grade
    AssignmentError = None

__all__ = ["main"]

#: The errors of minivae's own making: one line on stderr and exit status 1.
ERRORS = (
    validate.InputError,
    validate.SettingError,
    validate.ReplacedArrayError,
    CheckpointError,
    validate.DatasetError,
    BackendError,
    NonFiniteLossError,
    OSError,  # a file or folder the system would not read or write (named in the message)
) + ((AssignmentError,) if AssignmentError else ())  # assign, grade: a folder that cannot be used


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {
        "train": commands.cmd_train,
        "sample": commands.cmd_sample,
        "diffuse": cli_diffuse.cmd_diffuse,
    }
    where = f"{parser.prog} {args.command}"
    try:
        return handlers.get(args.command, getattr(args, "handler", None))(args)
    except FlagError as err:
        print(f"{where}: error: {err} (see {where} --help)", file=sys.stderr)
        return 2
    except ERRORS as err:
        print(f"{where}: error: {err}", file=sys.stderr)
        return 1
    except MemoryError:
        print(
            f"{where}: error: out of memory (a model or data set too large for this machine)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(f"\n{where}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
