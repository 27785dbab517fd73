"""User-facing errors: one sentence naming the problem and the fix, exit code 2, no traceback."""
from __future__ import annotations

import difflib
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


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def exit_on_user_error(func: F) -> F:
    """Turn a UserError escaping `func` into its one-line message on stderr and exit code 2."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as error:
            sys.stderr.write(f"llmkit: error: {error}\n")
            sys.stderr.flush()
            raise SystemExit(USER_ERROR_EXIT_CODE) from None

    return wrapper  # type: ignore[return-value]
