# Generated from the _async package by scripts/generate_sync.py: do not edit.
import gc
import weakref
from typing import Any

import pytest

from messagebus import (
    SyncAbstractUnitOfWork,
    SyncUnitOfWorkTransaction,
    TransactionError,
    TransactionStatus,
)
from tests.unit._sync.fakes import (
    RecordingMetricsStore,
    SyncInMemoryUnitOfWork,
    SyncRecordingDependency,
    SyncRecordingTransport,
)
from tests.unit.model import Book, BookRegistered, RegisterBook


def registered(book_id: str = "1") -> BookRegistered:
    return BookRegistered(id=book_id, title="Dune")


def store_published_event(uow: SyncInMemoryUnitOfWork, book_id: str = "1") -> None:
    uow.messagestore.add(registered(book_id))


def test_commit_publishes_after_the_block(uow: SyncInMemoryUnitOfWork) -> None:
    with uow as transaction:
        store_published_event(uow)
        transaction.commit()
        assert TransactionStatus.committed == transaction.status
        assert [] == uow.published()  # not before the block is over
    assert TransactionStatus.closed == transaction.status
    assert ["commit"] == uow.calls
    assert uow.expect_published(["book_registered_v1"]) == uow.published()


def test_rollback_publishes_nothing(uow: SyncInMemoryUnitOfWork) -> None:
    with uow as transaction:
        store_published_event(uow)
        transaction.rollback()
    assert TransactionStatus.closed == transaction.status
    assert ["rollback"] == uow.calls
    assert [] == uow.published()
    assert [] == uow.messagestore.stream_buffer


def test_an_exception_rolls_back_and_propagates(uow: SyncInMemoryUnitOfWork) -> None:
    with pytest.raises(ValueError, match="boom"):
        with uow as transaction:
            store_published_event(uow)
            raise ValueError("boom")
    assert TransactionStatus.closed == transaction.status
    assert ["rollback"] == uow.calls
    assert [] == uow.published()


def test_leaving_without_commit_or_rollback_raises_and_rolls_back(
    uow: SyncInMemoryUnitOfWork,
) -> None:
    with pytest.raises(TransactionError, match=r"commit\(\)"):
        with uow as transaction:
            store_published_event(uow)
    assert ["rollback"] == uow.calls
    assert TransactionStatus.closed == transaction.status
    assert [] == uow.published()


def test_a_commit_is_final_when_an_exception_follows(uow: SyncInMemoryUnitOfWork) -> None:
    with pytest.raises(ValueError, match="after"):
        with uow as transaction:
            store_published_event(uow)
            transaction.commit()
            raise ValueError("after the commit")
    assert ["commit"] == uow.calls
    assert TransactionStatus.closed == transaction.status
    assert uow.expect_published(["book_registered_v1"]) == uow.published()


def test_rollback_after_commit_raises(uow: SyncInMemoryUnitOfWork) -> None:
    with uow as transaction:
        transaction.commit()
        with pytest.raises(TransactionError, match="a commit is final"):
            transaction.rollback()
    assert ["commit"] == uow.calls


def test_commit_twice_raises(uow: SyncInMemoryUnitOfWork) -> None:
    with uow as transaction:
        transaction.commit()
        with pytest.raises(TransactionError, match="committed"):
            transaction.commit()


def test_rollback_twice_is_harmless(uow: SyncInMemoryUnitOfWork) -> None:
    with uow as transaction:
        transaction.rollback()
        transaction.rollback()
    assert ["rollback"] == uow.calls


def test_detached_transaction_rolls_back_on_close(uow: SyncInMemoryUnitOfWork) -> None:
    with uow as transaction:
        store_published_event(uow)
        transaction.detach()
    assert TransactionStatus.streaming == transaction.status
    assert [] == uow.calls
    transaction.close()
    assert TransactionStatus.closed == transaction.status
    assert ["rollback"] == uow.calls
    assert [] == uow.published()


def test_detach_after_commit_keeps_the_commit(uow: SyncInMemoryUnitOfWork) -> None:
    with uow as transaction:
        store_published_event(uow)
        transaction.commit()
        transaction.detach()
    assert [] == uow.published()
    transaction.close()
    assert ["commit"] == uow.calls
    assert uow.expect_published(["book_registered_v1"]) == uow.published()


