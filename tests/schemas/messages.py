"""Message classes for the schema tests, importable by the ``messagebus schema`` command."""

from pydantic import BaseModel, Field

from messagebus import Command, Event, Metadata


class Author(BaseModel):
    name: str


class RegisterBook(Command):
    """Put a book on the shelf."""

    id: str
    metadata: Metadata = Metadata(name="register_book", schema_version=1)


class BookRegistered(Event):
    """A book is on the shelf."""

    id: str
    title: str
    authors: list[Author] = Field(default_factory=list)
    metadata: Metadata = Metadata(name="book_registered", schema_version=1, published=True)


class BookLent(Event):
    """Not published: it never leaves the service."""

    id: str
    metadata: Metadata = Metadata(name="book_lent", schema_version=1)
