# Generated from the _async package by scripts/generate_sync.py: do not edit.
"""Mistakes in reaching a repository that mypy --strict must report, each where marked.

A line whose comment says "error:" and a text must get an error whose message contains
that text, and no other line may get one; ``scripts/check_must_fail.py`` checks it.
"""

from typing_tests._sync.usage import Transaction
from typing_tests.model import Book, BookRegistered, RegisterBook


def misspelt_repository(command: RegisterBook, transaction: Transaction) -> None:
    book = Book(id=command.id, title=command.title)
    transaction.uow.bookz.add(book)  # error: has no attribute "bookz"


def wrong_model(command: RegisterBook, transaction: Transaction) -> None:
    event = BookRegistered(id=command.id)
    transaction.uow.books.add(event)  # error: incompatible type "BookRegistered"


def wrong_result(command: RegisterBook, transaction: Transaction) -> str:
    book = Book(id=command.id, title=command.title)
    transaction.uow.books.add(book)
    return book  # error: Incompatible return value type
