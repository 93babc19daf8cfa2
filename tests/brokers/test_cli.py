"""``messagebus-consume`` and the configuration from the environment: wrong settings are one
line on stderr and exit status 2, and no message ever shows a password."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from messagebus import ConfigurationError
from messagebus.adapters.faststream import FastStreamTransport, transport_from_env
from messagebus.adapters.faststream.config import hide_password, routes_from_text
from tests.brokers.processes import ROOT

SECRET = "s3cr3t-pw"
CLOSED_PORT_URL = f"amqp://reader:{SECRET}@127.0.0.1:1/"


async def run(*command: str, **env: str) -> tuple[int, list[str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert b"" == out
    assert process.returncode is not None
    return process.returncode, err.decode().splitlines()


CONSUME = ("-m", "messagebus.adapters.faststream")
FACTORY = "tests.brokers.consumer_app:make_consumer"
DB_ENV = {"BROKER_TEST_DB": "sqlite+aiosqlite:///:memory:", "BROKER_TEST_PREFIX": "cli_"}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            ["--broker", CLOSED_PORT_URL],
            "cannot reach the broker amqp://reader:***@127.0.0.1:1/",
        ),
        (["--broker", f"mqtt://u:{SECRET}@127.0.0.1/"], "has no known scheme: start it with"),
        (["--broker", "redis://127.0.0.1:1", "--consumer", "no_such_module:f"], "cannot load"),
        (
            ["--broker", "redis://127.0.0.1:1", "--consumer", "tests.brokers.support:envelope"],
            "the consumer factory tests.brokers.support:envelope failed: TypeError",
        ),
        (
            ["--broker", "redis://127.0.0.1:1", "--consumer", "tests.brokers.support:WAIT"],
            "is not callable: name a factory",
        ),
    ],
)
async def test_a_wrong_setting_is_one_line_and_status_2(options: list[str], expected: str) -> None:
    if "--consumer" not in options:
        options = [*options, "--consumer", FACTORY]
    status, lines = await run(*CONSUME, *options, MESSAGEBUS_BROKER_CONNECT_TIMEOUT="5", **DB_ENV)

    assert 2 == status
    assert 1 == len([line for line in lines if line.startswith("messagebus-consume:")]), lines
    assert expected in lines[-1]
    assert not any(SECRET in line for line in lines)


async def test_the_broker_url_comes_from_the_environment_without_showing_the_password() -> None:
    status, lines = await run(
        *CONSUME, "--consumer", FACTORY, MESSAGEBUS_BROKER_URL=CLOSED_PORT_URL, **DB_ENV
    )

    assert 2 == status
    assert "cannot reach the broker amqp://reader:***@127.0.0.1:1/" in lines[-1]
    assert not any(SECRET in line for line in lines)


async def test_the_relay_reports_an_unreachable_broker_without_the_password(tmp_path: Path) -> None:
    status, lines = await run(
        "-m", "messagebus.relay", "--db", f"sqlite:///{tmp_path / 'none.db'}",
        "--transport", "messagebus.adapters.faststream:transport_from_env",
        MESSAGEBUS_BROKER_URL=CLOSED_PORT_URL, MESSAGEBUS_BROKER_CONNECT_TIMEOUT="5",
    )  # fmt: skip

    assert 2 == status
    assert "cannot reach the broker amqp://reader:***@127.0.0.1:1/" in lines[-1]
    assert not any(SECRET in line for line in lines)


async def test_transport_from_env_names_what_is_missing_or_wrong() -> None:
    with pytest.raises(ConfigurationError, match="MESSAGEBUS_BROKER_URL is not set"):
        await transport_from_env({})
    with pytest.raises(ConfigurationError, match="is not type=destination"):
        await transport_from_env({"MESSAGEBUS_BROKER_URL": "redis://x", "MESSAGEBUS_ROUTES": "a"})
    with pytest.raises(ConfigurationError, match="write a number of seconds"):
        await transport_from_env(
            {"MESSAGEBUS_BROKER_URL": "redis://x", "MESSAGEBUS_BROKER_CONNECT_TIMEOUT": "soon"}
        )


def test_helpers_hide_passwords_and_read_routes() -> None:
    assert "amqp://guest:***@host:5672/vh" == hide_password("amqp://guest:pw@host:5672/vh")
    assert "redis://127.0.0.1:6379" == hide_password("redis://127.0.0.1:6379")
    assert {"book_registered": "books", "member_joined_v2": "members"} == routes_from_text(
        " book_registered = books, member_joined_v2=members,"
    )


def test_the_transport_refuses_what_is_not_a_faststream_broker() -> None:
    with pytest.raises(ConfigurationError, match="is not a FastStream broker this adapter knows"):
        FastStreamTransport(object())


def test_an_option_of_another_broker_is_refused() -> None:
    from faststream.redis import RedisBroker

    with pytest.raises(ConfigurationError, match="RabbitMQ only"):
        FastStreamTransport(RedisBroker(), exchange="events")


@pytest.mark.parametrize("loop", ["asyncio", "uvloop", "auto without uvloop"])
async def test_the_consumer_runs_on_either_event_loop(loop: str, tmp_path: Path) -> None:
    from tests.brokers.processes import scenario

    options: tuple[str, ...] = ("--loop", loop)
    extra: dict[str, str] = {}
    if loop == "auto without uvloop":
        options, extra, loop = (), {"PYTHONPATH": str(without_uvloop(tmp_path))}, "asyncio"
    async with scenario("redis", tmp_path) as found:
        await found.outbox.add({"books": 3})
        relay = await found.start_relay()
        consumer = await found.start_consumer(*options, "--progress-interval", "0", **extra)
        await found.wait_until_applied(3)
        assert 0 == await consumer.stop()
        assert 0 == await relay.stop()
        assert f"{loop} event loop" in consumer.stderr


def without_uvloop(tmp_path: Path) -> Path:
    """Return a folder that, first on ``PYTHONPATH``, makes ``import uvloop`` fail."""
    folder = tmp_path / "no-uvloop"
    (folder / "uvloop").mkdir(parents=True)
    (folder / "uvloop" / "__init__.py").write_text("raise ImportError('no uvloop here')\n")
    return folder


def test_asking_for_uvloop_without_it_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from messagebus._commands import event_loop_factory

    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    assert event_loop_factory("auto", "prog") is None  # asyncio's loop
    with pytest.raises(SystemExit) as exited:
        event_loop_factory("uvloop", "prog")
    assert 2 == exited.value.code
    assert "prog: --loop uvloop: pip install 'messagebus[uvloop]'" in capsys.readouterr().err
