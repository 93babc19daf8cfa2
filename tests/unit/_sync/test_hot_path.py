# Generated from the _async package by scripts/generate_sync.py: do not edit.
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
    SinkholeMetricsStore,
    SyncMessageBus,
    SyncSinkholeMessageStoreRepository,
    SyncUnitOfWorkTransaction,
)
from tests.unit._sync.fakes import SyncInMemoryBookRepository, SyncInMemoryUnitOfWork
from tests.unit._sync.handlers import books
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


class AlwaysPublishing(SyncSinkholeMessageStoreRepository):
    def __init__(self) -> None:
        super().__init__()
        self.published = 0

    def publish_eventstream(self) -> None:
        self.published += 1
        super().publish_eventstream()


class AddingItsOwnWay(SyncSinkholeMessageStoreRepository):
    """A store that overrides add() itself: the bus must call it for every message."""

    def __init__(self) -> None:
        super().__init__()
        self.added: list[str] = []

    def add(self, message: Any) -> None:
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


def bus() -> SyncMessageBus[SyncInMemoryUnitOfWork]:
    found: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    found.scan("tests.unit._sync.handlers")
    return found


def register(uow: SyncInMemoryUnitOfWork, book_id: str = "1") -> None:
    with uow as transaction:
        bus().handle(RegisterBook(id=book_id, title="Dune"), transaction)
        transaction.commit()


def test_a_store_that_only_counts_messages_counts_them() -> None:
    uow = SyncInMemoryUnitOfWork()
    uow.metrics_store = counting = CountingOnly()
    register(uow)
    assert ["register_book", "book_registered"] == counting.counted


def test_a_store_that_only_times_commands_times_them() -> None:
    uow = SyncInMemoryUnitOfWork()
    uow.metrics_store = timing = TimingOnly()
    register(uow)
    assert ["register_book"] == timing.timed


def test_a_metrics_store_set_between_transactions_is_used() -> None:
    uow = SyncInMemoryUnitOfWork()
    register(uow, "1")
    uow.metrics_store = counting = CountingOnly()
    register(uow, "2")
    assert ["register_book", "book_registered"] == counting.counted


def test_an_overridden_publish_is_called_even_with_nothing_to_publish() -> None:
    uow = SyncInMemoryUnitOfWork()
    uow.messagestore = store = AlwaysPublishing()
    with uow as transaction:
        transaction.commit()
    assert 1 == store.published


def test_the_transaction_follows_a_repository_replaced_during_it(
    uow: SyncInMemoryUnitOfWork,
) -> None:
    with uow as transaction:
        first = transaction.books
        uow.books = SyncInMemoryBookRepository()
        assert uow.books is transaction.books is not first
        del uow.books
        with pytest.raises(AttributeError):
            transaction.books
        uow.books = first
        assert first is transaction.books
        transaction.rollback()


def test_a_repository_named_like_a_transaction_attribute_does_not_hide_it(
    uow: SyncInMemoryUnitOfWork,
) -> None:
    uow.status = SyncInMemoryBookRepository()  # a poor name, but a repository
    uow.commit_log = SyncInMemoryBookRepository()
    with uow as transaction:
        assert transaction.status.value == "running"
        assert transaction.commit_log is uow.commit_log
        assert uow.status in uow._repositories().all  # still part of the unit of work
        transaction.commit()
    assert books.calls == []


def test_a_store_that_overrides_add_gets_every_message() -> None:
    uow = SyncInMemoryUnitOfWork()
    uow.messagestore = store = AddingItsOwnWay()
    register(uow)
    assert ["register_book", "book_registered"] == store.added


@pytest.mark.parametrize("swallow", [False, True])
def test_the_command_timer_sees_the_error_of_a_handler(swallow: bool) -> None:
    uow = SyncInMemoryUnitOfWork()
    uow.metrics_store = timing = TimingErrors(swallow)
    failing_bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()

    def fail(command: RegisterBook, transaction: Any) -> None:
        raise Failing

    failing_bus.add_listener(RegisterBook, fail)
    with uow as transaction:
        if swallow:  # as a `with` block whose manager swallows the error: None is returned
            assert failing_bus.handle(RegisterBook(id="1", title="Dune"), transaction) is None
        else:
            with pytest.raises(Failing):
                failing_bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.rollback()
    assert [Failing] == [type(error) for error in timing.seen]


