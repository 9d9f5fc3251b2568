"""The one exception type a user can cause.

Anything raised as :class:`GankitError` is a problem with the user's input (a path, a file,
an option value) rather than a bug. The command line prints its message on one line and
exits with status 2; library users can catch it.
"""


class GankitError(Exception):
    """A user-facing error: the message says what is wrong and what to do."""

    exit_code = 2


class DivergenceError(GankitError):
    """Training produced NaN or Inf; the message says where, and what was last finite."""
