"""The in-memory adapters and the scenario helper, through a bus, as a user's tests use them."""

from typing import Any

import pytest

from messagebus import (
    AsyncAbstractRepository,
    AsyncAbstractUnitOfWork,
    AsyncEventstreamPublisher,
    AsyncMessageBus,
    TransactionError,
)
from messagebus.testing import (
    AsyncInMemoryMessageStore,
    AsyncInMemoryTransport,
    AsyncInMemoryUnitOfWork,
    AsyncScenario,
    SentEnvelope,
    assert_handled,
    assert_published,
)
from tests.testing._async import app
from tests.testing._async.app import AsyncBookRepository, AsyncLibraryUnitOfWork
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
def bus() -> AsyncMessageBus[AsyncLibraryUnitOfWork]:
    bus = AsyncMessageBus[AsyncLibraryUnitOfWork]()
    bus.scan(app)
    return bus


@pytest.fixture
def uow() -> AsyncLibraryUnitOfWork:
    return AsyncLibraryUnitOfWork()


async def handle(
    bus: AsyncMessageBus[AsyncLibraryUnitOfWork],
    uow: AsyncLibraryUnitOfWork,
    command: RegisterBook | ReviewBook,
) -> None:
    async with uow as transaction:
        await bus.handle(command, transaction)
        await transaction.commit()


async def test_a_committed_transaction_keeps_the_models_and_the_messages(bus, uow):
    await handle(bus, uow, DUNE)

    assert {"1": Book(id="1", title="Dune")} == uow.books.models
    assert_handled(uow, [DUNE, BookRegistered(id="1", title="Dune"), ShelfUpdated(book_id="1")])
    assert_published(uow, [BookRegistered(id="1", title="Dune"), ShelfUpdated(book_id="1")])
    assert_published(
        uow.transport, [BookRegistered(id="1", title="Dune"), ShelfUpdated(book_id="1")]
    )
    assert (1, 0) == (uow.commits, uow.rollbacks)


async def test_a_rolled_back_transaction_leaves_nothing(bus, uow):
    await handle(bus, uow, DUNE)

    with pytest.raises(LookupError):
        await handle(bus, uow, ReviewBook(book_id="2", stars=5))
    async with uow as transaction:
        await bus.handle(ReviewBook(book_id="1", stars=4), transaction)
        await transaction.rollback()

    assert "Dune" == uow.books.models["1"].title  # the loaded copy changed, not the shelf
    assert [] == uow.books.seen
    assert 3 == len(uow.messagestore.messages)  # those of DUNE only
    assert 2 == len(uow.transport.sent)
    assert (1, 2) == (uow.commits, uow.rollbacks)


async def test_a_repository_finds_what_its_transaction_added_and_nothing_else():
    books = AsyncBookRepository(Book(id="1", title="Dune"))
    uow = AsyncInMemoryUnitOfWork(books=books)
    async with uow as transaction:
        await transaction.books.add(Book(id="2", title="Emma"))
        assert Book(id="2", title="Emma") == await transaction.books.get("2")
        assert None is await transaction.books.get("3")
        loaded = await transaction.books.get("1")
        assert loaded is not books.models["1"]
        await transaction.commit()

    assert ["1", "2"] == sorted(books.models)


class AsyncShelf(AsyncAbstractRepository[Book]):
    """A user's own in-memory repository, written before the kit: plain commit and rollback."""

    def __init__(self) -> None:
        super().__init__()
        self.books: dict[str, Book] = {}
        self.pending: dict[str, Book] = {}

    async def add(self, model: Book) -> None:
        self.pending[model.id] = model
        self.seen.append(model)

    async def get(self, model_id: str) -> Book | None:
        model = self.pending.get(model_id) or self.books.get(model_id)
        if model is not None:
            self.seen.append(model)
        return model

    def commit(self) -> None:
        self.books.update(self.pending)
        self.pending.clear()

    def rollback(self) -> None:
        self.pending.clear()


async def test_a_repository_of_the_user_s_own_ends_its_transaction_with_the_unit_of_work(bus):
    uow = AsyncInMemoryUnitOfWork(books=AsyncShelf())
    await handle(bus, uow, DUNE)
    async with uow as transaction:
        await bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        await transaction.rollback()

    assert ["1"] == sorted(uow.books.books)
    assert {} == uow.books.pending
    assert (1, 1) == (uow.commits, uow.rollbacks)


