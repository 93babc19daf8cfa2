"""The delivery side of the transactional outbox: the relay, its backoff, its command line.

- :mod:`.relay`: :class:`AsyncOutboxRelay`, which sends the outbox rows through a transport;
- :mod:`.backoff`: :class:`Backoff`, the waits between the attempts of a failing row;
- :mod:`.reasons`: how an exception becomes the one-line reason a row keeps;
- :mod:`.cli`: the ``messagebus-relay`` command (also ``python -m messagebus.relay``).
"""

from messagebus.adapters.sqlalchemy.outbox.backoff import Backoff
from messagebus.adapters.sqlalchemy.outbox.relay import AsyncOutboxRelay

__all__ = ["AsyncOutboxRelay", "Backoff"]