def test_a_timed_command_that_succeeds_closes_its_timer() -> None:
    uow = SyncInMemoryUnitOfWork()
    uow.metrics_store = timing = TimingErrors(swallow=False)
    register(uow)
    assert [None] == timing.seen


class WithExtras(SyncInMemoryUnitOfWork):
    """A unit of work with a property, a method and a class attribute of its own."""

    shelf = "A"

    @property
    def shelved(self) -> str:
        return f"on shelf {self.shelf}"

    def count_books(self) -> int:
        return len(self.books.books)


def test_the_transaction_reads_every_attribute_of_its_unit_of_work() -> None:
    uow = WithExtras()
    uow.clock = "12:00"
    with uow as transaction:
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
        transaction.commit()


def test_an_attribute_named_like_one_of_the_transaction_does_not_hide_it() -> None:
    uow = SyncInMemoryUnitOfWork()
    uow.status = "open for business"
    with uow as transaction:
        assert transaction.status.value == "running"
        assert "open for business" == transaction.uow.status
        transaction.commit()


def test_a_unit_of_work_whose_class_changed_gets_the_transactions_of_its_new_class() -> None:
    uow = SyncInMemoryUnitOfWork()
    with uow as transaction:  # the next transaction may reuse this one's class
        transaction.commit()
    uow.__class__ = WithExtras
    with uow as transaction:
        assert "on shelf A" == transaction.shelved  # only WithExtras's transactions have it
        transaction.commit()
    uow.__class__ = SyncInMemoryUnitOfWork
    with uow as transaction:
        assert not hasattr(transaction, "shelved")
        transaction.commit()


class Dynamic(SyncInMemoryUnitOfWork):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("dynamic_"):
            return name.removeprefix("dynamic_")
        raise AttributeError(name)


def test_a_unit_of_work_with_its_own_getattr_keeps_it_reachable() -> None:
    uow = Dynamic()
    with uow as transaction:
        assert "shelf" == transaction.dynamic_shelf
        assert uow.books is transaction.books
        with pytest.raises(AttributeError):
            transaction.nothing
        transaction.commit()


def test_the_transaction_of_a_plain_unit_of_work_has_no_getattr(
    uow: SyncInMemoryUnitOfWork,
) -> None:
    # With a __getattr__, CPython 3.11 specializes none of the attribute reads on a
    # transaction, which the bus makes on every command.
    with uow as transaction:
        assert not hasattr(type(transaction), "__getattr__")
        assert isinstance(transaction, SyncUnitOfWorkTransaction)
        assert repr(transaction).startswith("<SyncUnitOfWorkTransaction ")
        transaction.commit()


def test_the_events_of_a_repository_a_handler_set_are_handled() -> None:
    uow = SyncInMemoryUnitOfWork()
    handled: list[str] = []
    shelving_bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()

    def register(command: RegisterBook, transaction: Any) -> None:
        transaction.uow.shelves = shelves = SyncInMemoryBookRepository()  # a new one
        book = Book(id=command.id, title=command.title)
        book.messages.append(BookRegistered(id=book.id, title=book.title))
        shelves.add(book)

    def on_registered(event: BookRegistered, transaction: Any) -> None:
        handled.append(event.id)

    shelving_bus.add_listener(RegisterBook, register)
    shelving_bus.add_listener(BookRegistered, on_registered)
    with uow as transaction:
        shelving_bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        assert transaction.shelves is uow.shelves
        transaction.commit()
    assert ["1"] == handled


# After each handler the bus reads the first repository's `seen` without a loop, and
# the others' with one; a handler may set a repository, or replace a `seen` list.


def book_raising(event: BookRegistered | ShelfUpdated) -> Book:
    book = Book(id="1", title="Dune")
    book.messages.append(event)
    return book


def recording_bus(handled: list[str]) -> SyncMessageBus[SyncInMemoryUnitOfWork]:
    """A bus whose event handlers record the events, registering a book of a command."""
    recording: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()

    def on_registered(event: BookRegistered, transaction: Any) -> None:
        handled.append(f"registered {event.id}")

    def on_shelf(event: ShelfUpdated, transaction: Any) -> None:
        handled.append(f"shelf {event.book_id}")

    recording.add_listener(BookRegistered, on_registered)
    recording.add_listener(ShelfUpdated, on_shelf)
    return recording


