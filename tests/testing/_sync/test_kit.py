# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""The in-memory adapters and the scenario helper, through a bus, as a user's tests use them."""

from typing import Any

import pytest

from messagebus import (
    SyncAbstractRepository,
    SyncAbstractUnitOfWork,
    SyncEventstreamPublisher,
    SyncMessageBus,
    TransactionError,
)
from messagebus.testing import (
    SentEnvelope,
    SyncInMemoryMessageStore,
    SyncInMemoryTransport,
    SyncInMemoryUnitOfWork,
    SyncScenario,
    assert_handled,
    assert_published,
)
from tests.testing._sync import app
from tests.testing._sync.app import SyncBookRepository, SyncLibraryUnitOfWork
from tests.unit.model import (
    Book,
    BookRegistered,
    BookReviewed,
    RegisterBook,
    ReviewBook,
    ShelfUpdated,
)

DUNE = RegisterBook(id="1", title="Dune")


@pytest.fixture
def bus() -> SyncMessageBus[SyncLibraryUnitOfWork]:
    bus = SyncMessageBus[SyncLibraryUnitOfWork]()
    bus.scan(app)
    return bus


@pytest.fixture
def uow() -> SyncLibraryUnitOfWork:
    return SyncLibraryUnitOfWork()


def handle(
    bus: SyncMessageBus[SyncLibraryUnitOfWork],
    uow: SyncLibraryUnitOfWork,
    command: RegisterBook | ReviewBook,
) -> None:
    with uow as transaction:
        bus.handle(command, transaction)
        transaction.commit()


def test_a_committed_transaction_keeps_the_models_and_the_messages(bus, uow):
    handle(bus, uow, DUNE)

    assert {"1": Book(id="1", title="Dune")} == uow.books.models
    assert_handled(uow, [DUNE, BookRegistered(id="1", title="Dune"), ShelfUpdated(book_id="1")])
    assert_published(uow, [BookRegistered(id="1", title="Dune"), ShelfUpdated(book_id="1")])
    assert_published(
        uow.transport, [BookRegistered(id="1", title="Dune"), ShelfUpdated(book_id="1")]
    )
    assert (1, 0) == (uow.commits, uow.rollbacks)


def test_a_rolled_back_transaction_leaves_nothing(bus, uow):
    handle(bus, uow, DUNE)

    with pytest.raises(LookupError):
        handle(bus, uow, ReviewBook(book_id="2", stars=5))
    with uow as transaction:
        bus.handle(ReviewBook(book_id="1", stars=4), transaction)
        transaction.rollback()

    assert "Dune" == uow.books.models["1"].title  # the loaded copy changed, not the shelf
    assert [] == uow.books.seen
    assert 3 == len(uow.messagestore.messages)  # those of DUNE only
    assert 2 == len(uow.transport.sent)
    assert (1, 2) == (uow.commits, uow.rollbacks)


def test_a_repository_finds_what_its_transaction_added_and_nothing_else():
    books = SyncBookRepository(Book(id="1", title="Dune"))
    uow = SyncInMemoryUnitOfWork(books=books)
    with uow as transaction:
        transaction.books.add(Book(id="2", title="Emma"))
        assert Book(id="2", title="Emma") == transaction.books.get("2")
        assert None is transaction.books.get("3")
        loaded = transaction.books.get("1")
        assert loaded is not books.models["1"]
        transaction.commit()

    assert ["1", "2"] == sorted(books.models)


class SyncShelf(SyncAbstractRepository[Book]):
    """A user's own in-memory repository, written before the kit: plain commit and rollback."""

    def __init__(self) -> None:
        super().__init__()
        self.books: dict[str, Book] = {}
        self.pending: dict[str, Book] = {}

    def add(self, model: Book) -> None:
        self.pending[model.id] = model
        self.seen.append(model)

    def get(self, model_id: str) -> Book | None:
        model = self.pending.get(model_id) or self.books.get(model_id)
        if model is not None:
            self.seen.append(model)
        return model

    def commit(self) -> None:
        self.books.update(self.pending)
        self.pending.clear()

    def rollback(self) -> None:
        self.pending.clear()


def test_a_repository_of_the_user_s_own_ends_its_transaction_with_the_unit_of_work(bus):
    uow = SyncInMemoryUnitOfWork(books=SyncShelf())
    handle(bus, uow, DUNE)
    with uow as transaction:
        bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        transaction.rollback()

    assert ["1"] == sorted(uow.books.books)
    assert {} == uow.books.pending
    assert (1, 1) == (uow.commits, uow.rollbacks)


