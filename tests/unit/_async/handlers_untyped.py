"""A handler whose first parameter has no message annotation: scanning it fails."""

from typing import Any

from messagebus import async_listen


@async_listen
async def untyped(command: Any, transaction: Any) -> None:
    pass  # pragma: no cover
