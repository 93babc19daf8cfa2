"""The relay's send timeout: one timer for many sends, exact for each of them.

`SendDeadline` does what ``asyncio.timeout(send_timeout)`` around each send would do,
with a timer set once per send_timeout rather than once per send. These tests drive it
as ``StreamDelivery._send_rows`` does: ``start()``, the send, ``expired()`` if the send
was cancelled, ``stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import pytest

from messagebus.adapters.sqlalchemy.outbox.delivery import SendDeadline


async def timed_send(deadline: SendDeadline, send: Callable[[], Awaitable[None]]) -> str:
    """Run ``send`` as the relay does; return "sent" or "timed out"."""
    deadline.start()
    try:
        await send()
    except asyncio.CancelledError:
        if not deadline.expired():
            raise
        return "timed out"
    finally:
        deadline.stop()
    return "sent"


async def test_a_send_longer_than_the_timeout_times_out_and_the_task_goes_on() -> None:
    deadline = SendDeadline(0.05)
    started = time.monotonic()
    assert await timed_send(deadline, lambda: asyncio.sleep(5)) == "timed out"
    assert 0.04 <= time.monotonic() - started < 1
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # the deadline took its cancellation back
    await asyncio.sleep(0.01)  # and the task is not cancelled later
    deadline.close()


async def test_a_later_send_gets_its_whole_timeout() -> None:
    deadline = SendDeadline(0.2)
    assert await timed_send(deadline, lambda: asyncio.sleep(0)) == "sent"
    await asyncio.sleep(0.15)  # between sends: the timer, set by the first, still waits
    started = time.monotonic()
    assert await timed_send(deadline, lambda: asyncio.sleep(5)) == "timed out"
    # Timed from its own start, not the first send's: the timer was set again.
    assert time.monotonic() - started >= 0.19
    deadline.close()


async def test_many_quick_sends_never_time_out() -> None:
    deadline = SendDeadline(0.05)
    results = []
    ends = time.monotonic() + 0.3
    while time.monotonic() < ends:  # sends for six timeouts in all, each one quick
        results.append(await timed_send(deadline, lambda: asyncio.sleep(0.001)))
    assert set(results) == {"sent"}
    deadline.close()


async def test_the_timer_between_sends_cancels_nothing() -> None:
    deadline = SendDeadline(0.05)
    assert await timed_send(deadline, lambda: asyncio.sleep(0)) == "sent"
    await asyncio.sleep(0.2)  # the timer fires while no send is under way
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    deadline.close()


async def test_a_cancellation_of_the_task_during_a_send_that_also_timed_out_goes_on() -> None:
    deadline = SendDeadline(0.05)

    async def send() -> None:
        try:
            await asyncio.sleep(5)
        finally:
            await asyncio.sleep(0.1)  # past the deadline, while the task is cancelled

    async def deliver() -> str:
        return await timed_send(deadline, send)

    task = asyncio.create_task(deliver())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    deadline.close()


async def test_a_transport_that_swallows_the_cancellation_has_sent() -> None:
    deadline = SendDeadline(0.05)

    async def stubborn() -> None:
        # A transport should not swallow it; the send then counts as done.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(5)

    assert await timed_send(deadline, stubborn) == "sent"
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # no cancellation left over for a later await
    await asyncio.sleep(0.01)
    deadline.close()
