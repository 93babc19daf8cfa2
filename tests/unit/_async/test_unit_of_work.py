import gc
import weakref
from typing import Any

import pytest

from messagebus import (
    AsyncAbstractUnitOfWork,
    AsyncUnitOfWorkTransaction,
    TransactionError,
    TransactionStatus,
)
from tests.unit._async.fakes import (
    AsyncInMemoryUnitOfWork,
    AsyncRecordingDependency,
    AsyncRecordingTransport,
    RecordingMetricsStore,
)
from tests.unit.model import Book, BookRegistered, RegisterBook


def registered(book_id: str = "1") -> BookRegistered:
    return BookRegistered(id=book_id, title="Dune")


async def store_published_event(uow: AsyncInMemoryUnitOfWork, book_id: str = "1") -> None:
    await uow.messagestore.add(registered(book_id))


async def test_commit_publishes_after_the_block(uow: AsyncInMemoryUnitOfWork) -> None:
    async with uow as transaction:
        await store_published_event(uow)
        await transaction.commit()
        assert TransactionStatus.committed == transaction.status
        assert [] == uow.published()  # not before the block is over
    assert TransactionStatus.closed == transaction.status
    assert ["commit"] == uow.calls
    assert uow.expect_published(["book_registered_v1"]) == uow.published()


async def test_rollback_publishes_nothing(uow: AsyncInMemoryUnitOfWork) -> None:
    async with uow as transaction:
        await store_published_event(uow)
        await transaction.rollback()
    assert TransactionStatus.closed == transaction.status
    assert ["rollback"] == uow.calls
    assert [] == uow.published()
    assert [] == uow.messagestore.stream_buffer


async def test_an_exception_rolls_back_and_propagates(uow: AsyncInMemoryUnitOfWork) -> None:
    with pytest.raises(ValueError, match="boom"):
        async with uow as transaction:
            await store_published_event(uow)
            raise ValueError("boom")
    assert TransactionStatus.closed == transaction.status
    assert ["rollback"] == uow.calls
    assert [] == uow.published()


async def test_leaving_without_commit_or_rollback_raises_and_rolls_back(
    uow: AsyncInMemoryUnitOfWork,
) -> None:
    with pytest.raises(TransactionError, match=r"commit\(\)"):
        async with uow as transaction:
            await store_published_event(uow)
    assert ["rollback"] == uow.calls
    assert TransactionStatus.closed == transaction.status
    assert [] == uow.published()


async def test_a_commit_is_final_when_an_exception_follows(uow: AsyncInMemoryUnitOfWork) -> None:
    with pytest.raises(ValueError, match="after"):
        async with uow as transaction:
            await store_published_event(uow)
            await transaction.commit()
            raise ValueError("after the commit")
    assert ["commit"] == uow.calls
    assert TransactionStatus.closed == transaction.status
    assert uow.expect_published(["book_registered_v1"]) == uow.published()


async def test_rollback_after_commit_raises(uow: AsyncInMemoryUnitOfWork) -> None:
    async with uow as transaction:
        await transaction.commit()
        with pytest.raises(TransactionError, match="a commit is final"):
            await transaction.rollback()
    assert ["commit"] == uow.calls


async def test_commit_twice_raises(uow: AsyncInMemoryUnitOfWork) -> None:
    async with uow as transaction:
        await transaction.commit()
        with pytest.raises(TransactionError, match="committed"):
            await transaction.commit()


async def test_rollback_twice_is_harmless(uow: AsyncInMemoryUnitOfWork) -> None:
    async with uow as transaction:
        await transaction.rollback()
        await transaction.rollback()
    assert ["rollback"] == uow.calls


async def test_detached_transaction_rolls_back_on_close(uow: AsyncInMemoryUnitOfWork) -> None:
    async with uow as transaction:
        await store_published_event(uow)
        await transaction.detach()
    assert TransactionStatus.streaming == transaction.status
    assert [] == uow.calls
    await transaction.close()
    assert TransactionStatus.closed == transaction.status
    assert ["rollback"] == uow.calls
    assert [] == uow.published()


async def test_detach_after_commit_keeps_the_commit(uow: AsyncInMemoryUnitOfWork) -> None:
    async with uow as transaction:
        await store_published_event(uow)
        await transaction.commit()
        await transaction.detach()
    assert [] == uow.published()
    await transaction.close()
    assert ["commit"] == uow.calls
    assert uow.expect_published(["book_registered_v1"]) == uow.published()


