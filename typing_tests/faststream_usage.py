"""The FastStream adapter as a user writes it, under mypy --strict: send, subscribe, dead letters.

Not generated: the adapter is async only. It runs on FastStream's in-memory Redis broker.
"""

from typing import Any

from faststream.redis import RedisBroker, TestRedisBroker

from messagebus import (
    AsyncAbstractUnitOfWork,
    AsyncMessageBus,
    AsyncUnitOfWorkTransaction,
    Event,
    MessageSerializer,
    Metadata,
)
from messagebus.adapters.faststream import (
    FastStreamDeadLetters,
    FastStreamTransport,
    Subscription,
    subscribe,
)
from messagebus.consumer import AsyncConsumer


class BookRegistered(Event):
    id: str
    title: str
    metadata: Metadata = Metadata(name="book_registered", schema_version=1, published=True)


class Catalogue(AsyncAbstractUnitOfWork[Any, Any, Any]):
    def __init__(self, titles: dict[str, str]) -> None:
        self.titles = titles

    async def commit(self) -> None:
        pass

    async def rollback(self) -> None:
        pass


async def add_title(
    event: BookRegistered, transaction: AsyncUnitOfWorkTransaction[Catalogue]
) -> None:
    transaction.uow.titles[event.id] = event.title


async def main() -> tuple[dict[str, str], int]:
    """Send two books through the in-memory broker; return the titles and the acks."""
    broker = RedisBroker("redis://127.0.0.1:6379")
    titles: dict[str, str] = {}
    bus: AsyncMessageBus[Catalogue] = AsyncMessageBus()
    bus.add_listener(BookRegistered, add_title)
    consumer: AsyncConsumer[Catalogue] = AsyncConsumer(
        bus,
        lambda: Catalogue(titles),
        name="catalogue",
        dead_letters=FastStreamDeadLetters(broker, "catalogue.dead"),
    )
    subscription: Subscription = subscribe(broker, consumer, source="books", retry_delay=0.5)
    transport = FastStreamTransport(broker, destination="books", routes={"other": "elsewhere"})
    serializer = MessageSerializer()
    async with TestRedisBroker(broker, connect_only=False):
        for event in [BookRegistered(id="1", title="Dune"), BookRegistered(id="2", title="Emma")]:
            await transport.send_envelope(serializer.serialize_message(event), stream="books")
    return titles, subscription.acknowledged
