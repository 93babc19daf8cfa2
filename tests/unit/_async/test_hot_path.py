"""What the hot path decides once per transaction, tested one override at a time.

The bus skips what does nothing by default (the null metrics store's timer and counter,
publishing an empty buffer); a user's store that overrides just one of them must still
be called. The repositories are attributes of the transaction, kept in step with the
unit of work.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from messagebus import (
    AsyncMessageBus,
    AsyncSinkholeMessageStoreRepository,
    AsyncUnitOfWorkTransaction,
    SinkholeMetricsStore,
)
from tests.unit._async.fakes import AsyncInMemoryBookRepository, AsyncInMemoryUnitOfWork
from tests.unit._async.handlers import books
from tests.unit.model import Book, BookRegistered, RegisterBook, ReviewBook, ShelfUpdated


class CountingOnly(SinkholeMetricsStore):
    def __init__(self) -> None:
        self.counted: list[str] = []

    def inc_messages_processed_total(self, msg_metadata: Any) -> None:
        self.counted.append(msg_metadata.name)


class TimingOnly(SinkholeMetricsStore):
    def __init__(self) -> None:
        self.timed: list[str] = []

    def command_processing_timer(self, command: Any) -> Any:
        self.timed.append(command.metadata.name)
        return super().command_processing_timer(command)


class AlwaysPublishing(AsyncSinkholeMessageStoreRepository):
    def __init__(self) -> None:
        super().__init__()
        self.published = 0

    async def publish_eventstream(self) -> None:
        self.published += 1
        await super().publish_eventstream()


class AddingItsOwnWay(AsyncSinkholeMessageStoreRepository):
    """A store that overrides add() itself: the bus must call it for every message."""

    def __init__(self) -> None:
        super().__init__()
        self.added: list[str] = []

    async def add(self, message: Any) -> None:
        self.added.append(message.metadata.name)


class Failing(Exception):
    pass


class TimingErrors(SinkholeMetricsStore):
    """A timer that records the error it saw, and swallows it if told to."""

    def __init__(self, swallow: bool) -> None:
        self.swallow = swallow
        self.seen: list[Any] = []

    @contextlib.contextmanager
    def _timer(self) -> Iterator[None]:
        try:
            yield
        except Failing as error:
            self.seen.append(error)
            if not self.swallow:
                raise
        else:
            self.seen.append(None)

    def command_processing_timer(self, command: Any) -> Any:
        return self._timer()


def bus() -> AsyncMessageBus[AsyncInMemoryUnitOfWork]:
    found: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    found.scan("tests.unit._async.handlers")
    return found


async def register(uow: AsyncInMemoryUnitOfWork, book_id: str = "1") -> None:
    async with uow as transaction:
        await bus().handle(RegisterBook(id=book_id, title="Dune"), transaction)
        await transaction.commit()


async def test_a_store_that_only_counts_messages_counts_them() -> None:
    uow = AsyncInMemoryUnitOfWork()
    uow.metrics_store = counting = CountingOnly()
    await register(uow)
    assert ["register_book", "book_registered"] == counting.counted


async def test_a_store_that_only_times_commands_times_them() -> None:
    uow = AsyncInMemoryUnitOfWork()
    uow.metrics_store = timing = TimingOnly()
    await register(uow)
    assert ["register_book"] == timing.timed


async def test_a_metrics_store_set_between_transactions_is_used() -> None:
    uow = AsyncInMemoryUnitOfWork()
    await register(uow, "1")
    uow.metrics_store = counting = CountingOnly()
    await register(uow, "2")
    assert ["register_book", "book_registered"] == counting.counted


async def test_an_overridden_publish_is_called_even_with_nothing_to_publish() -> None:
    uow = AsyncInMemoryUnitOfWork()
    uow.messagestore = store = AlwaysPublishing()
    async with uow as transaction:
        await transaction.commit()
    assert 1 == store.published


async def test_the_transaction_follows_a_repository_replaced_during_it(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    async with uow as transaction:
        first = transaction.books
        uow.books = AsyncInMemoryBookRepository()
        assert uow.books is transaction.books is not first
        del uow.books
        with pytest.raises(AttributeError):
            transaction.books
        uow.books = first
        assert first is transaction.books
        await transaction.rollback()


async def test_a_repository_named_like_a_transaction_attribute_does_not_hide_it(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    uow.status = AsyncInMemoryBookRepository()  # a poor name, but a repository
    uow.commit_log = AsyncInMemoryBookRepository()
    async with uow as transaction:
        assert transaction.status.value == "running"
        assert transaction.commit_log is uow.commit_log
        assert uow.status in uow._repositories().all  # still part of the unit of work
        await transaction.commit()
    assert books.calls == []


async def test_a_store_that_overrides_add_gets_every_message() -> None:
    uow = AsyncInMemoryUnitOfWork()
    uow.messagestore = store = AddingItsOwnWay()
    await register(uow)
    assert ["register_book", "book_registered"] == store.added


@pytest.mark.parametrize("swallow", [False, True])
async def test_the_command_timer_sees_the_error_of_a_handler(swallow: bool) -> None:
    uow = AsyncInMemoryUnitOfWork()
    uow.metrics_store = timing = TimingErrors(swallow)
    failing_bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()

    async def fail(command: RegisterBook, transaction: Any) -> None:
        raise Failing

    failing_bus.add_listener(RegisterBook, fail)
    async with uow as transaction:
        if swallow:  # as a `with` block whose manager swallows the error: None is returned
            assert await failing_bus.handle(RegisterBook(id="1", title="Dune"), transaction) is None
        else:
            with pytest.raises(Failing):
                await failing_bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.rollback()
    assert [Failing] == [type(error) for error in timing.seen]


async def test_a_timed_command_that_succeeds_closes_its_timer() -> None:
    uow = AsyncInMemoryUnitOfWork()
    uow.metrics_store = timing = TimingErrors(swallow=False)
    await register(uow)
    assert [None] == timing.seen


class WithExtras(AsyncInMemoryUnitOfWork):
    """A unit of work with a property, a method and a class attribute of its own."""

    shelf = "A"

    @property
    def shelved(self) -> str:
        return f"on shelf {self.shelf}"

    def count_books(self) -> int:
        return len(self.books.books)


async def test_the_transaction_reads_every_attribute_of_its_unit_of_work() -> None:
    uow = WithExtras()
    uow.clock = "12:00"
    async with uow as transaction:
        assert "on shelf A" == transaction.shelved  # a property, computed by the uow
        assert 0 == transaction.count_books()  # a method, bound to the uow
        assert uow.calls is transaction.calls  # an attribute set in __init__
        assert "12:00" == transaction.clock  # set before the transaction
        uow.shelf = "B"  # shadows the class attribute
        uow.clock = "12:01"  # replaced during the transaction
        uow.librarian = "Ann"  # new during the transaction
        assert ("B", "on shelf B") == (transaction.shelf, transaction.shelved)
        assert ("12:01", "Ann") == (transaction.clock, transaction.librarian)
        del uow.clock
        assert not hasattr(transaction, "clock")
        with pytest.raises(AttributeError):
            transaction.nothing
        await transaction.commit()


async def test_an_attribute_named_like_one_of_the_transaction_does_not_hide_it() -> None:
    uow = AsyncInMemoryUnitOfWork()
    uow.status = "open for business"
    async with uow as transaction:
        assert transaction.status.value == "running"
        assert "open for business" == transaction.uow.status
        await transaction.commit()


async def test_a_unit_of_work_whose_class_changed_gets_the_transactions_of_its_new_class() -> None:
    uow = AsyncInMemoryUnitOfWork()
    async with uow as transaction:  # the next transaction may reuse this one's class
        await transaction.commit()
    uow.__class__ = WithExtras
    async with uow as transaction:
        assert "on shelf A" == transaction.shelved  # only WithExtras's transactions have it
        await transaction.commit()
    uow.__class__ = AsyncInMemoryUnitOfWork
    async with uow as transaction:
        assert not hasattr(transaction, "shelved")
        await transaction.commit()


class Dynamic(AsyncInMemoryUnitOfWork):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("dynamic_"):
            return name.removeprefix("dynamic_")
        raise AttributeError(name)


async def test_a_unit_of_work_with_its_own_getattr_keeps_it_reachable() -> None:
    uow = Dynamic()
    async with uow as transaction:
        assert "shelf" == transaction.dynamic_shelf
        assert uow.books is transaction.books
        with pytest.raises(AttributeError):
            transaction.nothing
        await transaction.commit()


async def test_the_transaction_of_a_plain_unit_of_work_has_no_getattr(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    # With a __getattr__, CPython 3.11 specializes none of the attribute reads on a
    # transaction, which the bus makes on every command.
    async with uow as transaction:
        assert not hasattr(type(transaction), "__getattr__")
        assert isinstance(transaction, AsyncUnitOfWorkTransaction)
        assert repr(transaction).startswith("<AsyncUnitOfWorkTransaction ")
        await transaction.commit()


async def test_the_events_of_a_repository_a_handler_set_are_handled() -> None:
    uow = AsyncInMemoryUnitOfWork()
    handled: list[str] = []
    shelving_bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()

    async def register(command: RegisterBook, transaction: Any) -> None:
        transaction.uow.shelves = shelves = AsyncInMemoryBookRepository()  # a new one
        book = Book(id=command.id, title=command.title)
        book.messages.append(BookRegistered(id=book.id, title=book.title))
        await shelves.add(book)

    async def on_registered(event: BookRegistered, transaction: Any) -> None:
        handled.append(event.id)

    shelving_bus.add_listener(RegisterBook, register)
    shelving_bus.add_listener(BookRegistered, on_registered)
    async with uow as transaction:
        await shelving_bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        assert transaction.shelves is uow.shelves
        await transaction.commit()
    assert ["1"] == handled


# After each handler the bus reads the first repository's `seen` without a loop, and
# the others' with one; a handler may set a repository, or replace a `seen` list.


def book_raising(event: BookRegistered | ShelfUpdated) -> Book:
    book = Book(id="1", title="Dune")
    book.messages.append(event)
    return book


def recording_bus(handled: list[str]) -> AsyncMessageBus[AsyncInMemoryUnitOfWork]:
    """A bus whose event handlers record the events, registering a book of a command."""
    recording: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()

    async def on_registered(event: BookRegistered, transaction: Any) -> None:
        handled.append(f"registered {event.id}")

    async def on_shelf(event: ShelfUpdated, transaction: Any) -> None:
        handled.append(f"shelf {event.book_id}")

    recording.add_listener(BookRegistered, on_registered)
    recording.add_listener(ShelfUpdated, on_shelf)
    return recording


async def test_the_events_of_every_repository_are_handled_in_their_order(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    handled: list[str] = []
    bus = recording_bus(handled)
    uow.archive = AsyncInMemoryBookRepository()
    uow.shelves = AsyncInMemoryBookRepository()

    async def register(command: RegisterBook, transaction: Any) -> None:
        await transaction.uow.shelves.add(book_raising(ShelfUpdated(book_id="shelves")))
        await transaction.uow.archive.add(book_raising(ShelfUpdated(book_id="archive")))

    bus.add_listener(RegisterBook, register)
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    # By repository, in the order the unit of work has them: the first one has none.
    assert ["shelf archive", "shelf shelves"] == handled


@pytest.mark.parametrize("archive_set_by", ["the unit of work", "the first handler"])
async def test_the_events_of_a_repository_after_the_first_are_handled_after_each_handler(
    uow: AsyncInMemoryUnitOfWork, archive_set_by: str
) -> None:
    handled: list[str] = []
    bus = recording_bus(handled)
    if archive_set_by == "the unit of work":
        uow.archive = AsyncInMemoryBookRepository()

    async def register(command: RegisterBook, transaction: Any) -> None:
        await transaction.uow.books.add(book_raising(BookRegistered(id="1", title="Dune")))

    async def first(event: BookRegistered, transaction: Any) -> None:
        if archive_set_by == "the first handler":  # between two handlers
            transaction.uow.archive = AsyncInMemoryBookRepository()
        await transaction.uow.archive.add(book_raising(ShelfUpdated(book_id="archive")))

    async def second(event: BookRegistered, transaction: Any) -> None:
        await transaction.uow.books.add(book_raising(ShelfUpdated(book_id="books")))

    bus.add_listener(RegisterBook, register)
    bus.add_listener(BookRegistered, first)
    bus.add_listener(BookRegistered, second)
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    # Read after each handler: the archive's event first, though `books` comes first.
    assert ["registered 1", "shelf archive", "shelf books"] == handled


@pytest.mark.parametrize("repository", ["books", "archive"])
async def test_a_seen_list_a_handler_replaces_is_read(
    uow: AsyncInMemoryUnitOfWork, repository: str
) -> None:
    handled: list[str] = []
    bus = recording_bus(handled)
    uow.archive = AsyncInMemoryBookRepository()

    async def register(command: RegisterBook, transaction: Any) -> None:
        getattr(transaction.uow, repository).seen = [
            book_raising(BookRegistered(id="1", title="Dune"))
        ]

    bus.add_listener(RegisterBook, register)
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    assert ["registered 1"] == handled


async def test_a_unit_of_work_without_repositories_reads_the_one_a_handler_sets(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    handled: list[str] = []
    bus = recording_bus(handled)
    del uow.books

    async def register(command: RegisterBook, transaction: Any) -> None:
        if command.id == "2":
            transaction.uow.books = books = AsyncInMemoryBookRepository()
            await books.add(book_raising(BookRegistered(id=command.id, title="Dune")))

    bus.add_listener(RegisterBook, register)
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)  # none to read
        await bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        await transaction.commit()
    assert ["registered 2"] == handled


async def test_a_repository_set_in_a_command_handled_within_a_handler_is_read_after_it(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    handled: list[str] = []
    bus = recording_bus(handled)

    async def register(command: RegisterBook, transaction: Any) -> None:
        await bus.handle(ReviewBook(book_id=command.id, stars=5), transaction)
        await transaction.uow.archive.add(book_raising(ShelfUpdated(book_id="archive")))

    async def review(command: ReviewBook, transaction: Any) -> None:
        transaction.uow.archive = AsyncInMemoryBookRepository()  # set by the inner handle()

    bus.add_listener(RegisterBook, register)
    bus.add_listener(ReviewBook, review)
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    assert ["shelf archive"] == handled
