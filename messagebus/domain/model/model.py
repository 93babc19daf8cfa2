"""Domain models: the objects a repository stores, which raise events as they change."""

from typing import TYPE_CHECKING, Any, Generic

from pydantic import BaseModel, Field, InstanceOf

from .message import Message
from .metadata import Metadata, TMetadata

if TYPE_CHECKING:
    MessageList = list[Message[Any]]
else:
    # Keep each message's own class: validating against Message[TMetadata] would
    # rebuild an Event subclass as a bare Message.
    MessageList = list[InstanceOf[Message]]


class GenericModel(BaseModel, Generic[TMetadata]):
    """The base class of domain models.

    ``messages`` holds the events the model raised since it was loaded; the bus
    collects them after each handler. It is left out of dumps and of equality:
    two models are equal when they are of the same class with the same fields.

    >>> from messagebus import Event, Metadata, Model
    >>> class BookRegistered(Event):
    ...     metadata: Metadata = Metadata(name="book_registered", schema_version=1)
    >>> class Book(Model):
    ...     title: str
    >>> book = Book(title="Dune", messages=[BookRegistered()])
    >>> book.model_dump(), book == Book(title="Dune")
    ({'title': 'Dune'}, True)
    """

    messages: MessageList = Field(default_factory=list, exclude=True, repr=False)
    """The events raised by this model and not yet dispatched by the bus."""

    def __repr__(self) -> str:
        fields = [f"{key}={value!r}" for key, value in self.__dict__.items() if key != "messages"]
        if self.messages:
            fields.append(f"messages={self.messages!r}")
        return f"<{type(self).__name__} {' '.join(fields)}>"

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented if not isinstance(other, GenericModel) else False
        theirs = other.__dict__
        return all(
            value == theirs.get(key) for key, value in self.__dict__.items() if key != "messages"
        )

    __hash__ = None  # type: ignore[assignment]


Model = GenericModel[Metadata]
Model.__doc__ = """The base class of domain models whose events use the default :class:`Metadata`.

Append the events a change causes to ``messages``; the repository that stores or
loads the model puts it in ``seen`` and the bus dispatches them.
"""
