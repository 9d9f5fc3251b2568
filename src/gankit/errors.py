"""The one exception type a user can cause.

Anything raised as :class:`GankitError` is a problem with the user's input (a path, a file,
an option value) rather than a bug. The command line prints its message on one line and
exits with status 2; library users can catch it.
"""


import reprlib
from typing import Any, Iterable

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple, _REPR.maxset = 3, 4, 4, 4, 4
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 60, 60, 40


def shorten(value: Any, limit: int = 80) -> str:
    """A repr of ``value`` for a message, bounded in time and length whatever the value (a
    YAML structure of nested aliases, a 60,000-key mapping): error messages stay one short
    line."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def listing(items: Iterable[Any], limit: int = 8) -> str:
    """``a, b, c`` for a few items; the first ``limit`` and a count of the rest for many."""
    items = list(items)
    shown = ", ".join(shorten(i, 40) if not isinstance(i, str) else shorten(i, 40).strip("'") for i in items[:limit])
    return shown + (f" and {len(items) - limit:,} more" if len(items) > limit else "")


class GankitError(Exception):
    """A user-facing error: the message says what is wrong and what to do."""

    exit_code = 2


class DivergenceError(GankitError):
    """Training produced NaN or Inf; the message says where, and what was last finite."""
