"""The assertions: they compare messages as the library does, and show what differs."""

import asyncio

import pytest

from messagebus import Event, Metadata
from messagebus.testing import (
    AsyncInMemoryMessageStore,
    SyncInMemoryTransport,
    SyncInMemoryUnitOfWork,
    assert_handled,
    assert_published,
)
from tests.unit.model import BookRegistered, BookReviewed, RegisterBook

DUNE = BookRegistered(id="1", title="Dune")


def published_uow(*messages: BookRegistered | BookReviewed) -> SyncInMemoryUnitOfWork:
    uow = SyncInMemoryUnitOfWork()
    for message in messages:
        uow.messagestore.add(message)
    uow.messagestore.publish_eventstream()
    return uow


def test_messages_are_equal_whatever_their_id_and_date() -> None:
    uow = published_uow(DUNE)

    assert_handled(uow, [BookRegistered(id="1", title="Dune")])
    assert_published(uow, [BookRegistered(id="1", title="Dune")])
    assert_published(uow.transport, [BookRegistered(id="1", title="Dune")])


def test_a_failure_shows_the_difference_line_by_line() -> None:
    uow = published_uow(DUNE, BookReviewed(book_id="1", stars=5))

    with pytest.raises(AssertionError) as raised:
        assert_handled(uow, [DUNE, BookReviewed(book_id="1", stars=4)])

    assert (
        "The messages handled are not the expected ones (- expected, + handled):\n"
        "  <BookRegistered id='1' title='Dune'>\n"
        "- <BookReviewed book_id='1' stars=4>\n"
        "+ <BookReviewed book_id='1' stars=5>"
    ) == str(raised.value)


def test_the_order_matters() -> None:
    uow = published_uow(DUNE, RegisterBook(id="1", title="Dune"))

    with pytest.raises(AssertionError, match="handled"):
        assert_handled(uow, [RegisterBook(id="1", title="Dune"), DUNE])


def test_a_message_of_another_class_with_the_same_fields_differs() -> None:
    class BookRegistered(Event):  # same name and fields, another class
        id: str
        title: str
        metadata: Metadata = Metadata(name="book_registered", schema_version=1, published=True)

    uow = published_uow(DUNE)

    with pytest.raises(
        AssertionError, match=r"- .*test_a_message_of_another_class.*BookRegistered"
    ):
        assert_published(uow, [BookRegistered(id="1", title="Dune")])


def test_a_transport_is_compared_by_type_and_payload() -> None:
    transport = SyncInMemoryTransport()
    transport.send_message_serialized({"type": "book_registered_v1", "payload": '{"id":"1"}'})

    with pytest.raises(AssertionError) as raised:
        assert_published(transport, [DUNE])

    assert '- book_registered_v1 {"id":"1","title":"Dune"}' in str(raised.value)
    assert '+ book_registered_v1 {"id":"1"}' in str(raised.value)


def test_the_published_messages_are_only_those_sent() -> None:
    store = AsyncInMemoryMessageStore()  # not published yet: no commit closed

    assert_published(store, [])
    with pytest.raises(AssertionError, match=r"\+ <BookReviewed"):
        assert_handled(published_uow(BookReviewed(book_id="1", stars=5)), [])


def test_anything_else_is_refused_with_the_fix() -> None:
    with pytest.raises(
        TypeError, match="takes an in-memory unit of work, message store or transport"
    ):
        assert_handled([DUNE], [DUNE])
    uow = SyncInMemoryUnitOfWork()
    uow.messagestore = None  # type: ignore[assignment]
    with pytest.raises(TypeError, match="give it an in-memory message store"):
        assert_published(uow, [])


def test_the_typed_usage_of_the_kit_runs() -> None:
    from typing_tests._async import testing_usage as async_usage
    from typing_tests._sync import testing_usage as sync_usage

    assert ["book_registered_v1"] == [
        sent.envelope["type"] for sent in asyncio.run(async_usage.main())
    ]
    assert ["book_registered_v1"] == [sent.envelope["type"] for sent in sync_usage.main()]
