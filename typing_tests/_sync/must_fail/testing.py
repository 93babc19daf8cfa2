# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""Mistakes in using the testing kit that mypy --strict must report, each where marked.

A line whose comment says "error:" and a text must get an error whose message contains
that text, and no other line may get one; ``scripts/check_must_fail.py`` checks it.
"""

from messagebus import SyncMessageBus
from messagebus.testing import SyncScenario, assert_handled
from typing_tests._sync.testing_usage import SyncBookRepository, SyncLibrary
from typing_tests.model import Book, BookRegistered, RegisterBook


def wrong_model(books: SyncBookRepository) -> None:
    books.add(BookRegistered(id="1"))  # error: incompatible type "BookRegistered"


def a_model_is_not_a_message(uow: SyncLibrary) -> None:
    scenario = SyncScenario(SyncMessageBus[SyncLibrary](), uow)
    scenario.when(Book(id="1", title="Dune"))  # error: incompatible type "Book"
    scenario.then(RegisterBook(id="1", title="Dune"))
    assert_handled(uow, BookRegistered(id="1"))  # error: incompatible type "BookRegistered"
