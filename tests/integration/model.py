"""The domain of the integration tests: books, and the table they are stored in."""

from sqlalchemy import Column, MetaData, String, Table

from messagebus import Command, Event, Metadata, Model


class Book(Model):
    id: str
    title: str


class RegisterBook(Command):
    id: str
    title: str
    metadata: Metadata = Metadata(name="register_book", schema_version=1)


class BookRegistered(Event):
    id: str
    title: str
    metadata: Metadata = Metadata(name="book_registered", schema_version=1, published=True)


def books_table(metadata: MetaData, prefix: str) -> Table:
    return Table(
        f"{prefix}books",
        metadata,
        Column("id", String(64), primary_key=True),
        Column("title", String(255), nullable=False),
    )
