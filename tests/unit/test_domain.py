import time
from datetime import UTC
from uuid import UUID

import pytest
from pydantic import ValidationError

from messagebus import (
    Event,
    Field,
    MessageSerializer,
    Metadata,
    Model,
    TransactionStatus,
)
from messagebus.domain.model import uuid7
from tests.unit.model import (
    Book,
    BookRegistered,
    BookReviewed,
    RegisterBook,
    RegisterBookV2,
    ReviewBook,
    TracedCommand,
    TracedMetadata,
)


def test_metadata_defaults_to_not_published() -> None:
    metadata = Metadata(name="register_book", schema_version=1)
    assert (False, "register_book", 1) == (
        metadata.published,
        metadata.name,
        metadata.schema_version,
    )


def test_metadata_is_frozen() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        RegisterBook.model_fields["metadata"].default.name = "renamed"


def test_building_a_message_does_not_copy_its_metadata() -> None:
    default = RegisterBook.model_fields["metadata"].default
    assert default is RegisterBook(id="1", title="Dune").metadata


def test_a_message_has_a_uuid7_id_and_an_aware_utc_date() -> None:
    before = time.time()
    command = RegisterBook(id="1", title="Dune")
    assert 7 == command.message_id.version
    assert UTC == command.created_at.tzinfo
    assert abs(command.created_at.timestamp() - before) < 5
    assert abs((command.message_id.int >> 80) - int(before * 1000)) < 5000


def test_message_ids_are_time_ordered_and_unique() -> None:
    ids = [uuid7() for _ in range(20_000)]  # many share a millisecond
    assert sorted(ids) == ids
    assert len(ids) == len(set(ids))
    assert all(isinstance(i, UUID) and 2 == (i.int >> 62) & 0b11 for i in ids)


def test_messages_equal_whatever_their_id_and_date() -> None:
    first, second = RegisterBook(id="1", title="Dune"), RegisterBook(id="1", title="Dune")
    assert first.message_id != second.message_id
    assert first == second
    assert RegisterBook(id="2", title="Dune") != first


def test_messages_of_different_classes_are_not_equal() -> None:
    v1 = RegisterBook(id="1", title="Dune")
    v2 = RegisterBookV2(id="1", title="Dune", author="Frank Herbert")
    assert v1 != v2
    assert v1 != "a string"


def test_message_repr_shows_the_fields() -> None:
    assert "<ReviewBook book_id='1' stars=5>" == repr(ReviewBook(book_id="1", stars=5))


def test_message_fields_are_validated() -> None:
    with pytest.raises(ValidationError, match="stars"):
        ReviewBook(book_id="1", stars=9)


def test_custom_metadata_is_kept() -> None:
    command = TracedCommand(value=1)
    assert isinstance(command.metadata, TracedMetadata)
    assert "t1" == command.metadata.trace


def test_model_messages_are_per_instance_and_keep_their_class() -> None:
    book = Book(id="1", title="Dune", messages=[BookRegistered(id="1", title="Dune")])
    other = Book(id="2", title="Emma")
    assert [BookRegistered] == [type(m) for m in book.messages]
    assert [] == other.messages
    other.messages.append(BookReviewed(book_id="2", stars=3))
    assert 1 == len(book.messages)


def test_model_messages_must_be_messages() -> None:
    with pytest.raises(ValidationError, match="messages"):
        Book(id="1", title="Dune", messages=["not a message"])


def test_model_messages_are_left_out_of_dumps_and_equality() -> None:
    book = Book(id="1", title="Dune", messages=[BookRegistered(id="1", title="Dune")])
    assert {"id": "1", "title": "Dune"} == book.model_dump()
    assert Book(id="1", title="Dune") == book
    assert Book(id="1", title="Emma") != book


def test_model_repr_shows_fields_and_pending_messages() -> None:
    book = Book(id="1", title="Dune")
    assert "<Book id='1' title='Dune'>" == repr(book)
    book.messages.append(BookReviewed(book_id="1", stars=3))
    assert "<Book id='1' title='Dune' messages=[<BookReviewed book_id='1' stars=3>]>" == repr(book)


def test_field_is_pydantic_field() -> None:
    class Shelf(Model):
        books: list[str] = Field(default_factory=list)

    assert [] == Shelf().books


def test_transaction_statuses() -> None:
    assert ["running", "rolledback", "committed", "closed", "streaming"] == [
        status.value for status in TransactionStatus
    ]


def test_default_serializer_envelope() -> None:
    event = BookRegistered(id="1", title="Dune")
    assert {
        "id": str(event.message_id),
        "created_at": event.created_at.isoformat(),
        "type": "book_registered_v1",
        "causation_id": None,
        "correlation_id": str(event.message_id),
        "payload": '{"id":"1","title":"Dune"}',
    } == MessageSerializer().serialize_message(event)


def test_a_plain_event_class_can_be_declared_without_metadata_default() -> None:
    class Anonymous(Event):
        pass

    with pytest.raises(ValidationError, match="metadata"):
        Anonymous()
    assert "x" == Anonymous(metadata=Metadata(name="x", schema_version=1)).metadata.name
