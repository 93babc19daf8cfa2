import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from messagebus import AsyncMessageBus
from messagebus.cli import load_messages, main
from messagebus.schemas import message_schema
from messagebus.service.errors import ConfigurationError
from tests.schemas.messages import BookRegistered, RegisterBook

MODULE = "tests.schemas.messages"

bus: AsyncMessageBus[Any] = AsyncMessageBus()


async def register_book(command: RegisterBook) -> None: ...


bus.add_listener(RegisterBook, register_book)


def test_a_module_gives_the_message_classes_it_defines() -> None:
    registry = load_messages(MODULE)

    assert 3 == len(registry)
    assert BookRegistered is registry.get("book_registered", 1)


def test_a_bus_gives_the_messages_it_has_handlers_for() -> None:
    registry = load_messages(f"{__name__}:bus")

    assert RegisterBook is registry.get("register_book", 1)
    # BookRegistered is published but no handler of this bus reads it.
    assert 1 == len(registry)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("tests.schemas.nowhere", "cannot load tests.schemas.nowhere"),
        (f"{__name__}:MODULE", "is a str: name a bus"),
        ("json", "holds no message classes"),
    ],
)
def test_a_wrong_target_says_what_to_name(target: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        load_messages(target)


def test_stdout_holds_the_schemas_and_the_asyncapi_document(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert 0 == main(["schema", MODULE, "--consumes", f"{__name__}:bus", "--title", "club"])
    document = json.loads(capsys.readouterr().out)

    assert ["book_lent_v1", "book_registered_v1", "register_book_v1"] == sorted(document["schemas"])
    assert message_schema(BookRegistered) == document["schemas"]["book_registered_v1"]
    assert "club" == document["asyncapi"]["info"]["title"]
    assert {"send_messagebus", "receive_messagebus"} == set(document["asyncapi"]["operations"])


def test_out_writes_one_file_per_message_and_the_asyncapi_document(tmp_path: Path) -> None:
    assert 0 == main(["schema", MODULE, "--out", str(tmp_path)])

    assert [
        "asyncapi.json",
        "book_lent_v1.json",
        "book_registered_v1.json",
        "register_book_v1.json",
    ] == sorted(path.name for path in tmp_path.iterdir())


def test_check_fails_with_one_line_per_changed_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 0 == main(["schema", MODULE, "--check", str(tmp_path), "--update"])
    assert f"new: {tmp_path / 'book_registered_v1.json'}\n" in capsys.readouterr().out
    path = tmp_path / "book_registered_v1.json"
    released = json.loads(path.read_text())
    released["properties"]["isbn"] = {"type": "string"}
    path.write_text(json.dumps(released))

    assert 1 == main(["schema", MODULE, "--check", str(tmp_path)])
    errors = capsys.readouterr().err.splitlines()
    assert 1 == len(errors)
    assert errors[0].startswith("book_registered version 1: its schema differs from ")
    assert "bump schema_version" in errors[0]


def test_update_needs_check(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["schema", MODULE, "--update"])

    assert 2 == exit_.value.code
    assert "give it with --check SNAPSHOT" in capsys.readouterr().err


def test_a_target_that_cannot_load_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == main(["schema", "tests.schemas.nowhere"])
    assert capsys.readouterr().err.startswith("messagebus schema: cannot load")


def test_python_dash_m_messagebus_runs_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "messagebus", "schema", MODULE],
        capture_output=True,
        text=True,
        check=False,
    )

    assert 0 == result.returncode, result.stderr
    assert "book_registered_v1" in json.loads(result.stdout)["schemas"]


def test_a_route_needs_a_destination(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["schema", MODULE, "--route", "book_registered"])

    assert "--route takes TYPE=DESTINATION" in capsys.readouterr().err


def test_a_route_names_the_channel(capsys: pytest.CaptureFixture[str]) -> None:
    assert 0 == main(["schema", MODULE, "--route", "book_registered=books"])

    assert ["books"] == list(json.loads(capsys.readouterr().out)["asyncapi"]["channels"])


def test_out_and_check_are_one_at_a_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["schema", MODULE, "--out", str(tmp_path), "--check", str(tmp_path)])

    assert "run one at a time" in capsys.readouterr().err
