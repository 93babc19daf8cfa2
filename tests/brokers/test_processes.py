"""The outbox relay and the consumer as separate processes, on the real brokers and PostgreSQL.

The relay is ``messagebus-relay`` with the FastStream transport from the environment; the
consumer is ``messagebus-consume`` with the application of ``consumer_app.py``, which
writes a row per applied message: a message lost or applied twice shows in the rows.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from tests.brokers.processes import assert_once, assert_once_in_order, cut_connections, scenario

BROKERS = pytest.mark.parametrize("kind", ["redis", "rabbit", "nats"])
STREAMS = {"books": 20, "members": 20, "loans": 20}


def stopped_line(stderr: str) -> dict[str, int]:
    """The counts of the consumer's last line: received, handled, duplicates..."""
    match = re.search(r"stopped: (\d+) received, (\d+) handled, (\d+) duplicates", stderr)
    assert match is not None, stderr
    received, handled, duplicates = map(int, match.groups())
    return {"received": received, "handled": handled, "duplicates": duplicates}


@BROKERS
async def test_a_round_trip_through_processes_keeps_each_stream_in_order(
    kind: str, tmp_path: Path
) -> None:
    async with scenario(kind, tmp_path) as found:
        await found.outbox.add(STREAMS)
        relay = await found.start_relay()
        consumer = await found.start_consumer("--progress-interval", "0.2")
        await found.wait_until_applied(60)
        await found.wait_for_line(consumer, "consumer projector: 60 received, 60 handled")

        assert 0 == await consumer.stop()
        assert 0 == await relay.stop()
        assert_once_in_order(await found.applied_rows(), STREAMS)
        assert {"received": 60, "handled": 60, "duplicates": 0} == stopped_line(consumer.stderr)
        assert "consumer projector started" in consumer.stderr


@pytest.mark.parametrize("kind", ["redis"])
async def test_a_second_signal_stops_at_once_and_the_message_comes_again(
    kind: str, tmp_path: Path
) -> None:
    async with scenario(kind, tmp_path) as found:
        await found.outbox.add({"books": 3})
        mark = tmp_path / "committed"
        first = await found.start_consumer(
            BROKER_TEST_HANG_AFTER="books:1", BROKER_TEST_MARK=str(mark)
        )
        relay = await found.start_relay()
        await found.wait_until_applied(2)
        while not mark.exists():  # bounded by the wait above: the 2nd row is committed
            await found.wait_until_applied(2)
        first.process.send_signal(signal.SIGTERM)  # waits for the message in hand...
        await found.wait_for_line(first, "SIGTERM received, stopping after the message")
        assert 1 == await first.stop(signal.SIGINT)  # ...which never ends: a second signal
        assert "stopped by a second signal" in first.stderr

        second = await found.start_consumer("--progress-interval", "0.1")
        await found.wait_until_applied(3)
        # The message in hand comes back after the broker's redelivery delay, which may be
        # after the third one is applied: wait until it did.
        await found.wait_for_line(second, " handled, 1 duplicates,")
        assert 0 == await second.stop()
        assert 0 == await relay.stop()
        assert_once_in_order(await found.applied_rows(), {"books": 3})
        assert 1 == stopped_line(second.stderr)["duplicates"]


@BROKERS
async def test_a_consumer_killed_before_its_acknowledgement_has_no_second_effect(
    kind: str, tmp_path: Path
) -> None:
    async with scenario(kind, tmp_path) as found:
        await found.outbox.add({"books": 10})
        mark = tmp_path / "committed"
        first = await found.start_consumer(
            BROKER_TEST_HANG_AFTER="books:4", BROKER_TEST_MARK=str(mark)
        )
        relay = await found.start_relay()
        await found.wait_until_applied(5)
        while not mark.exists():  # bounded by the wait above: the 5th row is committed
            await found.wait_until_applied(5)
        assert -signal.SIGKILL == await first.stop(signal.SIGKILL)

        second = await found.start_consumer("--progress-interval", "0.1")
        await found.wait_until_applied(10)
        # The killed consumer's message comes back once the broker's redelivery delay is
        # over, which may be after the other five are applied: wait until it did.
        await found.wait_for_line(second, " handled, 1 duplicates,")
        assert 0 == await second.stop()
        assert 0 == await relay.stop()

        assert_once_in_order(await found.applied_rows(), {"books": 10})
        counts = stopped_line(second.stderr)
        assert (5, 1) == (counts["handled"], counts["duplicates"])


@pytest.mark.parametrize("kind", ["redis", "rabbit"])
async def test_cutting_the_broker_connections_loses_nothing_and_doubles_nothing(
    kind: str, tmp_path: Path
) -> None:
    async with scenario(kind, tmp_path) as found:
        relay = await found.start_relay()
        consumer = await found.start_consumer()
        await found.outbox.add({"books": 30, "members": 30})
        await found.wait_until_applied(10)
        # The relay's and the consumer's connections, at least, while both are busy.
        assert 2 <= await cut_connections(found)
        await found.wait_until_applied(60)
        await found.outbox.add({"loans": 30})
        await found.wait_until_applied(70)
        assert 1 <= await cut_connections(found)  # at least the consumer's, reconnected
        await found.wait_until_applied(90)

        assert 0 == await consumer.stop()
        assert 0 == await relay.stop()
        # Not in order: a message whose delivery was cut off is delivered again later (on
        # Redis, the read whose reply was lost left it pending until it is reclaimed).
        assert_once(await found.applied_rows(), {"books": 30, "members": 30, "loans": 30})


@BROKERS
async def test_two_consumers_of_one_group_share_the_work(kind: str, tmp_path: Path) -> None:
    async with scenario(kind, tmp_path) as found:
        consumers = [await found.start_consumer(), await found.start_consumer()]
        relay = await found.start_relay()
        await found.outbox.add({"books": 100, "members": 100})
        await found.wait_until_applied(200)

        for consumer in consumers:
            assert 0 == await consumer.stop()
        assert 0 == await relay.stop()
        assert_once(await found.applied_rows(), {"books": 100, "members": 100})
        handled = [stopped_line(consumer.stderr)["handled"] for consumer in consumers]
        assert 200 == sum(handled)
        assert all(count > 0 for count in handled), handled
