"""The errors of the SQLAlchemy adapter."""

from sqlalchemy.engine import URL

__all__ = ["DatabaseUnavailableError"]


class DatabaseUnavailableError(ConnectionError):
    """The unit of work could not open a connection to its database.

    The message names the URL, with the password hidden, and the driver's reason;
    the driver's exception is kept in :attr:`original` rather than chained, so the
    traceback shows the problem instead of the driver's internals.
    """

    url: str
    """The URL of the database, with the password replaced by ``***``."""
    original: BaseException
    """The exception the driver raised."""

    def __init__(self, url: URL, original: BaseException) -> None:
        self.url = url.render_as_string(hide_password=True)
        self.original = original
        reason = str(getattr(original, "orig", None) or original).strip().splitlines()
        super().__init__(
            f"Cannot connect to the database {self.url}: "
            f"{reason[0] if reason else type(original).__name__}. "
            f"Check that the server is running and accepts this URL "
            f"(host, port, database name, user and password)."
        )
