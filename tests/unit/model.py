"""The domain of the unit tests: books, reviews, and their messages."""

from messagebus import Command, Event, Field, GenericCommand, Metadata, Model


class RegisterBook(Command):
    id: str
    title: str
    metadata: Metadata = Metadata(name="register_book", schema_version=1)


class RegisterBookV2(Command):
    id: str
    title: str
    author: str
    metadata: Metadata = Metadata(name="register_book", schema_version=2)


class ReviewBook(Command):
    book_id: str
    stars: int = Field(ge=1, le=5)
    metadata: Metadata = Metadata(name="review_book", schema_version=1)


class BookRegistered(Event):
    id: str
    title: str
    metadata: Metadata = Metadata(name="book_registered", schema_version=1, published=True)


class BookReviewed(Event):
    book_id: str
    stars: int
    metadata: Metadata = Metadata(name="book_reviewed", schema_version=1)


class ShelfUpdated(Event):
    """Raised by a handler of BookRegistered: a second wave of events."""

    book_id: str
    metadata: Metadata = Metadata(name="shelf_updated", schema_version=1, published=True)


class Book(Model):
    id: str
    title: str


class TracedMetadata(Metadata):
    trace: str = "none"


class TracedCommand(GenericCommand[TracedMetadata]):
    value: int
    metadata: TracedMetadata = TracedMetadata(name="traced", schema_version=1, trace="t1")