async def test_a_detached_transaction_can_commit_before_close(uow: AsyncInMemoryUnitOfWork) -> None:
    async with uow as transaction:
        await store_published_event(uow)
        await transaction.detach()
    await transaction.commit()
    await transaction.close()
    assert ["commit"] == uow.calls
    assert uow.expect_published(["book_registered_v1"]) == uow.published()


async def test_close_twice_raises(uow: AsyncInMemoryUnitOfWork) -> None:
    async with uow as transaction:
        await transaction.detach()
    await transaction.close()
    with pytest.raises(TransactionError, match="already closed"):
        await transaction.close()


async def test_an_exception_in_a_detached_block_rolls_back(uow: AsyncInMemoryUnitOfWork) -> None:
    with pytest.raises(ValueError, match="stream"):
        async with uow as transaction:
            await transaction.detach()
            raise ValueError("the stream never started")
    assert ["rollback"] == uow.calls
    assert TransactionStatus.closed == transaction.status


async def test_a_unit_of_work_opens_one_transaction_at_a_time(uow: AsyncInMemoryUnitOfWork) -> None:
    async with uow as transaction:
        with pytest.raises(TransactionError, match="already in a transaction"):
            async with uow:
                pass  # pragma: no cover
        await transaction.rollback()
    async with uow as transaction:  # once closed, a new one can start
        await transaction.commit()
    assert ["rollback", "commit"] == uow.calls


async def test_two_units_of_work_share_no_state() -> None:
    first, second = AsyncInMemoryUnitOfWork(), AsyncInMemoryUnitOfWork()
    async with first as transaction:
        await store_published_event(first)
        await transaction.rollback()
    assert [] == second.messagestore.stream_buffer
    assert first.books.seen is not second.books.seen


async def test_default_message_stores_are_not_shared() -> None:
    from messagebus import AsyncAbstractUnitOfWork

    class BareUnitOfWork(AsyncAbstractUnitOfWork):  # type: ignore[type-arg]
        async def commit(self) -> None:
            pass

        async def rollback(self) -> None:
            pass

    first, second = BareUnitOfWork(), BareUnitOfWork()
    assert first.messagestore is not second.messagestore
    await first.messagestore.add(registered())
    assert [] == second.messagestore.stream_buffer


async def test_class_level_stores_of_a_subclass_are_kept() -> None:
    from messagebus import AsyncSinkholeMessageStoreRepository

    metrics = RecordingMetricsStore()
    store = AsyncSinkholeMessageStoreRepository()

    class SharedStoresUnitOfWork(AsyncAbstractUnitOfWork):  # type: ignore[type-arg]
        metrics_store = metrics
        messagestore = store

        async def commit(self) -> None:
            pass

        async def rollback(self) -> None:
            pass

    uow = SharedStoresUnitOfWork()
    assert (metrics, store) == (uow.metrics_store, uow.messagestore)
    async with uow as transaction:
        assert (metrics, store) == (transaction.metrics_store, transaction.messagestore)
        await transaction.commit()
    assert ["begin", "closed:committed"] == metrics.events


async def test_a_message_store_that_skips_init_receives_nothing() -> None:
    from messagebus import AsyncAbstractMessageStoreRepository

    class NoInitStore(AsyncAbstractMessageStoreRepository):
        def __init__(self) -> None:
            self.publisher = None
            self.stream_buffer = []

        async def _add(self, message: Any) -> None:
            pass

    assert NoInitStore().received is None


async def test_transaction_exposes_the_repositories(uow: AsyncInMemoryUnitOfWork) -> None:
    async with uow as transaction:
        assert uow.books is transaction.books
        assert uow.messagestore is transaction.messagestore
        await transaction.rollback()


async def test_listeners_hear_how_the_transaction_ended(uow: AsyncInMemoryUnitOfWork) -> None:
    committed, rolled_back = AsyncRecordingDependency(), AsyncRecordingDependency()
    async with uow as transaction:
        assert committed is transaction.add_listener(committed)
        await transaction.commit()
    async with uow as transaction:
        transaction.add_listener(rolled_back)
        await transaction.rollback()
    assert ("committed", "rolledback") == (committed.outcome, rolled_back.outcome)


