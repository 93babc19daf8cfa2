"""Transport factories for the command-line tests of the operator side (secrets, metrics).

``leaky_transport`` fails when the command closes it, with an error that quotes the
database URL from the environment: the command must print that traceback without the
password. ``idle_transport`` takes every message and does nothing with it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from messagebus import AsyncAbstractEventstreamTransport


class IdleTransport(AsyncAbstractEventstreamTransport):
    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        pass


class LeakyTransport(IdleTransport):
    async def aclose(self) -> None:
        raise RuntimeError(f"cannot flush to {os.environ['MESSAGEBUS_RELAY_DB']}")


def idle_transport() -> IdleTransport:
    return IdleTransport()


def leaky_transport() -> LeakyTransport:
    return LeakyTransport()
