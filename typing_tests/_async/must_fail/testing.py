"""Mistakes in using the testing kit that mypy --strict must report, each where marked.

A line whose comment says "error:" and a text must get an error whose message contains
that text, and no other line may get one; ``scripts/check_must_fail.py`` checks it.
"""

from messagebus import AsyncMessageBus
from messagebus.testing import AsyncScenario, assert_handled
from typing_tests._async.testing_usage import AsyncBookRepository, AsyncLibrary
from typing_tests.model import Book, BookRegistered, RegisterBook


async def wrong_model(books: AsyncBookRepository) -> None:
    await books.add(BookRegistered(id="1"))  # error: incompatible type "BookRegistered"


async def a_model_is_not_a_message(uow: AsyncLibrary) -> None:
    scenario = AsyncScenario(AsyncMessageBus[AsyncLibrary](), uow)
    await scenario.when(Book(id="1", title="Dune"))  # error: incompatible type "Book"
    scenario.then(RegisterBook(id="1", title="Dune"))
    assert_handled(uow, BookRegistered(id="1"))  # error: incompatible type "BookRegistered"
