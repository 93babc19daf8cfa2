"""Brokers and transports made from a URL and environment variables, for the command lines.

``messagebus-relay --transport messagebus.adapters.faststream:transport_from_env`` sends the
outbox to the broker that ``MESSAGEBUS_BROKER_URL`` names; ``messagebus-consume`` reads the
same variables. The URL's scheme chooses the broker:

========================  ============================================  ===============
scheme                    example                                       extra
========================  ============================================  ===============
``redis``, ``rediss``     ``redis://127.0.0.1:6379/0``                  ``redis``
``amqp``, ``amqps``       ``amqp://guest:guest@127.0.0.1:5672/``        ``rabbit``
``nats``, ``tls``         ``nats://127.0.0.1:4222``                     ``nats``
``kafka``                 ``kafka://127.0.0.1:9092,127.0.0.1:9093``     ``kafka``
========================  ============================================  ===============
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from messagebus.service.errors import ConfigurationError

from .transport import DEFAULT_DESTINATION, FastStreamTransport

__all__ = [
    "ENV_BROKER_URL",
    "ENV_CONNECT_TIMEOUT",
    "ENV_DESTINATION",
    "ENV_EXCHANGE",
    "ENV_JETSTREAM",
    "ENV_ROUTES",
    "broker_from_url",
    "connect",
    "describe_error",
    "hide_password",
    "routes_from_text",
    "transport_from_env",
]

ENV_BROKER_URL = "MESSAGEBUS_BROKER_URL"
"""The broker's URL; its scheme chooses the broker."""
ENV_DESTINATION = "MESSAGEBUS_DESTINATION"
"""The default destination (stream, queue, subject or topic); ``messagebus`` if unset."""
ENV_ROUTES = "MESSAGEBUS_ROUTES"
"""Destinations per message type: ``book_registered=books,member_joined_v2=members``."""
ENV_EXCHANGE = "MESSAGEBUS_RABBIT_EXCHANGE"
"""RabbitMQ only: publish to this exchange, with the destination as routing key."""
ENV_JETSTREAM = "MESSAGEBUS_NATS_JETSTREAM"
"""NATS only: the JetStream stream to create when none holds the subject."""
ENV_CONNECT_TIMEOUT = "MESSAGEBUS_BROKER_CONNECT_TIMEOUT"
"""Seconds to wait for the broker at start (10 if unset)."""

_SCHEMES = {
    "redis": "redis",
    "rediss": "redis",
    "amqp": "rabbit",
    "amqps": "rabbit",
    "nats": "nats",
    "tls": "nats",
    "kafka": "kafka",
}


def hide_password(url: str) -> str:
    """Return ``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def broker_from_url(url: str, **options: Any) -> Any:
    """Return an unconnected FastStream broker for ``url``; ``options`` go to its class.

    :raises ConfigurationError: when the scheme names no supported broker or the
        broker's extra is not installed.
    """
    scheme = urlsplit(url).scheme
    kind = _SCHEMES.get(scheme)
    if kind is None:
        known = ", ".join(f"{name}://" for name in _SCHEMES)
        raise ConfigurationError(
            f"the broker URL {hide_password(url)!r} has no known scheme: start it with "
            f"one of {known}"
        )
    try:
        if kind == "redis":
            from faststream.redis import RedisBroker

            return RedisBroker(url, **options)
        if kind == "rabbit":
            from faststream.rabbit import RabbitBroker

            return RabbitBroker(url, **options)
        if kind == "nats":
            from faststream.nats import NatsBroker

            return NatsBroker(url, **options)
        from faststream.kafka import KafkaBroker

        servers = urlsplit(url).netloc.rpartition("@")[2].split(",")
        return KafkaBroker(servers, **options)
    except ImportError as exc:
        raise ConfigurationError(
            f"{exc}: install the broker's extra, pip install 'messagebus[{kind}]'"
        ) from None


async def connect(broker: Any, url: str, timeout: float) -> None:
    """Connect ``broker``; raise :class:`ConfigurationError` naming ``url`` without password.

    The driver's own error may quote the URL with its password: it is not passed on.
    """
    shown = hide_password(url)
    try:
        async with asyncio.timeout(timeout):
            await broker.connect()
            if not await broker.ping(timeout):
                raise ConnectionError("no answer to a ping")
    except TimeoutError:
        await _stop_quietly(broker)
        raise ConfigurationError(
            f"cannot reach the broker {shown}: no answer in {timeout:g}s"
        ) from None
    except Exception as exc:
        await _stop_quietly(broker)
        raise ConfigurationError(
            f"cannot reach the broker {shown}: {type(exc).__name__}"
            f"{describe_error(exc, url)}: check that it runs and that the URL is right"
        ) from None


def describe_error(exc: BaseException, url: str) -> str:
    """Return `` (first line of exc)`` with the password of ``url`` masked, or ``""``."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    password = urlsplit(url).password
    if password:
        text = text.replace(password, "***")
    return f" ({text})" if text else ""