class AsyncPlainUnitOfWork(AsyncAbstractUnitOfWork[Any, Any, Any]):
    """A user's own unit of work, with the kit's message store only."""

    def __init__(self) -> None:
        self.books = AsyncBookRepository()
        self.messagestore = AsyncInMemoryMessageStore()

    async def commit(self) -> None:
        pass

    async def rollback(self) -> None:
        pass


async def test_the_message_store_forgets_a_rolled_back_transaction_with_any_unit_of_work(bus):
    uow = AsyncPlainUnitOfWork()
    with pytest.raises(ZeroDivisionError):
        async with uow as transaction:
            await bus.handle(DUNE, transaction)
            1 / 0
    async with uow as transaction:
        await bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        await transaction.commit()

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


async def test_a_transaction_left_open_keeps_nothing(bus, uow):
    with pytest.raises(TransactionError):
        async with uow as transaction:
            await bus.handle(DUNE, transaction)

    assert_handled(uow, [])
    assert {} == uow.books.models


async def test_the_transport_records_the_stream_of_each_envelope():
    transport = AsyncInMemoryTransport()
    await transport.send_envelope({"type": "book_registered_v1"}, stream="book-1")
    await AsyncEventstreamPublisher(transport).send_message(BookRegistered(id="1", title="Dune"))

    assert "book-1" == transport.sent[0].stream
    assert None is transport.sent[1].stream
    assert "book_registered_v1" == transport.sent[1].envelope["type"]
    assert isinstance(transport.sent[0], SentEnvelope)


async def test_a_message_store_of_its_own_publishes_through_its_publisher():
    transport = AsyncInMemoryTransport()
    store = AsyncInMemoryMessageStore(AsyncEventstreamPublisher(transport))
    await store.add(BookRegistered(id="1", title="Dune"))
    await store.add(BookReviewed(book_id="1", stars=5))  # not published
    await store.publish_eventstream()

    assert_handled(
        store, [BookRegistered(id="1", title="Dune"), BookReviewed(book_id="1", stars=5)]
    )
    assert_published(store, [BookRegistered(id="1", title="Dune")])
    assert_published(transport, [BookRegistered(id="1", title="Dune")])


async def test_a_scenario_checks_what_the_command_led_to(bus, uow):
    scenario = AsyncScenario(bus, uow)
    await scenario.given(DUNE)
    await scenario.when(ReviewBook(book_id="1", stars=5))

    scenario.then(BookReviewed(book_id="1", stars=5)).then_published()
    assert None is scenario.result
    with pytest.raises(
        AssertionError,
        match=r"(?s)- <BookReviewed book_id='1' stars=4>\n\+ <BookReviewed book_id='1' stars=5>",
    ):
        scenario.then(BookReviewed(book_id="1", stars=4))


async def test_a_scenario_keeps_the_result_and_what_was_published(bus, uow):
    scenario = await AsyncScenario(bus, uow).when(DUNE)

    assert "1" == scenario.result
    scenario.then_published(BookRegistered(id="1", title="Dune"), ShelfUpdated(book_id="1"))
    with pytest.raises(AssertionError, match="published"):
        scenario.then_published(BookRegistered(id="1", title="Dune"))


async def test_a_failing_command_propagates_and_leaves_the_given_state(bus, uow):
    scenario = await AsyncScenario(bus, uow).given(DUNE)

    with pytest.raises(ValueError, match="already registered"):
        await scenario.when(DUNE)
    assert 3 == len(uow.messagestore.messages)
    with pytest.raises(RuntimeError, match=r"pytest\.raises"):
        scenario.then()


async def test_then_before_when_says_what_to_do(bus, uow):
    with pytest.raises(RuntimeError, match=r"scenario\.when\(command\) first"):
        AsyncScenario(bus, uow).then()


async def test_a_scenario_needs_an_in_memory_message_store(bus, uow):
    uow.messagestore = None  # type: ignore[assignment]

    with pytest.raises(TypeError, match="AsyncInMemoryMessageStore"):
        AsyncScenario(bus, uow)
