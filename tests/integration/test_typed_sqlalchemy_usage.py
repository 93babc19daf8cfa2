"""The typed usage file of the SQLAlchemy adapter runs, as well as type-checks."""

import sqlite3
from pathlib import Path

from typing_tests import sqlalchemy_usage


def test_the_sqlalchemy_usage_runs(tmp_path: Path) -> None:
    database = tmp_path / "typed.sqlite"
    assert 2 == sqlalchemy_usage.main(str(database))  # one row delivered, one message sent
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT id FROM typed_books ORDER BY id").fetchall()
        streams = connection.execute("SELECT DISTINCT stream FROM typed_outbox").fetchall()
    assert [("1",), ("2",)] == rows
    assert [("books",)] == streams
