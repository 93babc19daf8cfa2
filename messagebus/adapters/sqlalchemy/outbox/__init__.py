"""The delivery side of the transactional outbox: the relay, its backoff, its command line.

- ``relay``: :class:`~messagebus.adapters.sqlalchemy.AsyncOutboxRelay`, which sends the
  outbox rows through a transport;
- ``backoff``: :class:`~messagebus.adapters.sqlalchemy.Backoff`, the waits between the
  attempts of a failing row;
- ``delivery``: one stream's pass of the relay, and the lease that fences it (``lease``);
- ``statements``: the SQL of the relay, with the database's clock;
- ``wakeup``: how a commit wakes the relay, in the process and through ``LISTEN``;
- ``reasons``: how an exception becomes the one-line reason a row keeps;
- ``cli``: the ``messagebus-relay`` command (also ``python -m messagebus.relay``).
"""

from messagebus.adapters.sqlalchemy.outbox.backoff import Backoff
from messagebus.adapters.sqlalchemy.outbox.relay import AsyncOutboxRelay

__all__ = ["AsyncOutboxRelay", "Backoff"]