def test_a_detached_transaction_can_commit_before_close(uow: SyncInMemoryUnitOfWork) -> None:
    with uow as transaction:
        store_published_event(uow)
        transaction.detach()
    transaction.commit()
    transaction.close()
    assert ["commit"] == uow.calls
    assert uow.expect_published(["book_registered_v1"]) == uow.published()


def test_close_twice_raises(uow: SyncInMemoryUnitOfWork) -> None:
    with uow as transaction:
        transaction.detach()
    transaction.close()
    with pytest.raises(TransactionError, match="already closed"):
        transaction.close()


def test_an_exception_in_a_detached_block_rolls_back(uow: SyncInMemoryUnitOfWork) -> None:
    with pytest.raises(ValueError, match="stream"):
        with uow as transaction:
            transaction.detach()
            raise ValueError("the stream never started")
    assert ["rollback"] == uow.calls
    assert TransactionStatus.closed == transaction.status


def test_a_unit_of_work_opens_one_transaction_at_a_time(uow: SyncInMemoryUnitOfWork) -> None:
    with uow as transaction:
        with pytest.raises(TransactionError, match="already in a transaction"):
            with uow:
                pass  # pragma: no cover
        transaction.rollback()
    with uow as transaction:  # once closed, a new one can start
        transaction.commit()
    assert ["rollback", "commit"] == uow.calls


def test_two_units_of_work_share_no_state() -> None:
    first, second = SyncInMemoryUnitOfWork(), SyncInMemoryUnitOfWork()
    with first as transaction:
        store_published_event(first)
        transaction.rollback()
    assert [] == second.messagestore.stream_buffer
    assert first.books.seen is not second.books.seen


def test_default_message_stores_are_not_shared() -> None:
    from messagebus import SyncAbstractUnitOfWork

    class BareUnitOfWork(SyncAbstractUnitOfWork):  # type: ignore[type-arg]
        def commit(self) -> None:
            pass

        def rollback(self) -> None:
            pass

    first, second = BareUnitOfWork(), BareUnitOfWork()
    assert first.messagestore is not second.messagestore
    first.messagestore.add(registered())
    assert [] == second.messagestore.stream_buffer


def test_class_level_stores_of_a_subclass_are_kept() -> None:
    from messagebus import SyncSinkholeMessageStoreRepository

    metrics = RecordingMetricsStore()
    store = SyncSinkholeMessageStoreRepository()

    class SharedStoresUnitOfWork(SyncAbstractUnitOfWork):  # type: ignore[type-arg]
        metrics_store = metrics
        messagestore = store

        def commit(self) -> None:
            pass

        def rollback(self) -> None:
            pass

    uow = SharedStoresUnitOfWork()
    assert (metrics, store) == (uow.metrics_store, uow.messagestore)
    with uow as transaction:
        assert (metrics, store) == (transaction.metrics_store, transaction.messagestore)
        transaction.commit()
    assert ["begin", "closed:committed"] == metrics.events


def test_a_message_store_that_skips_init_receives_nothing() -> None:
    from messagebus import SyncAbstractMessageStoreRepository

    class NoInitStore(SyncAbstractMessageStoreRepository):
        def __init__(self) -> None:
            self.publisher = None
            self.stream_buffer = []

        def _add(self, message: Any) -> None:
            pass

    assert NoInitStore().received is None


def test_transaction_exposes_the_repositories(uow: SyncInMemoryUnitOfWork) -> None:
    with uow as transaction:
        assert uow.books is transaction.books
        assert uow.messagestore is transaction.messagestore
        transaction.rollback()


def test_listeners_hear_how_the_transaction_ended(uow: SyncInMemoryUnitOfWork) -> None:
    committed, rolled_back = SyncRecordingDependency(), SyncRecordingDependency()
    with uow as transaction:
        assert committed is transaction.add_listener(committed)
        transaction.commit()
    with uow as transaction:
        transaction.add_listener(rolled_back)
        transaction.rollback()
    assert ("committed", "rolledback") == (committed.outcome, rolled_back.outcome)


