r"""One helper that turns an exception into the reason a relay stores and logs.

A reason is stored in the ``last_error`` column, so whatever an exception holds must fit
any database: PostgreSQL refuses a NUL character in text, and no driver encodes a lone
surrogate (``"\udc80"``, left by a bytes-to-text decoding with ``surrogateescape``).
:func:`clean` makes any text storable; :func:`describe` and :func:`error_reason` return
cleaned, one-line reasons of at most :data:`MAX_REASON_LENGTH` characters.
"""

from __future__ import annotations

import re

__all__ = ["MAX_REASON_LENGTH", "clean", "describe", "error_reason"]

MAX_REASON_LENGTH = 1000
"""The longest reason kept, in characters; a longer one ends with an ellipsis."""

# C0 controls but tab, DEL, C1 controls, and the surrogate range: none survive a round
# trip through every database and log.
_UNSTORABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean(text: str, *, limit: int = MAX_REASON_LENGTH) -> str:
    r"""Return ``text`` on one line, storable by any database, at most ``limit`` characters.

    Line breaks become spaces; NUL, the other control characters and lone surrogates
    become ``\x..`` / ``\u....`` escapes, so the reader still sees that they were there.
    """
    one_line = " ".join(text.split("\n")).strip()
    escaped = _UNSTORABLE.sub(lambda match: ascii(match.group())[1:-1], one_line)
    if len(escaped) > limit:
        return escaped[: limit - 1] + "…"
    return escaped


def describe(error: BaseException) -> str:
    """Return the type and the first line of ``error``, such as ``ConnectionError: refused``.

    The result is :func:`clean`: storable, and at most :data:`MAX_REASON_LENGTH` long.
    """
    try:
        text = str(error)
    except Exception:  # a broken __str__ must not break the relay that records it
        text = ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if isinstance(error, TimeoutError) and not lines:
        return "TimeoutError: the transport did not answer in time"
    name = type(error).__name__
    return clean(f"{name}: {lines[0].strip()}" if lines else name)


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