async def _stop_quietly(broker: Any) -> None:
    # The connect error is the one to report, not a second one on the way out.
    with contextlib.suppress(Exception):
        await broker.stop()


def routes_from_text(text: str) -> dict[str, str]:
    """Parse ``type=destination,type=destination`` into a mapping.

    :raises ConfigurationError: on an entry that is not ``type=destination``.
    """
    routes: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        message_type, sep, destination = (part.strip() for part in entry.partition("="))
        if not sep or not message_type or not destination:
            raise ConfigurationError(
                f"{ENV_ROUTES}: {entry!r} is not type=destination, for example "
                f"book_registered=books"
            )
        routes[message_type] = destination
    return routes


def _timeout(environ: Mapping[str, str]) -> float:
    raw = environ.get(ENV_CONNECT_TIMEOUT, "10")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigurationError(f"{ENV_CONNECT_TIMEOUT}={raw!r}: write a number of seconds")
    return value


async def transport_from_env(environ: Mapping[str, str] | None = None) -> FastStreamTransport:
    """Return a connected :class:`FastStreamTransport` configured by environment variables.

    Reads ``MESSAGEBUS_BROKER_URL`` (required), ``MESSAGEBUS_DESTINATION``,
    ``MESSAGEBUS_ROUTES`` (``type=destination,...``), ``MESSAGEBUS_RABBIT_EXCHANGE``,
    ``MESSAGEBUS_NATS_JETSTREAM`` and ``MESSAGEBUS_BROKER_CONNECT_TIMEOUT`` (seconds,
    10 by default); a variable of another broker than the URL's is ignored. The
    transport stops its broker when closed. Made for ``messagebus-relay --transport
    messagebus.adapters.faststream:transport_from_env``.

    :raises ConfigurationError: when a variable is missing or wrong, or the broker cannot
        be reached; the message never shows the password.
    """
    environ = os.environ if environ is None else environ
    url = environ.get(ENV_BROKER_URL)
    if not url:
        raise ConfigurationError(
            f"{ENV_BROKER_URL} is not set: set it to the broker's URL, for example "
            f"redis://127.0.0.1:6379"
        )
    timeout = _timeout(environ)
    routes = routes_from_text(environ.get(ENV_ROUTES, ""))
    broker = broker_from_url(url)
    kind = _SCHEMES[urlsplit(url).scheme]
    # A variable meant for another broker is ignored: one environment may serve several.
    transport = FastStreamTransport(
        broker,
        destination=environ.get(ENV_DESTINATION) or DEFAULT_DESTINATION,
        routes=routes,
        exchange=(environ.get(ENV_EXCHANGE) or None) if kind == "rabbit" else None,
        jetstream=(environ.get(ENV_JETSTREAM) or None) if kind == "nats" else None,
        close_broker=True,
    )
    await connect(broker, url, timeout)
    return transport
