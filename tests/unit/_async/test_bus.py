from typing import Any

import pytest

from messagebus import (
    AsyncMessageBus,
    AsyncUnitOfWorkTransaction,
    ConfigurationError,
    MissingDependencyError,
)
from tests.unit._async import handlers_relative
from tests.unit._async.fakes import (
    AsyncInMemoryUnitOfWork,
    AsyncRecordingDependency,
    RecordingMetricsStore,
)
from tests.unit._async.handlers import books
from tests.unit.model import (
    Book,
    BookRegistered,
    BookReviewed,
    RegisterBook,
    RegisterBookV2,
    ReviewBook,
    ShelfUpdated,
)

Transaction = AsyncUnitOfWorkTransaction[AsyncInMemoryUnitOfWork]


@pytest.fixture
def bus() -> AsyncMessageBus[AsyncInMemoryUnitOfWork]:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.scan("tests.unit._async.handlers")
    return bus


async def test_handle_returns_the_command_handler_result(
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork], uow: AsyncInMemoryUnitOfWork
) -> None:
    async with uow as transaction:
        result = await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    assert "1" == result
    assert Book(id="1", title="Dune") == uow.books.books["1"]


async def test_events_raised_by_models_are_handled_and_stored(
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork], uow: AsyncInMemoryUnitOfWork
) -> None:
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    assert ["notify 1 (no clock)"] == books.calls
    assert (
        uow.expect_stored(
            [RegisterBook(id="1", title="Dune"), BookRegistered(id="1", title="Dune")]
        )
        == uow.stored()
    )
    assert uow.expect_published(["book_registered_v1"]) == uow.published()


async def test_messages_without_a_handler_are_stored(uow: AsyncInMemoryUnitOfWork) -> None:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.add_listener(RegisterBook, books.register_book)  # no handler for BookRegistered
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    assert (
        uow.expect_stored(
            [RegisterBook(id="1", title="Dune"), BookRegistered(id="1", title="Dune")]
        )
        == uow.stored()
    )


async def test_a_command_without_handler_is_an_error(
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork], uow: AsyncInMemoryUnitOfWork
) -> None:
    async with uow as transaction:
        with pytest.raises(ConfigurationError, match="RegisterBookV2 has no handler"):
            await bus.handle(RegisterBookV2(id="1", title="Dune", author="F. H."), transaction)
        await transaction.rollback()
    assert [] == uow.stored()


async def test_event_handlers_run_in_order_and_cascade(uow: AsyncInMemoryUnitOfWork) -> None:
    order: list[str] = []
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.add_listener(RegisterBook, books.register_book)

    async def first(event: BookRegistered, transaction: Transaction) -> None:
        order.append("first")
        shelf = Book(id="shelf", title="shelf", messages=[ShelfUpdated(book_id=event.id)])
        await transaction.books.add(shelf)

    async def second(event: BookRegistered, transaction: Transaction) -> None:
        order.append("second")

    async def on_shelf(event: ShelfUpdated, transaction: Transaction) -> None:
        order.append(f"shelf {event.book_id}")

    bus.add_listener(BookRegistered, first)
    bus.add_listener(BookRegistered, second)
    bus.add_listener(ShelfUpdated, on_shelf)
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
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


async def test_rollback_publishes_none_of_the_handled_events(
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork], uow: AsyncInMemoryUnitOfWork
) -> None:
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.rollback()
    assert [] == uow.published()


async def test_a_second_command_handler_is_an_error_naming_both(
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork],
) -> None:
    async def another(command: RegisterBook, transaction: Transaction) -> None:
        pass  # pragma: no cover

    with pytest.raises(ConfigurationError) as raised:
        bus.add_listener(RegisterBook, another)
    assert "register_book" in str(raised.value)
    assert "another" in str(raised.value)


async def test_remove_listener_removes_exactly_that_callback(
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork], uow: AsyncInMemoryUnitOfWork
) -> None:
    async def stranger(command: RegisterBook, transaction: Transaction) -> None:
        pass  # pragma: no cover

    with pytest.raises(ConfigurationError, match="stranger is not a handler of RegisterBook"):
        bus.remove_listener(RegisterBook, stranger)
    bus.remove_listener(BookRegistered, books.notify_librarian)
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)  # still handled
        await transaction.commit()
    assert [] == books.calls
    bus.remove_listener(RegisterBook, books.register_book)
    async with uow as transaction:
        with pytest.raises(ConfigurationError, match="no handler"):
            await bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        await transaction.rollback()


async def test_add_listener_rejects_what_is_not_a_message() -> None:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    with pytest.raises(ConfigurationError, match="not a command or an event"):
        bus.add_listener(str, books.register_book)  # type: ignore[arg-type]


