"""User-facing errors: one sentence naming the problem and the fix, exit code 2, no traceback."""
from __future__ import annotations

import difflib
import errno
import logging
import sys
from collections.abc import Callable, Iterable
from functools import wraps
from typing import TypeVar

USER_ERROR_EXIT_CODE = 2

log = logging.getLogger("llmkit")

F = TypeVar("F", bound=Callable)


class UserError(Exception):
    """Bad input from the user: a config, a dataset, a checkpoint, a path. The message says what and how to fix it."""


def not_there(path, noun: str, directory: bool) -> str:
    """'<noun> <path> does not exist', or, when the path is there but of the other kind, says so ('is a directory,
    not a file' / 'is a file, not a directory')."""
    from pathlib import Path

    path = Path(path)
    if directory and path.exists() and not path.is_dir():
        return f"{noun} {path} is a file, not a directory"
    if not directory and path.is_dir():
        return f"{noun} {path} is a directory, not a file"
    return f"{noun} {path} does not exist"


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


# Filesystem errors that are the place's fault, not the kit's: a file where a directory should be, a read-only or
# full filesystem, no permission. They become one sentence wherever a stage meets them.
PLACE_ERRNOS = {errno.ENOTDIR: "a path above it is a file, not a directory", errno.EROFS: "read-only filesystem",
                errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded"}
# Of those, the ones only a write meets; the others may come from reading an input as well.
WRITE_ERRNOS = (errno.EROFS, errno.ENOSPC, errno.EDQUOT)
PLACE_KEYS = "the output_dir, runs_root or artifacts_root override that places it"


def place_error(error: OSError, making=None) -> UserError | None:
    """The one sentence for an OSError caused by where the kit was told to read or write, else None. `making`: the
    directory being made when it happened (a staging directory): then every OSError is the place's, and a file in the
    way is named."""
    from pathlib import Path

    why = PLACE_ERRNOS.get(error.errno or 0)
    if making is not None:
        if isinstance(error, (FileExistsError, NotADirectoryError)) and error.filename:
            why = f"{error.filename} is a file, not a directory"
        else:
            why = f"{error.strerror or error}" + (f" at {error.filename}" if error.filename else "")
        return UserError(f"cannot write {making} ({why}); choose a directory you can write ({PLACE_KEYS})")
    if isinstance(error, FileExistsError) and error.filename and Path(error.filename).is_file():  # mkdir met a file
        return UserError(f"{error.filename} is a file, not a directory; choose another path")
    if why is None:
        return None
    if error.errno not in WRITE_ERRNOS:
        return UserError(f"cannot access {error.filename or 'a path'} ({why}); choose a path you can read and write "
                         f"(the key that names it, or {PLACE_KEYS})")
    fix = "free space there or choose another place" if error.errno in (errno.ENOSPC, errno.EDQUOT) else \
        "choose a place you can write"
    return UserError(f"cannot write {error.filename or 'the output'} ({why}); {fix} ({PLACE_KEYS})")


def exit_on_user_error(func: F) -> F:
    """Turn a UserError (or an OSError of the place written to) escaping `func` into its one-line message on
    stderr and exit code 2."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (UserError, OSError) as error:
            if isinstance(error, OSError):
                converted = place_error(error)
                if converted is None:
                    raise
                error = converted
            sys.stderr.write(f"llmkit: error: {error}\n")
            sys.stderr.flush()
            raise SystemExit(USER_ERROR_EXIT_CODE) from None

    return wrapper  # type: ignore[return-value]