class SyncPlainUnitOfWork(SyncAbstractUnitOfWork[Any, Any, Any]):
    """A user's own unit of work, with the kit's message store only."""

    def __init__(self) -> None:
        self.books = SyncBookRepository()
        self.messagestore = SyncInMemoryMessageStore()

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass


def test_the_message_store_forgets_a_rolled_back_transaction_with_any_unit_of_work(bus):
    uow = SyncPlainUnitOfWork()
    with pytest.raises(ZeroDivisionError):
        with uow as transaction:
            bus.handle(DUNE, transaction)
            1 / 0
    with uow as transaction:
        bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        transaction.commit()

    assert_handled(
        uow.messagestore,
        [
            RegisterBook(id="2", title="Emma"),
            BookRegistered(id="2", title="Emma"),
            ShelfUpdated(book_id="2"),
        ],
    )
    assert_published(
        uow.messagestore, [BookRegistered(id="2", title="Emma"), ShelfUpdated(book_id="2")]
    )


def test_a_transaction_left_open_keeps_nothing(bus, uow):
    with pytest.raises(TransactionError):
        with uow as transaction:
            bus.handle(DUNE, transaction)

    assert_handled(uow, [])
    assert {} == uow.books.models


def test_the_transport_records_the_stream_of_each_envelope():
    transport = SyncInMemoryTransport()
    transport.send_envelope({"type": "book_registered_v1"}, stream="book-1")
    SyncEventstreamPublisher(transport).send_message(BookRegistered(id="1", title="Dune"))

    assert "book-1" == transport.sent[0].stream
    assert None is transport.sent[1].stream
    assert "book_registered_v1" == transport.sent[1].envelope["type"]
    assert isinstance(transport.sent[0], SentEnvelope)


def test_a_message_store_of_its_own_publishes_through_its_publisher():
    transport = SyncInMemoryTransport()
    store = SyncInMemoryMessageStore(SyncEventstreamPublisher(transport))
    store.add(BookRegistered(id="1", title="Dune"))
    store.add(BookReviewed(book_id="1", stars=5))  # not published
    store.publish_eventstream()

    assert_handled(
        store, [BookRegistered(id="1", title="Dune"), BookReviewed(book_id="1", stars=5)]
    )
    assert_published(store, [BookRegistered(id="1", title="Dune")])
    assert_published(transport, [BookRegistered(id="1", title="Dune")])


def test_a_scenario_checks_what_the_command_led_to(bus, uow):
    scenario = SyncScenario(bus, uow)
    scenario.given(DUNE)
    scenario.when(ReviewBook(book_id="1", stars=5))

    scenario.then(BookReviewed(book_id="1", stars=5)).then_published()
    assert None is scenario.result
    with pytest.raises(
        AssertionError,
        match=r"(?s)- <BookReviewed book_id='1' stars=4>\n\+ <BookReviewed book_id='1' stars=5>",
    ):
        scenario.then(BookReviewed(book_id="1", stars=4))


def test_a_scenario_keeps_the_result_and_what_was_published(bus, uow):
    scenario = SyncScenario(bus, uow).when(DUNE)

    assert "1" == scenario.result
    scenario.then_published(BookRegistered(id="1", title="Dune"), ShelfUpdated(book_id="1"))
    with pytest.raises(AssertionError, match="published"):
        scenario.then_published(BookRegistered(id="1", title="Dune"))


def test_a_failing_command_propagates_and_leaves_the_given_state(bus, uow):
    scenario = SyncScenario(bus, uow).given(DUNE)

    with pytest.raises(ValueError, match="already registered"):
        scenario.when(DUNE)
    assert 3 == len(uow.messagestore.messages)
    with pytest.raises(RuntimeError, match=r"pytest\.raises"):
        scenario.then()


def test_then_before_when_says_what_to_do(bus, uow):
    with pytest.raises(RuntimeError, match=r"scenario\.when\(command\) first"):
        SyncScenario(bus, uow).then()


def test_a_scenario_needs_an_in_memory_message_store(bus, uow):
    uow.messagestore = None  # type: ignore[assignment]

    with pytest.raises(TypeError, match="SyncInMemoryMessageStore"):
        SyncScenario(bus, uow)
