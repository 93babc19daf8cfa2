r"""The consumer as a process: ``messagebus-consume``, ``python -m messagebus.adapters.faststream``.

It subscribes an :class:`~messagebus.consumer.AsyncConsumer` to a broker with
:func:`~messagebus.adapters.faststream.subscribe` and handles messages until SIGTERM or
SIGINT; it then finishes the message being handled and exits with status 0::

    MESSAGEBUS_BROKER_URL=redis://127.0.0.1:6379 \
        messagebus-consume --consumer myapp.consume:make_consumer --source books

``--consumer`` names a zero-argument callable, ``module:attribute``, that returns the
consumer (or an awaitable of it); the current directory is importable. The broker's URL
comes from ``--broker`` or, to keep a password out of the process list, from
``MESSAGEBUS_BROKER_URL``; no message shows the password. With ``--dead-letters``, what
the consumer gives up on is published to that destination on the broker
(:class:`~messagebus.adapters.faststream.FastStreamDeadLetters`) instead of the
consumer's own dead letters.

It runs on uvloop when that is installed (``messagebus[uvloop]``; ``--loop asyncio`` to
not use it).

Exit status: 0 when stopped by a signal; 1 on a second signal, which stops without
finishing the message (it is delivered again); 2 when the configuration is wrong or the
broker cannot be reached, with one line on stderr that says why.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from messagebus._commands import (
    add_log_level,
    add_loop,
    call_factory,
    event_loop_factory,
    loop_name,
    stop_on_signals,
)
from messagebus.service.errors import ConfigurationError

from .config import (
    ENV_BROKER_URL,
    ENV_CONNECT_TIMEOUT,
    ENV_DESTINATION,
    broker_from_url,
    connect,
    describe_error,
    hide_password,
)
from .dead_letters import FastStreamDeadLetters
from .subscriber import subscribe
from .transport import DEFAULT_DESTINATION

__all__ = ["main"]

PROG = "messagebus-consume"

logger = logging.getLogger("messagebus.consumer")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the consumer with the command-line arguments ``argv``; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        with asyncio.Runner(loop_factory=event_loop_factory(args.loop, PROG)) as runner:
            return runner.run(_serve(args))
    except ConfigurationError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Handle the messages of a broker with a messagebus consumer."
    )
    parser.add_argument(
        "--consumer",
        required=True,
        metavar="MODULE:FACTORY",
        help="zero-argument callable returning an AsyncConsumer",
    )
    parser.add_argument(
        "--broker",
        default=os.environ.get(ENV_BROKER_URL),
        required=ENV_BROKER_URL not in os.environ,
        metavar="URL",
        help=f"the broker: redis://, amqp://, nats:// or kafka:// (default: ${ENV_BROKER_URL})",
    )
    parser.add_argument(
        "--source",
        default=os.environ.get(ENV_DESTINATION) or DEFAULT_DESTINATION,
        help="the stream, queue, subject or topic to read (%(default)s)",
    )
    parser.add_argument("--group", help="the group sharing the work (the consumer's name)")
    parser.add_argument("--member", help="this process in its group (host-pid)")
    parser.add_argument(
        "--dead-letters", metavar="DESTINATION", help="publish the dead letters there"
    )
    parser.add_argument("--exchange", help="RabbitMQ: the exchange the messages come through")
    parser.add_argument(
        "--jetstream", default="messagebus", help="NATS: the stream to create (%(default)s)"
    )
    parser.add_argument(
        "--redeliver-after",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="an unacknowledged message goes to another member after this (%(default)s)",
    )
    parser.add_argument(
        "--retry-delay",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="wait before giving back a message to retry later (%(default)s)",
    )
    parser.add_argument(
        "--progress-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds between progress lines; 0: no progress lines (%(default)s)",
    )
    add_loop(parser)
    add_log_level(parser)
    return parser


def _seconds(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {value}")
    return number


async def _serve(args: argparse.Namespace) -> int:
    url: str = args.broker
    shown = hide_password(url)
    consumer = await _load_consumer(args.consumer)
    # FastStream logs each message at INFO: that is our progress lines' job.
    broker = broker_from_url(url, log_level=logging.DEBUG)
    await connect(broker, url, _timeout())
    if args.dead_letters:
        jetstream = f"{args.jetstream}-dead" if args.jetstream else None
        consumer.dead_letters = FastStreamDeadLetters(
            broker, args.dead_letters, jetstream=jetstream if _is_nats(url) else None
        )
    stopping = asyncio.Event()
    signals = _stop_on_signals(stopping)
    try:
        subscription = subscribe(
            broker,
            consumer,
            source=args.source,
            group=args.group,
            member=args.member,
            redeliver_after=args.redeliver_after,
            retry_delay=args.retry_delay,
            exchange=args.exchange,
            jetstream=args.jetstream,
        )
        await _start(broker, url, subscription.source)
        logger.info(
            "consumer %s started: %s on %s, group %s, member %s, %s event loop",
            consumer.name,
            subscription.source,
            shown,
            subscription.group,
            subscription.member,
            loop_name(),
        )
        await _wait(stopping, consumer, args.progress_interval)
        # FastStream waits for the message being handled, then closes the connection.
        await broker.stop()
    except asyncio.CancelledError:
        if len(signals) < 2:
            raise
        # The message being handled is cancelled: rolled back, never acknowledged.
        logger.warning("consumer: stopped by a second signal; the message is delivered again")
        return 1
    except BaseException:
        await _stop_quietly(broker)
        raise
    logger.info("consumer %s stopped: %s", consumer.name, _progress(consumer))
    return 0


async def _start(broker: Any, url: str, source: str) -> None:
    try:
        await broker.start()
    except Exception as exc:
        raise ConfigurationError(
            f"cannot subscribe to {source} on {hide_password(url)}: "
            f"{type(exc).__name__}{describe_error(exc, url)}"
        ) from None


def _is_nats(url: str) -> bool:
    return url.partition(":")[0] in {"nats", "tls"}


def _timeout() -> float:
    raw = os.environ.get(ENV_CONNECT_TIMEOUT, "10")
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(
            f"{ENV_CONNECT_TIMEOUT}={raw!r}: write a number of seconds"
        ) from None


async def _stop_quietly(broker: Any) -> None:
    try:
        await broker.stop()
    except Exception as exc:
        logger.warning("consumer: the broker did not stop cleanly: %s", type(exc).__name__)


async def _wait(stopping: asyncio.Event, consumer: Any, interval: float) -> None:
    while not stopping.is_set():
        try:
            async with asyncio.timeout(interval if interval > 0 else None):
                await stopping.wait()
        except TimeoutError:
            logger.info("consumer %s: %s", consumer.name, _progress(consumer))


def _progress(consumer: Any) -> str:
    stats = consumer.stats
    return (
        f"{stats.received} received, {stats.handled} handled, {stats.duplicates} duplicates, "
        f"{stats.dead_lettered} dead-lettered, {stats.retry_later} given back"
    )


async def _load_consumer(spec: str) -> Any:
    from messagebus.service.consumer import AsyncConsumer

    consumer = await call_factory(
        spec, "--consumer", "myapp.consume:make_consumer", ConfigurationError
    )
    if not isinstance(consumer, AsyncConsumer):
        raise ConfigurationError(
            f"{spec} returned {type(consumer).__name__}, not an AsyncConsumer: return one"
        )
    return consumer


def _stop_on_signals(stopping: asyncio.Event) -> list[int]:
    """Stop after the message being handled on the first signal, at once on the second."""
    return stop_on_signals(
        stopping.set, logger, "consumer: %s received, stopping after the message being handled"
    )


if __name__ == "__main__":
    sys.exit(main())