async def test_collect_new_events_empties_seen_in_order(uow: AsyncInMemoryUnitOfWork) -> None:
    first = Book(id="1", title="Dune", messages=[registered("1"), registered("2")])
    second = Book(id="2", title="Emma", messages=[registered("3")])
    await uow.books.add(first)
    await uow.books.add(second)
    assert [registered("1"), registered("2"), registered("3")] == list(uow.collect_new_events())
    assert [] == uow.books.seen
    assert [] == first.messages


async def test_metrics_store_counts_the_transactions(uow: AsyncInMemoryUnitOfWork) -> None:
    uow.metrics_store = RecordingMetricsStore()
    async with uow as transaction:
        await transaction.commit()
    with pytest.raises(ValueError, match="x"):
        async with uow as transaction:
            raise ValueError("x")
    assert [
        "begin",
        "closed:committed",
        "begin",
        "failed",
        "closed:rolledback",
    ] == uow.metrics_store.events


async def test_repr_names_the_unit_of_work_and_status(uow: AsyncInMemoryUnitOfWork) -> None:
    async with uow as transaction:
        assert f"{type(uow).__name__} running" in repr(transaction)
        await transaction.rollback()


def test_rollback_discards_buffered_messages_even_without_a_block() -> None:
    uow = AsyncInMemoryUnitOfWork()
    uow.messagestore.stream_buffer.append(RegisterBook(id="1", title="Dune"))
    uow.messagestore.discard_eventstream()
    assert [] == uow.messagestore.stream_buffer


class AsyncReleaseRecordingUnitOfWork(AsyncInMemoryUnitOfWork):
    fail_rollback = False

    async def rollback(self) -> None:
        await super().rollback()
        if self.fail_rollback:
            raise ConnectionError("the database went away")

    async def release(self) -> None:
        self.calls.append("release")


async def test_release_follows_a_commit() -> None:
    uow = AsyncReleaseRecordingUnitOfWork()
    async with uow as transaction:
        await transaction.commit()
    assert ["commit", "release"] == uow.calls


async def test_release_follows_an_exception() -> None:
    uow = AsyncReleaseRecordingUnitOfWork()
    with pytest.raises(ValueError, match="boom"):
        async with uow:
            raise ValueError("boom")
    assert ["rollback", "release"] == uow.calls


async def test_release_follows_a_forgotten_commit() -> None:
    uow = AsyncReleaseRecordingUnitOfWork()
    with pytest.raises(TransactionError):
        async with uow:
            pass
    assert ["rollback", "release"] == uow.calls


async def test_release_waits_for_close_after_detach() -> None:
    uow = AsyncReleaseRecordingUnitOfWork()
    async with uow as transaction:
        await transaction.detach()
    assert [] == uow.calls
    await transaction.close()
    assert ["rollback", "release"] == uow.calls


async def test_a_failing_rollback_still_closes_and_releases() -> None:
    uow = AsyncReleaseRecordingUnitOfWork()
    uow.fail_rollback = True
    with pytest.raises(ConnectionError, match="went away"):
        async with uow:
            raise ValueError("boom")
    assert ["rollback", "release"] == uow.calls
    assert TransactionStatus.closed == uow._transaction.status


class AsyncStreamRecordingTransport(AsyncRecordingTransport):
    def __init__(self) -> None:
        super().__init__()
        self.streams: list[str | None] = []

    async def send_envelope(self, envelope: Any, *, stream: str | None) -> None:
        self.streams.append(stream)
        await super().send_envelope(envelope, stream=stream)


async def test_the_publisher_sends_envelopes_without_a_stream() -> None:
    transport = AsyncStreamRecordingTransport()
    uow = AsyncInMemoryUnitOfWork(transport)
    async with uow as transaction:
        await store_published_event(uow)
        await transaction.commit()
    assert [None] == transport.streams
    # the default send_envelope hands the envelope to send_message_serialized
    assert ["book_registered_v1"] == [sent["type"] for sent in transport.sent]


async def test_a_unit_of_work_class_made_at_run_time_can_go_away() -> None:
    """The class of its transactions, made on first use, keeps nothing of it alive."""

    class ShortLived(AsyncAbstractUnitOfWork[Any, Any, Any]):
        async def commit(self) -> None:
            pass

        async def rollback(self) -> None:
            pass

    uow = ShortLived()
    async with uow as transaction:
        await transaction.commit()
    assert isinstance(transaction, AsyncUnitOfWorkTransaction)
    gone = weakref.ref(ShortLived)
    del ShortLived, uow, transaction
    gc.collect()
    assert gone() is None
