# Generated from the _async package by scripts/generate_sync.py: do not edit.
from typing import Any

import pytest

from messagebus import (
    ConfigurationError,
    MissingDependencyError,
    SyncMessageBus,
    SyncUnitOfWorkTransaction,
)
from tests.unit._sync import handlers_relative
from tests.unit._sync.fakes import (
    RecordingMetricsStore,
    SyncInMemoryUnitOfWork,
    SyncRecordingDependency,
)
from tests.unit._sync.handlers import books
from tests.unit.model import (
    Book,
    BookRegistered,
    BookReviewed,
    RegisterBook,
    RegisterBookV2,
    ReviewBook,
    ShelfUpdated,
)

Transaction = SyncUnitOfWorkTransaction[SyncInMemoryUnitOfWork]


@pytest.fixture
def bus() -> SyncMessageBus[SyncInMemoryUnitOfWork]:
    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    bus.scan("tests.unit._sync.handlers")
    return bus


def test_handle_returns_the_command_handler_result(
    bus: SyncMessageBus[SyncInMemoryUnitOfWork], uow: SyncInMemoryUnitOfWork
) -> None:
    with uow as transaction:
        result = bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.commit()
    assert "1" == result
    assert Book(id="1", title="Dune") == uow.books.books["1"]


def test_events_raised_by_models_are_handled_and_stored(
    bus: SyncMessageBus[SyncInMemoryUnitOfWork], uow: SyncInMemoryUnitOfWork
) -> None:
    with uow as transaction:
        bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.commit()
    assert ["notify 1 (no clock)"] == books.calls
    assert (
        uow.expect_stored(
            [RegisterBook(id="1", title="Dune"), BookRegistered(id="1", title="Dune")]
        )
        == uow.stored()
    )
    assert uow.expect_published(["book_registered_v1"]) == uow.published()


def test_messages_without_a_handler_are_stored(uow: SyncInMemoryUnitOfWork) -> None:
    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    bus.add_listener(RegisterBook, books.register_book)  # no handler for BookRegistered
    with uow as transaction:
        bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.commit()
    assert (
        uow.expect_stored(
            [RegisterBook(id="1", title="Dune"), BookRegistered(id="1", title="Dune")]
        )
        == uow.stored()
    )


def test_a_command_without_handler_is_an_error(
    bus: SyncMessageBus[SyncInMemoryUnitOfWork], uow: SyncInMemoryUnitOfWork
) -> None:
    with uow as transaction:
        with pytest.raises(ConfigurationError, match="RegisterBookV2 has no handler"):
            bus.handle(RegisterBookV2(id="1", title="Dune", author="F. H."), transaction)
        transaction.rollback()
    assert [] == uow.stored()


def test_event_handlers_run_in_order_and_cascade(uow: SyncInMemoryUnitOfWork) -> None:
    order: list[str] = []
    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    bus.add_listener(RegisterBook, books.register_book)

    def first(event: BookRegistered, transaction: Transaction) -> None:
        order.append("first")
        shelf = Book(id="shelf", title="shelf", messages=[ShelfUpdated(book_id=event.id)])
        transaction.books.add(shelf)

    def second(event: BookRegistered, transaction: Transaction) -> None:
        order.append("second")

    def on_shelf(event: ShelfUpdated, transaction: Transaction) -> None:
        order.append(f"shelf {event.book_id}")

    bus.add_listener(BookRegistered, first)
    bus.add_listener(BookRegistered, second)
    bus.add_listener(ShelfUpdated, on_shelf)
    with uow as transaction:
        bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.commit()
    assert ["first", "second", "shelf 1"] == order
    assert (
        uow.expect_stored(
            [
                RegisterBook(id="1", title="Dune"),
                BookRegistered(id="1", title="Dune"),
                ShelfUpdated(book_id="1"),
            ]
        )
        == uow.stored()
    )
    assert uow.expect_published(["book_registered_v1", "shelf_updated_v1"]) == uow.published()


def test_rollback_publishes_none_of_the_handled_events(
    bus: SyncMessageBus[SyncInMemoryUnitOfWork], uow: SyncInMemoryUnitOfWork
) -> None:
    with uow as transaction:
        bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.rollback()
    assert [] == uow.published()


def test_a_second_command_handler_is_an_error_naming_both(
    bus: SyncMessageBus[SyncInMemoryUnitOfWork],
) -> None:
    def another(command: RegisterBook, transaction: Transaction) -> None:
        pass  # pragma: no cover

    with pytest.raises(ConfigurationError) as raised:
        bus.add_listener(RegisterBook, another)
    assert "register_book" in str(raised.value)
    assert "another" in str(raised.value)


def test_remove_listener_removes_exactly_that_callback(
    bus: SyncMessageBus[SyncInMemoryUnitOfWork], uow: SyncInMemoryUnitOfWork
) -> None:
    def stranger(command: RegisterBook, transaction: Transaction) -> None:
        pass  # pragma: no cover

    with pytest.raises(ConfigurationError, match="stranger is not a handler of RegisterBook"):
        bus.remove_listener(RegisterBook, stranger)
    bus.remove_listener(BookRegistered, books.notify_librarian)
    with uow as transaction:
        bus.handle(RegisterBook(id="1", title="Dune"), transaction)  # still handled
        transaction.commit()
    assert [] == books.calls
    bus.remove_listener(RegisterBook, books.register_book)
    with uow as transaction:
        with pytest.raises(ConfigurationError, match="no handler"):
            bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        transaction.rollback()


