"""The errors of the SQLAlchemy adapter, and how they show a URL without its secrets."""

import re

from sqlalchemy.engine import URL

__all__ = ["DatabaseUnavailableError", "shown_url"]

SECRET_PARAMETER = re.compile(r"pass|pwd|secret|token|key|auth|cred", re.IGNORECASE)
"""The query parameters of a URL whose values are hidden: passwords, tokens, keys."""


def shown_url(url: URL) -> str:
    """Return ``url`` as text, with the password and the secret query values as ``***``.

    Drivers take a password in the query too (``?password=...``); a parameter whose name
    holds ``pass``, ``pwd``, ``secret``, ``token``, ``key``, ``auth`` or ``cred`` is hidden.
    """
    query = {
        key: "***" if SECRET_PARAMETER.search(key) else value for key, value in url.query.items()
    }
    # The URL percent-encodes the stars of a query value; shown, they read better plain.
    return url.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


class DatabaseUnavailableError(ConnectionError):
    """The unit of work could not open a connection to its database, or lost it.

    The message names the URL, with the password hidden, and the driver's reason;
    the driver's exception is kept in :attr:`original` rather than chained, so the
    traceback shows the problem instead of the driver's internals.

    It is raised when a connection cannot be opened, and when the connection of a
    transaction turns out to be dead (the server restarted, or closed it): the pool then
    drops its connections, so the next transaction opens a fresh one; the transaction
    that got the error was not committed, unless the error came from its ``commit()``,
    whose outcome is then unknown.
    """

    url: str
    """The URL of the database, with the password replaced by ``***``."""
    original: BaseException
    """The exception the driver raised."""

    def __init__(self, url: URL, original: BaseException, *, lost: bool = False) -> None:
        self.url = shown_url(url)
        self.original = original
        lines = str(getattr(original, "orig", None) or original).strip().splitlines()
        reason = lines[0].rstrip(".") if lines else type(original).__name__
        if lost:
            super().__init__(
                f"Lost the connection to the database {self.url}: {reason}; the pool "
                f"reconnects, run the transaction again."
            )
            return
        if url.get_backend_name() == "sqlite":
            fix = "check that the folder of the database file exists and is writable"
        else:
            fix = (
                "check that the server is running and that the URL (host, port, "
                "database name, user, password) is right"
            )
        super().__init__(f"Cannot connect to the database {self.url}: {reason}; {fix}.")
