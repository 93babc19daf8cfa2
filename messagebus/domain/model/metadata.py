"""The metadata that names and versions every message type."""

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field


class Metadata(BaseModel):
    """The name, schema version and publication flag of a message type.

    >>> metadata = Metadata(name="book_registered", schema_version=1, published=True)
    >>> metadata.published
    True

    Metadata is set once, as the default value of the ``metadata`` field of a
    message class. It is frozen: being hashable, pydantic uses the very same object
    as the default of every instance instead of deep-copying it each time.

    .. versionchanged:: 0.17
       Frozen (immutable), unlike in the PyPI package.
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(...)
    """The name of the message type, stable across renames of the Python class."""
    schema_version: int = Field(...)
    """The version of the message's schema: bump it on every breaking change."""
    published: bool = Field(default=False)
    """Send the message to the event stream once the transaction is committed."""


TMetadata = TypeVar("TMetadata", bound=Metadata)
"""The type of the metadata of a message or model class."""
