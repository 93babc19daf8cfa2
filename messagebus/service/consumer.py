"""The consumer: incoming envelopes become typed messages, handled once each.

:class:`AsyncConsumer` is what a broker subscriber calls for every message it receives
(:meth:`AsyncConsumer.receive`), and what runs in process over an :class:`asyncio.Queue`
or any async iterator (:meth:`AsyncConsumer.run`). It is async only.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic

from messagebus.domain.model import Message
from messagebus.ports.dead_letters import AsyncAbstractDeadLetters, AsyncInMemoryDeadLetters
from messagebus.ports.inbox import AsyncAbstractInbox, AsyncInMemoryInbox
from messagebus.service._async.registry import AsyncMessageBus
from messagebus.service._async.unit_of_work import TAsyncUow
from messagebus.service.messages import DEFAULT_MAX_SIZE, DecodeError, MessageRegistry

__all__ = ["AsyncConsumer", "ConsumerStats", "Outcome", "exponential_backoff"]

logger = logging.getLogger("messagebus.consumer")

Incoming = tuple[bytes, Mapping[str, str]]
"""A message as a broker hands it over: its body and its headers."""


class Outcome(enum.Enum):
    """What became of a received message, so that the caller acknowledges it or not.

    .. versionadded:: 0.17
    """

    handled = "handled"
    """Its handlers ran and their transaction committed: acknowledge it."""
    duplicate = "duplicate"
    """This consumer had already handled it (same message id): acknowledge it."""
    dead_lettered = "dead_lettered"
    """It could not be read, or its handlers kept failing: it is in the dead letters,
    acknowledge it."""
    retry_later = "retry_later"
    """A transient failure (the database is down, the dead letters cannot be written):
    do not acknowledge it, so that the broker delivers it again."""

    @property
    def acknowledge(self) -> bool:
        """Whether the broker may forget the message."""
        return self is not Outcome.retry_later


@dataclass
class ConsumerStats:
    """How many messages a consumer received, and what became of them.

    .. versionadded:: 0.17
    """

    received: int = 0
    """Calls to :meth:`AsyncConsumer.receive`."""
    handled: int = 0
    """Messages whose transaction committed."""
    duplicates: int = 0
    """Messages skipped because the inbox had them."""
    dead_lettered: int = 0
    """Messages set aside in the dead letters."""
    retry_later: int = 0
    """Messages given back to the broker for a later delivery."""
    failures: int = 0
    """Failed attempts to handle a message (each retry counts)."""


def exponential_backoff(failures: int) -> float:
    """Wait 0.1 s after the first failure, doubling each time up to 5 s."""
    return min(5.0, 0.1 * 2.0 ** min(failures - 1, 16))


class AsyncConsumer(Generic[TAsyncUow]):
    """Decodes incoming envelopes and handles each message once, in its own transaction.

    For each message, :meth:`receive` decodes it with the registry (upcasting older
    versions), opens a transaction of a new unit of work, claims the message id in the
    inbox (a message this consumer already handled is skipped), lets the bus handle it
    (a command's handler, or every handler of an event) and commits: the inbox row and
    the handlers' writes are committed together. What cannot be decoded goes to the dead
    letters at once; a message whose handling fails is tried again ``retries`` times,
    waiting ``backoff(failures)`` seconds in between, then goes to the dead letters,
    unless the last error is one of ``transient_errors``: then it is given back to the
    broker (:attr:`Outcome.retry_later`).

    :param bus: the bus whose handlers handle the messages.
    :param uow_factory: returns a new unit of work; called once per attempt, so that
        concurrent calls to :meth:`receive` do not share one.
    :param registry: the classes to build; by default those ``bus`` has handlers for.
        Its upcasters are checked here.
    :param name: the consumer's name in the inbox: consumers of one name share the
        work (competing consumers), consumers of different names each get every message.
    :param inbox: where the handled message ids are kept; an in-memory one by default.
        It must be able to write in the unit of work's transaction (use
        :class:`~messagebus.adapters.sqlalchemy.AsyncSqlAlchemyInbox` with the SQL one).
    :param dead_letters: where the messages given up on go; in memory by default.
    :param max_size: the largest body decoded, in bytes; ``None`` for no limit.
    :param retries: how many more times a failed message is tried.
    :param backoff: the wait in seconds after the ``n``-th failure of a message;
        0.1 s doubling up to 5 s by default.
    :param transient_errors: the errors that mean "try later" rather than "this message
        is bad", such as a database that cannot be reached. An error that says it
        invalidated its connection (SQLAlchemy's ``connection_invalidated``, when the
        database went away in the middle of a transaction) is one too.
    :param record_received: also keep the received message in the unit of work's
        message store (:meth:`~messagebus.AsyncAbstractMessageStoreRepository.add_received`),
        in the transaction, before its handlers run. Off by default: the inbox row is
        the receipt, and it saves a write per message. Either way the received message
        is never published again (no outbox row, no publisher): its producer did; the
        messages its handlers raise are stored and published as usual. On: the SQL
        message store's row has the producer's ``message_id``, so give the consumer's
        unit of work tables of its own (another ``prefix`` of
        :func:`~messagebus.adapters.sqlalchemy.messagebus_tables`) when it shares a
        database with the producer, or every insert fails on the primary key.
    :raises ConfigurationError: the registry's upcasters have a gap.

    .. versionadded:: 0.17
    """

    def __init__(
        self,
        bus: AsyncMessageBus[TAsyncUow],
        uow_factory: Callable[[], TAsyncUow],
        registry: MessageRegistry | None = None,
        *,
        name: str,
        inbox: AsyncAbstractInbox | None = None,
        dead_letters: AsyncAbstractDeadLetters | None = None,
        max_size: int | None = DEFAULT_MAX_SIZE,
        retries: int = 3,
        backoff: Callable[[int], float] = exponential_backoff,
        transient_errors: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError),
        record_received: bool = False,
    ) -> None:
        if retries < 0:
            raise ValueError(f"retries is {retries}: pass 0 or more")
        self.bus = bus
        self.uow_factory = uow_factory
        self.registry = registry if registry is not None else MessageRegistry.from_bus(bus)
        self.registry.check()
        self.name = name
        self.inbox = inbox if inbox is not None else AsyncInMemoryInbox()
        self.dead_letters = dead_letters if dead_letters is not None else AsyncInMemoryDeadLetters()
        self.max_size = max_size
        self.retries = retries
        self.backoff = backoff
        self.transient_errors = transient_errors
        self.record_received = record_received
        self.stats = ConsumerStats()
        """What became of the messages received so far."""

    async def receive(self, body: bytes | str, headers: Mapping[str, str] | None = None) -> Outcome:
        """Handle one message from a broker and say whether to acknowledge it.

        It never raises for a bad message or a failing handler: those end in the dead
        letters. Cancelling it rolls the running transaction back; the message is then
        neither handled nor acknowledged.

        :param body: the envelope as received.
        :param headers: the headers it came with.
        """
        self.stats.received += 1
        raw = body.encode() if isinstance(body, str) else body
        headers = headers if headers is not None else {}
        received_at = datetime.now(UTC)
        try:
            message = self.registry.decode(raw, headers, max_size=self.max_size)
        except DecodeError as error:
            return await self._dead_letter(raw, headers, f"{error.reason}: {error}")
        failures = 0
        while True:
            try:
                outcome = await self._apply(message, received_at)
            except Exception as error:
                failures += 1
                self.stats.failures += 1
                if failures <= self.retries:
                    logger.info(
                        "%s: %s failed (attempt %d of %d), trying again: %r",
                        self.name,
                        message.message_id,
                        failures,
                        self.retries + 1,
                        error,
                    )
                    await asyncio.sleep(self.backoff(failures))
                    # Afresh, in case the failed attempt changed the message.
                    message = self.registry.decode(raw, headers, max_size=self.max_size)
                    continue
                if self._transient(error):
                    logger.warning(
                        "%s: %s failed %d times, giving it back to the broker: %r",
                        self.name,
                        message.message_id,
                        failures,
                        error,
                    )
                    self.stats.retry_later += 1
                    return Outcome.retry_later
                reason = f"failed: {type(error).__name__}: {error} (after {failures} attempts)"
                return await self._dead_letter(raw, headers, reason)
            if outcome is Outcome.handled:
                self.stats.handled += 1
            else:
                self.stats.duplicates += 1
            return outcome

    async def _apply(self, message: Message[Any], received_at: datetime) -> Outcome:
        async with self.uow_factory() as transaction:
            # Claiming first makes a concurrent consumer wait on the claim, then skip.
            claimed = await self.inbox.claim(
                transaction, message.message_id, consumer=self.name, received_at=received_at
            )
            if not claimed:
                await transaction.rollback()
                return Outcome.duplicate
            store = transaction.uow.messagestore
            if self.record_received:
                await store.add_received(message)
            # The bus stores each message it handles: not this one, its producer's.
            store.received = message
            try:
                await self.bus.handle(message, transaction)  # type: ignore[arg-type]
            finally:
                store.received = None
            await transaction.commit()
        return Outcome.handled

    def _transient(self, error: Exception) -> bool:
        # Duck-typed: the service layer does not import SQLAlchemy.
        return isinstance(error, self.transient_errors) or (
            getattr(error, "connection_invalidated", False) is True
        )

    async def _dead_letter(self, raw: bytes, headers: Mapping[str, str], reason: str) -> Outcome:
        try:
            await self.dead_letters.put(raw, headers, reason)
        except Exception:
            logger.exception("%s: cannot write a dead letter (%s); retry later", self.name, reason)
            self.stats.retry_later += 1
            return Outcome.retry_later
        logger.warning("%s: dead-lettered a message: %s", self.name, reason)
        self.stats.dead_lettered += 1
        return Outcome.dead_lettered

    async def run(self, source: asyncio.Queue[Incoming] | AsyncIterable[Incoming]) -> None:
        """Receive the ``(body, headers)`` pairs of ``source`` one by one, in process.

        A queue is read until the task is cancelled, calling ``task_done()`` after each
        message, so ``await queue.join()`` waits for those put so far; the message being
        handled when the task is cancelled is rolled back and put back at the end of the
        queue, for the next reader. An async iterable is read to its end. A message given
        back (:attr:`Outcome.retry_later`) is tried again after a backoff, before the
        next one, so the order is kept.
        """
        if isinstance(source, asyncio.Queue):
            while True:
                item = await source.get()
                try:
                    await self._receive_until_done(*item)
                except asyncio.CancelledError:
                    source.put_nowait(item)
                    raise
                finally:
                    source.task_done()
        else:
            async for body, headers in source:
                await self._receive_until_done(body, headers)

    async def _receive_until_done(self, body: bytes, headers: Mapping[str, str]) -> None:
        attempts = 0
        while (await self.receive(body, headers)) is Outcome.retry_later:
            attempts += 1
            await asyncio.sleep(self.backoff(attempts))
