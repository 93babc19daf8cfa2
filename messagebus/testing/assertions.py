"""Assertions on what a test's bus did: the messages it handled and the ones it published.

Messages are compared as the library compares them: same class and same fields, whatever
their ``message_id`` and ``created_at``. A failure shows the difference, line by line.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from messagebus.domain.model import Message
from messagebus.service.eventstream import MessageSerializer
from messagebus.testing._async.fakes import (
    AsyncInMemoryMessageStore,
    AsyncInMemoryTransport,
    AsyncInMemoryUnitOfWork,
)
from messagebus.testing._sync.fakes import (
    SyncInMemoryMessageStore,
    SyncInMemoryTransport,
    SyncInMemoryUnitOfWork,
)

__all__ = ["assert_handled", "assert_published"]

_STORES = (AsyncInMemoryMessageStore, SyncInMemoryMessageStore)
_TRANSPORTS = (AsyncInMemoryTransport, SyncInMemoryTransport)
_UNITS_OF_WORK = (AsyncInMemoryUnitOfWork, SyncInMemoryUnitOfWork)


def assert_handled(target: Any, expected: Sequence[Message[Any]]) -> None:
    """Check that the bus handled exactly ``expected``, in order, in committed transactions.

    :param target: an in-memory unit of work, or its ``messagestore``; the commands
        and the events handled are those it kept (a rolled-back transaction keeps none).
    :raises AssertionError: with the difference between ``expected`` and what was handled.
    """
    compare("handled", list(expected), _store(target, "assert_handled").messages)


def assert_published(target: Any, expected: Sequence[Message[Any]]) -> None:
    """Check that exactly ``expected`` were published, in order, after their commits.

    :param target: an in-memory unit of work or message store (the messages it
        published), or an in-memory transport (the envelopes it received, compared by
        type and payload as the default :class:`~messagebus.MessageSerializer` writes
        them).
    :raises AssertionError: with the difference between ``expected`` and what was published.
    """
    if isinstance(target, _TRANSPORTS):
        serializer = MessageSerializer()
        wanted = [_envelope_line(serializer.serialize_message(message)) for message in expected]
        received = [_envelope_line(sent.envelope) for sent in target.sent]
        compare("published", wanted, received)
        return
    compare("published", list(expected), _store(target, "assert_published").published)


def _store(target: Any, caller: str) -> AsyncInMemoryMessageStore | SyncInMemoryMessageStore:
    store = target.messagestore if isinstance(target, _UNITS_OF_WORK) else target
    if isinstance(target, _UNITS_OF_WORK) and not isinstance(store, _STORES):
        raise TypeError(
            f"{caller}() reads the message store of {type(target).__name__}, a "
            f"{type(store).__name__}: give it an in-memory message store, or pass one"
        )
    if not isinstance(store, _STORES):
        raise TypeError(
            f"{caller}() takes an in-memory unit of work, message store or transport of "
            f"messagebus.testing, not {type(target).__name__}: check your unit of work's "
            f"message store with messagebus.testing.AsyncInMemoryMessageStore"
        )
    return store


def _envelope_line(envelope: Any) -> str:
    return f"{envelope.get('type')} {envelope.get('payload')}"


def compare(what: str, expected: list[Any], actual: list[Any]) -> None:
    """Raise :class:`AssertionError` with a diff unless ``expected == actual``."""
    if expected == actual:
        return
    wanted, got = [_line(item) for item in expected], [_line(item) for item in actual]
    diff = "\n".join(line.rstrip() for line in difflib.ndiff(wanted, got) if line[0] != "?")
    if wanted == got:  # equal reprs, unequal messages: the classes differ
        wanted = [f"{type(item).__module__}.{type(item).__qualname__}" for item in expected]
        got = [f"{type(item).__module__}.{type(item).__qualname__}" for item in actual]
        diff = "\n".join(line.rstrip() for line in difflib.ndiff(wanted, got) if line[0] != "?")
    raise AssertionError(
        f"The messages {what} are not the expected ones (- expected, + {what}):\n{diff}"
    )


def _line(item: Any) -> str:
    return item if isinstance(item, str) else repr(item)
