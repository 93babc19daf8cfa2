"""One helper that turns an exception into the reason a relay stores and logs."""

from __future__ import annotations

__all__ = ["describe", "error_reason"]


def describe(error: BaseException) -> str:
    """Return the type and the first line of ``error``, such as ``ConnectionError: refused``."""
    message = str(error).strip().splitlines()
    if isinstance(error, TimeoutError) and not message:
        return "TimeoutError: the transport did not answer in time"
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


def error_reason(error: BaseException) -> str:
    """Return one line that says why ``error`` happened, without its traceback.

    For a SQLAlchemy error it is the driver's own error, without the SQL statement.
    """
    original = getattr(error, "orig", None)
    if isinstance(original, BaseException):
        # Async drivers are wrapped in a DB-API adapter whose cause names the problem.
        cause = original.__cause__
        error = cause if isinstance(cause, Exception) else original
    return describe(error)
