"""Transport factories for the relay process that the CLI tests start.

``file_transport`` appends the id of each message it is sent to the file named by
``RELAY_TEST_OUTPUT``, one per line, after sleeping ``RELAY_TEST_DELAY`` seconds: the test
reads what was delivered, and has time to signal or kill the process in the middle.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from messagebus import AsyncAbstractEventstreamTransport


class FileTransport(AsyncAbstractEventstreamTransport):
    def __init__(self, path: str, delay: float) -> None:
        self.path = path
        self.delay = delay

    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        await asyncio.sleep(self.delay)
        with open(self.path, "a", encoding="utf-8") as output:
            output.write(f"{message['id']}\n")


def file_transport() -> FileTransport:
    return FileTransport(
        os.environ["RELAY_TEST_OUTPUT"], float(os.environ.get("RELAY_TEST_DELAY", "0"))
    )


def not_a_transport() -> object:
    return object()


class BrokenTransport(AsyncAbstractEventstreamTransport):
    async def send_message_serialized(self, message: Mapping[str, Any]) -> None:
        raise ConnectionError("broker down")


def broken_transport() -> BrokenTransport:
    return BrokenTransport()
