"""A typed domain, shared by the async and the sync usage files."""

from messagebus import Command, Event, Metadata, Model


class RegisterBook(Command):
    id: str
    title: str
    metadata: Metadata = Metadata(name="register_book", schema_version=1)


class BookRegistered(Event):
    id: str
    metadata: Metadata = Metadata(name="book_registered", schema_version=1, published=True)


class Book(Model):
    id: str
    title: str
