"""messagebus: commands, events, a unit of work and a message bus, async and sync.

Everything public is imported from here; the sub-modules are implementation.
"""

from importlib.metadata import PackageNotFoundError, version

from pydantic import Field

from .domain.model import (
    ENVELOPE_FIELDS,
    Command,
    Event,
    GenericCommand,
    GenericEvent,
    GenericModel,
    Message,
    MessageId,
    Metadata,
    Model,
    TMetadata,
    TransactionError,
    TransactionStatus,
)
from .ports.observability import AbstractMetricsStore, SinkholeMetricsStore
from .service._async.dependency import AsyncDependency
from .service._async.eventstream import (
    AsyncAbstractEventstreamTransport,
    AsyncEventstreamPublisher,
    AsyncSinkholeEventstreamTransport,
)
from .service._async.registry import AsyncMessageBus, async_listen
from .service._async.repository import (
    AsyncAbstractMessageStoreRepository,
    AsyncAbstractRepository,
    AsyncSinkholeMessageStoreRepository,
)
from .service._async.unit_of_work import (
    AsyncAbstractUnitOfWork,
    AsyncUnitOfWorkTransaction,
    TAsyncMessageStore,
)
from .service._sync.dependency import SyncDependency
from .service._sync.eventstream import (
    SyncAbstractEventstreamTransport,
    SyncEventstreamPublisher,
    SyncSinkholeEventstreamTransport,
)
from .service._sync.registry import SyncMessageBus, sync_listen
from .service._sync.repository import (
    SyncAbstractMessageStoreRepository,
    SyncAbstractRepository,
    SyncSinkholeMessageStoreRepository,
)
from .service._sync.unit_of_work import (
    SyncAbstractUnitOfWork,
    SyncUnitOfWorkTransaction,
    TSyncMessageStore,
)
from .service.errors import ConfigurationError, MissingDependencyError
from .service.eventstream import AbstractMessageSerializer, MessageSerializer
from .service.messages import DecodeError, MessageRegistry

try:
    __version__ = version("messagebus")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "ENVELOPE_FIELDS",
    "AbstractMessageSerializer",
    "AbstractMetricsStore",
    "AsyncAbstractEventstreamTransport",
    "AsyncAbstractMessageStoreRepository",
    "AsyncAbstractRepository",
    "AsyncAbstractUnitOfWork",
    "AsyncDependency",
    "AsyncEventstreamPublisher",
    "AsyncMessageBus",
    "AsyncSinkholeEventstreamTransport",
    "AsyncSinkholeMessageStoreRepository",
    "AsyncUnitOfWorkTransaction",
    "Command",
    "ConfigurationError",
    "DecodeError",
    "Event",
    "Field",
    "GenericCommand",
    "GenericEvent",
    "GenericModel",
    "Message",
    "MessageId",
    "MessageRegistry",
    "MessageSerializer",
    "Metadata",
    "MissingDependencyError",
    "Model",
    "SinkholeMetricsStore",
    "SyncAbstractEventstreamTransport",
    "SyncAbstractMessageStoreRepository",
    "SyncAbstractRepository",
    "SyncAbstractUnitOfWork",
    "SyncDependency",
    "SyncEventstreamPublisher",
    "SyncMessageBus",
    "SyncSinkholeEventstreamTransport",
    "SyncSinkholeMessageStoreRepository",
    "SyncUnitOfWorkTransaction",
    "TAsyncMessageStore",
    "TMetadata",
    "TSyncMessageStore",
    "TransactionError",
    "TransactionStatus",
    "__version__",
    "async_listen",
    "sync_listen",
]