async def test_scan_covers_the_package_tree_only(
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork], uow: AsyncInMemoryUnitOfWork
) -> None:
    # handlers/sub/reviews.py is in the tree; handlers_extra/ merely shares the prefix
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        stars = await bus.handle(ReviewBook(book_id="1", stars=4), transaction)
        await transaction.commit()
    assert 4 == stars
    assert uow.expect_stored([BookReviewed(book_id="1", stars=4)]) == uow.stored()[-1:]


async def test_scan_resolves_a_relative_name_against_the_caller(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    handlers_relative.scan_relative(bus)
    assert {RegisterBook, ReviewBook} == set(bus.commands_registry)


async def test_scan_accepts_a_module_object() -> None:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.scan(books)
    assert {RegisterBook} == set(bus.commands_registry)


async def test_a_handler_without_a_message_annotation_is_an_error() -> None:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    with pytest.raises(ConfigurationError, match=r"handlers_untyped.untyped.*must be annotated"):
        bus.scan("tests.unit._async.handlers_untyped")


async def test_bus_dependencies_are_made_for_each_handle(uow: AsyncInMemoryUnitOfWork) -> None:
    seen: list[Any] = []

    async def handler(
        command: RegisterBook, transaction: Transaction, recorder: AsyncRecordingDependency
    ) -> None:
        seen.append(recorder)

    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus(
        recorder=AsyncRecordingDependency
    )
    bus.add_listener(RegisterBook, handler)
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    async with uow as transaction:
        await bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        await transaction.rollback()
    assert seen[0] is not seen[1]
    assert ["committed", "rolledback"] == [recorder.outcome for recorder in seen]


async def test_transient_and_optional_dependencies(uow: AsyncInMemoryUnitOfWork) -> None:
    async with uow as transaction:
        bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
        bus.scan("tests.unit._async.handlers")
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction, clock="noon")
        await bus.handle(RegisterBook(id="2", title="Emma"), transaction)
        await transaction.commit()
    assert ["notify 1 (noon)", "notify 2 (no clock)"] == books.calls


async def test_a_transient_dependency_listens_to_the_transaction(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.add_listener(RegisterBook, books.register_book)
    recorder = AsyncRecordingDependency()
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction, recorder=recorder)
        await transaction.commit()
    assert "committed" == recorder.outcome


async def test_a_missing_dependency_names_the_parameter_and_the_handler(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    async def needs_mailer(command: RegisterBook, transaction: Transaction, mailer: Any) -> None:
        pass  # pragma: no cover

    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.add_listener(RegisterBook, needs_mailer)
    async with uow as transaction:
        with pytest.raises(MissingDependencyError, match=r"needs_mailer needs .*'mailer'"):
            await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.rollback()


async def test_the_bus_feeds_the_metrics_store(
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork], uow: AsyncInMemoryUnitOfWork
) -> None:
    uow.metrics_store = RecordingMetricsStore()
    async with uow as transaction:
        await bus.handle(RegisterBook(id="1", title="Dune"), transaction)
        await transaction.commit()
    assert [
        "begin",
        "timer:register_book",
        "message:register_book",
        "message:book_registered",
        "closed:committed",
    ] == uow.metrics_store.events


async def test_handling_an_event_runs_every_handler_of_it(uow: AsyncInMemoryUnitOfWork) -> None:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    received: list[str] = []

    async def first(event: BookRegistered, transaction: Any) -> None:
        received.append(f"first {event.id}")

    async def second(event: BookRegistered, transaction: Any) -> None:
        received.append(f"second {event.id}")

    bus.add_listener(BookRegistered, first)
    bus.add_listener(BookRegistered, second)
    async with uow as transaction:
        assert None is await bus.handle(BookRegistered(id="1", title="Dune"), transaction)
        await transaction.commit()
    assert ["first 1", "second 1"] == received
    assert uow.expect_stored([BookRegistered(id="1", title="Dune")]) == uow.stored()
    assert uow.expect_published(["book_registered_v1"]) == uow.published()


async def test_an_event_without_handlers_is_stored_and_nothing_else(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    async with uow as transaction:
        await bus.handle(BookRegistered(id="1", title="Dune"), transaction)
        await transaction.commit()
    assert uow.expect_stored([BookRegistered(id="1", title="Dune")]) == uow.stored()


def test_a_scan_that_registers_nothing_says_so() -> None:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    with pytest.warns(UserWarning, match=r"bus.scan\('tests.unit.model'\) registered no handler"):
        bus.scan("tests.unit.model")
    assert {} == bus.commands_registry


def test_a_scan_that_registers_handlers_is_silent() -> None:
    bus: AsyncMessageBus[AsyncInMemoryUnitOfWork] = AsyncMessageBus()
    bus.scan("tests.unit._async.handlers")  # filterwarnings = error: a warning would fail
    assert {RegisterBook, ReviewBook} == set(bus.commands_registry)
