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
        lines = str(getattr(original, "orig", None) or original).strip().splitlines()
        reason = lines[0].rstrip(".") if lines else type(original).__name__
        if url.get_backend_name() == "sqlite":
            fix = "check that the folder of the database file exists and is writable"
        else:
            fix = (
                "check that the server is running and that the URL (host, port, "
                "database name, user, password) is right"
            )
        super().__init__(f"Cannot connect to the database {self.url}: {reason}; {fix}.")