def test_collect_new_events_empties_seen_in_order(uow: SyncInMemoryUnitOfWork) -> None:
    first = Book(id="1", title="Dune", messages=[registered("1"), registered("2")])
    second = Book(id="2", title="Emma", messages=[registered("3")])
    uow.books.add(first)
    uow.books.add(second)
    assert [registered("1"), registered("2"), registered("3")] == list(uow.collect_new_events())
    assert [] == uow.books.seen
    assert [] == first.messages


def test_metrics_store_counts_the_transactions(uow: SyncInMemoryUnitOfWork) -> None:
    uow.metrics_store = RecordingMetricsStore()
    with uow as transaction:
        transaction.commit()
    with pytest.raises(ValueError, match="x"):
        with uow as transaction:
            raise ValueError("x")
    assert [
        "begin",
        "closed:committed",
        "begin",
        "failed",
        "closed:rolledback",
    ] == uow.metrics_store.events


def test_repr_names_the_unit_of_work_and_status(uow: SyncInMemoryUnitOfWork) -> None:
    with uow as transaction:
        assert f"{type(uow).__name__} running" in repr(transaction)
        transaction.rollback()


def test_rollback_discards_buffered_messages_even_without_a_block() -> None:
    uow = SyncInMemoryUnitOfWork()
    uow.messagestore.stream_buffer.append(RegisterBook(id="1", title="Dune"))
    uow.messagestore.discard_eventstream()
    assert [] == uow.messagestore.stream_buffer


class SyncReleaseRecordingUnitOfWork(SyncInMemoryUnitOfWork):
    fail_rollback = False

    def rollback(self) -> None:
        super().rollback()
        if self.fail_rollback:
            raise ConnectionError("the database went away")

    def release(self) -> None:
        self.calls.append("release")


def test_release_follows_a_commit() -> None:
    uow = SyncReleaseRecordingUnitOfWork()
    with uow as transaction:
        transaction.commit()
    assert ["commit", "release"] == uow.calls


def test_release_follows_an_exception() -> None:
    uow = SyncReleaseRecordingUnitOfWork()
    with pytest.raises(ValueError, match="boom"):
        with uow:
            raise ValueError("boom")
    assert ["rollback", "release"] == uow.calls


def test_release_follows_a_forgotten_commit() -> None:
    uow = SyncReleaseRecordingUnitOfWork()
    with pytest.raises(TransactionError):
        with uow:
            pass
    assert ["rollback", "release"] == uow.calls


def test_release_waits_for_close_after_detach() -> None:
    uow = SyncReleaseRecordingUnitOfWork()
    with uow as transaction:
        transaction.detach()
    assert [] == uow.calls
    transaction.close()
    assert ["rollback", "release"] == uow.calls


def test_a_failing_rollback_still_closes_and_releases() -> None:
    uow = SyncReleaseRecordingUnitOfWork()
    uow.fail_rollback = True
    with pytest.raises(ConnectionError, match="went away"):
        with uow:
            raise ValueError("boom")
    assert ["rollback", "release"] == uow.calls
    assert TransactionStatus.closed == uow._transaction.status


class SyncStreamRecordingTransport(SyncRecordingTransport):
    def __init__(self) -> None:
        super().__init__()
        self.streams: list[str | None] = []

    def send_envelope(self, envelope: Any, *, stream: str | None) -> None:
        self.streams.append(stream)
        super().send_envelope(envelope, stream=stream)


def test_the_publisher_sends_envelopes_without_a_stream() -> None:
    transport = SyncStreamRecordingTransport()
    uow = SyncInMemoryUnitOfWork(transport)
    with uow as transaction:
        store_published_event(uow)
        transaction.commit()
    assert [None] == transport.streams
    # the default send_envelope hands the envelope to send_message_serialized
    assert ["book_registered_v1"] == [sent["type"] for sent in transport.sent]


def test_a_unit_of_work_class_made_at_run_time_can_go_away() -> None:
    """The class of its transactions, made on first use, keeps nothing of it alive."""

    class ShortLived(SyncAbstractUnitOfWork[Any, Any, Any]):
        def commit(self) -> None:
            pass

        def rollback(self) -> None:
            pass

    uow = ShortLived()
    with uow as transaction:
        transaction.commit()
    assert isinstance(transaction, SyncUnitOfWorkTransaction)
    gone = weakref.ref(ShortLived)
    del ShortLived, uow, transaction
    gc.collect()
    assert gone() is None