def test_the_events_of_every_repository_are_handled_in_their_order(
    uow: SyncInMemoryUnitOfWork,
) -> None:
    handled: list[str] = []
    bus = recording_bus(handled)
    uow.archive = SyncInMemoryBookRepository()
    uow.shelves = SyncInMemoryBookRepository()

    def register(command: RegisterBook, transaction: Any) -> None:
        transaction.uow.shelves.add(book_raising(ShelfUpdated(book_id="shelves")))
        transaction.uow.archive.add(book_raising(ShelfUpdated(book_id="archive")))

    bus.add_listener(RegisterBook, register)
    with uow as transaction:
        bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.commit()
    # By repository, in the order the unit of work has them: the first one has none.
    assert ["shelf archive", "shelf shelves"] == handled


@pytest.mark.parametrize("archive_set_by", ["the unit of work", "the first handler"])
def test_the_events_of_a_repository_after_the_first_are_handled_after_each_handler(
    uow: SyncInMemoryUnitOfWork, archive_set_by: str
) -> None:
    handled: list[str] = []
    bus = recording_bus(handled)
    if archive_set_by == "the unit of work":
        uow.archive = SyncInMemoryBookRepository()

    def register(command: RegisterBook, transaction: Any) -> None:
        transaction.uow.books.add(book_raising(BookRegistered(id="1", title="Dune")))

    def first(event: BookRegistered, transaction: Any) -> None:
        if archive_set_by == "the first handler":  # between two handlers
            transaction.uow.archive = SyncInMemoryBookRepository()
        transaction.uow.archive.add(book_raising(ShelfUpdated(book_id="archive")))

    def second(event: BookRegistered, transaction: Any) -> None:
        transaction.uow.books.add(book_raising(ShelfUpdated(book_id="books")))

    bus.add_listener(RegisterBook, register)
    bus.add_listener(BookRegistered, first)
    bus.add_listener(BookRegistered, second)
    with uow as transaction:
        bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.commit()
    # Read after each handler: the archive's event first, though `books` comes first.
    assert ["registered 1", "shelf archive", "shelf books"] == handled


@pytest.mark.parametrize("repository", ["books", "archive"])
def test_a_seen_list_a_handler_replaces_is_read(
    uow: SyncInMemoryUnitOfWork, repository: str
) -> None:
    handled: list[str] = []
    bus = recording_bus(handled)
    uow.archive = SyncInMemoryBookRepository()

    def register(command: RegisterBook, transaction: Any) -> None:
        getattr(transaction.uow, repository).seen = [
            book_raising(BookRegistered(id="1", title="Dune"))
        ]

    bus.add_listener(RegisterBook, register)
    with uow as transaction:
        bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.commit()
    assert ["registered 1"] == handled


def test_a_unit_of_work_without_repositories_reads_the_one_a_handler_sets(
    uow: SyncInMemoryUnitOfWork,
) -> None:
    handled: list[str] = []
    bus = recording_bus(handled)
    del uow.books

    def register(command: RegisterBook, transaction: Any) -> None:
        if command.id == "2":
            transaction.uow.books = books = SyncInMemoryBookRepository()
            books.add(book_raising(BookRegistered(id=command.id, title="Dune")))

    bus.add_listener(RegisterBook, register)
    with uow as transaction:
        bus.handle(RegisterBook(id="1", title="Dune"), transaction)  # none to read
        bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        transaction.commit()
    assert ["registered 2"] == handled


def test_a_repository_set_in_a_command_handled_within_a_handler_is_read_after_it(
    uow: SyncInMemoryUnitOfWork,
) -> None:
    handled: list[str] = []
    bus = recording_bus(handled)

    def register(command: RegisterBook, transaction: Any) -> None:
        bus.handle(ReviewBook(book_id=command.id, stars=5), transaction)
        transaction.uow.archive.add(book_raising(ShelfUpdated(book_id="archive")))

    def review(command: ReviewBook, transaction: Any) -> None:
        transaction.uow.archive = SyncInMemoryBookRepository()  # set by the inner handle()

    bus.add_listener(RegisterBook, register)
    bus.add_listener(ReviewBook, review)
    with uow as transaction:
        bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.commit()
    assert ["shelf archive"] == handled
