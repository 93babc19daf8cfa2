"""The life cycle of a unit-of-work transaction."""

import enum


class TransactionError(RuntimeError):
    """A transaction was used out of order (closed twice, never finished, ...)."""


class TransactionStatus(enum.Enum):
    """Where a transaction stands in its life cycle."""

    running = "running"
    """Opened and neither committed nor rolled back yet."""
    rolledback = "rolledback"
    """Rolled back: nothing it wrote is kept, nothing is published."""
    committed = "committed"
    """Committed: final, its published messages go to the event stream on close."""
    closed = "closed"
    """Finished: the ``async with`` block is over, or ``close()`` was called."""
    streaming = "streaming"
    """Detached from its ``with`` block, for a streaming response: call ``close()``."""
