"""How the command line reads a database URL without ever showing its secrets.

A URL given to ``messagebus-relay`` may be mistyped in ways that make SQLAlchemy misread it,
and the password would then land in a traceback or in the log: a forgotten host
(``postgresql://relay:S3cret/app``, where the password reads as a port), a password with an
unencoded ``@``, a password passed as a query parameter. :func:`read_url` refuses what
cannot be read safely, with one line that does not repeat the URL, and returns with the URL
the secrets it holds, so that every line the command writes can be cleaned of them
(:class:`Redactor`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

from sqlalchemy.engine import URL, make_url

from messagebus.adapters.sqlalchemy.errors import SECRET_PARAMETER, shown_url

__all__ = ["DatabaseUrl", "RedactingFormatter", "Redactor", "UrlError", "read_url"]

HIDDEN = "***"
_EXAMPLE = "write it like postgresql://user:password@host:5432/db or sqlite:///path/to/file.db"


class UrlError(ValueError):
    """The URL cannot be used; the message says why without repeating the URL."""


@dataclass(frozen=True)
class DatabaseUrl:
    """A URL read from the command line: parsed, shown safely, and its secrets."""

    url: URL
    """The URL as given, parsed."""
    shown: str
    """The URL to print: password and secret query parameters replaced by ``***``."""
    secrets: frozenset[str]
    """Every text of the URL that must never be printed."""


def read_url(raw: str, option: str = "--db") -> DatabaseUrl:
    """Parse ``raw``; raise :class:`UrlError` naming ``option`` if it is not a usable URL."""
    secrets = _secrets(raw)
    scheme, separator, rest = raw.partition("://")
    if not separator or not scheme:
        raise UrlError(f"{option} is not a database URL: {_EXAMPLE}")
    authority = rest.split("/", 1)[0].split("?", 1)[0]
    if authority.count("@") > 1:
        raise UrlError(
            f"{option} has an '@' in its user name or password: percent-encode it as %40"
        )
    host_port = authority.rpartition("@")[2]
    port = host_port.rpartition("]")[2].partition(":")[2] if ":" in host_port else ""
    if port and not port.isdigit():
        raise UrlError(
            f"{option} has a port that is not a number (is the host missing?): {_EXAMPLE}"
        )
    try:
        url = make_url(raw)
    except Exception:  # whatever SQLAlchemy says would quote the URL
        raise UrlError(f"{option} is not a database URL: {_EXAMPLE}") from None
    if url.password is not None:
        secrets |= {str(url.password)}
    return DatabaseUrl(url, Redactor(secrets)(shown_url(url)), frozenset(secrets))


def _secrets(raw: str) -> set[str]:
    """Return the password and the secret query values of ``raw``, read by hand."""
    found: set[str] = set()
    rest = raw.partition("://")[2]
    authority, _, _ = rest.partition("/")
    userinfo = authority.rpartition("@")[0]
    if ":" in userinfo:
        found.add(userinfo.partition(":")[2])
    # Without '@', "user:password" reads as "host:port": a port that is not a number
    # may be a password.
    elif "@" not in authority and ":" in authority:
        port = authority.rpartition(":")[2].split("?")[0]
        if not port.isdigit():
            found.add(port)
    for key, value in parse_qsl(raw.partition("?")[2], keep_blank_values=True):
        if SECRET_PARAMETER.search(key):
            found.add(value)
    found |= {unquote(secret) for secret in found}
    return {secret for secret in found if secret}


class Redactor:
    """Replaces the given secrets by ``***`` in a text; longest first, so none is left half."""

    def __init__(self, secrets: Iterable[str]) -> None:
        ordered = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        """Return ``text`` without the secrets."""
        return text if self._pattern is None else self._pattern.sub(HIDDEN, text)


class RedactingFormatter(logging.Formatter):
    """A log formatter whose lines, tracebacks included, never hold the secrets."""

    def __init__(self, fmt: str, redact: Redactor) -> None:
        super().__init__(fmt)
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` as usual, then remove the secrets."""
        return self.redact(super().format(record))