def test_add_listener_rejects_what_is_not_a_message() -> None:
    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    with pytest.raises(ConfigurationError, match="not a command or an event"):
        bus.add_listener(str, books.register_book)  # type: ignore[arg-type]


def test_scan_covers_the_package_tree_only(
    bus: SyncMessageBus[SyncInMemoryUnitOfWork], uow: SyncInMemoryUnitOfWork
) -> None:
    # handlers/sub/reviews.py is in the tree; handlers_extra/ merely shares the prefix
    with uow as transaction:
        bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        stars = bus.handle(ReviewBook(book_id="1", stars=4), transaction)
        transaction.commit()
    assert 4 == stars
    assert uow.expect_stored([BookReviewed(book_id="1", stars=4)]) == uow.stored()[-1:]


def test_scan_resolves_a_relative_name_against_the_caller(
    uow: SyncInMemoryUnitOfWork,
) -> None:
    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    handlers_relative.scan_relative(bus)
    assert {RegisterBook, ReviewBook} == set(bus.commands_registry)


def test_scan_accepts_a_module_object() -> None:
    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    bus.scan(books)
    assert {RegisterBook} == set(bus.commands_registry)


def test_a_handler_without_a_message_annotation_is_an_error() -> None:
    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    with pytest.raises(ConfigurationError, match=r"handlers_untyped.untyped.*must be annotated"):
        bus.scan("tests.unit._sync.handlers_untyped")


def test_bus_dependencies_are_made_for_each_handle(uow: SyncInMemoryUnitOfWork) -> None:
    seen: list[Any] = []

    def handler(
        command: RegisterBook, transaction: Transaction, recorder: SyncRecordingDependency
    ) -> None:
        seen.append(recorder)

    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus(recorder=SyncRecordingDependency)
    bus.add_listener(RegisterBook, handler)
    with uow as transaction:
        bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.commit()
    with uow as transaction:
        bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        transaction.rollback()
    assert seen[0] is not seen[1]
    assert ["committed", "rolledback"] == [recorder.outcome for recorder in seen]


def test_transient_and_optional_dependencies(uow: SyncInMemoryUnitOfWork) -> None:
    with uow as transaction:
        bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
        bus.scan("tests.unit._sync.handlers")
        bus.handle(RegisterBook(id="1", title="Dune"), transaction, clock="noon")
        bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        transaction.commit()
    assert ["notify 1 (noon)", "notify 2 (no clock)"] == books.calls


def test_a_transient_dependency_listens_to_the_transaction(
    uow: SyncInMemoryUnitOfWork,
) -> None:
    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    bus.add_listener(RegisterBook, books.register_book)
    recorder = SyncRecordingDependency()
    with uow as transaction:
        bus.handle(RegisterBook(id="1", title="Dune"), transaction, recorder=recorder)
        transaction.commit()
    assert "committed" == recorder.outcome


def test_a_missing_dependency_names_the_parameter_and_the_handler(
    uow: SyncInMemoryUnitOfWork,
) -> None:
    def needs_mailer(command: RegisterBook, transaction: Transaction, mailer: Any) -> None:
        pass  # pragma: no cover

    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    bus.add_listener(RegisterBook, needs_mailer)
    with uow as transaction:
        with pytest.raises(MissingDependencyError, match=r"needs_mailer needs .*'mailer'"):
            bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.rollback()


def test_the_bus_feeds_the_metrics_store(
    bus: SyncMessageBus[SyncInMemoryUnitOfWork], uow: SyncInMemoryUnitOfWork
) -> None:
    uow.metrics_store = RecordingMetricsStore()
    with uow as transaction:
        bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        transaction.commit()
    assert [
        "begin",
        "timer:register_book",
        "message:register_book",
        "message:book_registered",
        "closed:committed",
    ] == uow.metrics_store.events


def test_handling_an_event_runs_every_handler_of_it(uow: SyncInMemoryUnitOfWork) -> None:
    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    received: list[str] = []

    def first(event: BookRegistered, transaction: Any) -> None:
        received.append(f"first {event.id}")

    def second(event: BookRegistered, transaction: Any) -> None:
        received.append(f"second {event.id}")

    bus.add_listener(BookRegistered, first)
    bus.add_listener(BookRegistered, second)
    with uow as transaction:
        assert None is bus.handle(BookRegistered(id="1", title="Dune"), transaction)
        transaction.commit()
    assert ["first 1", "second 1"] == received
    assert uow.expect_stored([BookRegistered(id="1", title="Dune")]) == uow.stored()
    assert uow.expect_published(["book_registered_v1"]) == uow.published()


def test_an_event_without_handlers_is_stored_and_nothing_else(
    uow: SyncInMemoryUnitOfWork,
) -> None:
    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    with uow as transaction:
        bus.handle(BookRegistered(id="1", title="Dune"), transaction)
        transaction.commit()
    assert uow.expect_stored([BookRegistered(id="1", title="Dune")]) == uow.stored()


def test_a_scan_that_registers_nothing_says_so() -> None:
    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    with pytest.warns(UserWarning, match=r"bus.scan\('tests.unit.model'\) registered no handler"):
        bus.scan("tests.unit.model")
    assert {} == bus.commands_registry


def test_a_scan_that_registers_handlers_is_silent() -> None:
    bus: SyncMessageBus[SyncInMemoryUnitOfWork] = SyncMessageBus()
    bus.scan("tests.unit._sync.handlers")  # filterwarnings = error: a warning would fail
    assert {RegisterBook, ReviewBook} == set(bus.commands_registry)
