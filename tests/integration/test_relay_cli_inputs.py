"""The command line refuses wrong inputs with one line, and never prints a password."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine

from messagebus.adapters.sqlalchemy import messagebus_tables
from messagebus.adapters.sqlalchemy.outbox.cli import main
from messagebus.adapters.sqlalchemy.outbox.urls import read_url
from tests.integration.relay_support import postgres_or_skip

HERE = Path(__file__).parent
SECRET = "S3cret"


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run the command in this process, expect status 2 and return its one line."""
    try:
        status = main(list(argv))
    except SystemExit as exit:
        status = exit.code  # type: ignore[assignment]
    out, err = capsys.readouterr()
    assert 2 == status, err
    assert "" == out
    [line] = err.splitlines()
    assert line.startswith("messagebus-relay: "), line
    assert SECRET not in err
    return line


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://relay:S3cret/app", "has a port that is not a number (is the host missing?)"),
        ("postgresql://relay:S3cret@db:port/app", "has a port that is not a number"),
        ("postgresql://relay:S3c@ret@db/app", "has an '@' in its user name or password"),
        ("postgresql://relay:S3cret@db:5432@other/app", "has an '@'"),
        ("S3cret", "is not a database URL"),
        ("post gres://relay:S3cret@db/app", "is not a database URL"),
        ("://relay:S3cret@db/app", "is not a database URL"),
    ],
)
def test_a_url_that_cannot_be_read_is_one_line_without_the_password(
    capsys: pytest.CaptureFixture[str], url: str, says: str
) -> None:
    line = refused(capsys, "--db", url, "--transport", "cli_transports:idle_transport")
    assert f"messagebus-relay: --db {says}" in line


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://relay:S3cret@db/app",
        "postgresql://relay:S3c%40ret@db/app",
        "postgresql://relay@db/app?password=S3cret&sslmode=require",
        "postgresql://relay@db/app?sslpassword=S3cret",
        "postgresql://relay@db/app?auth_token=S3cret",
        "sqlite://user:S3cret@/outbox.db",
        "postgresql://relay:S3cret@[::1]:5432/app",
    ],
)
def test_the_shown_url_and_the_secrets_hold_the_password(url: str) -> None:
    database = read_url(url)
    assert "S3c" not in database.shown
    assert "***" in database.shown
    assert any("S3c" in secret for secret in database.secrets)


def test_a_numeric_password_is_a_secret_but_a_port_is_not() -> None:
    assert {"1234"} == read_url("postgresql://relay:1234@db:5432/app").secrets
    assert set() == read_url("postgresql://db:5432/app").secrets


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--poll-interval", "-1"),
        ("--poll-interval", "nan"),
        ("--poll-interval", "inf"),
        ("--poll-interval", "soon"),
        ("--commit-interval", "-0.1"),
        ("--commit-interval", "1e400"),
        ("--progress-interval", "nan"),
        ("--keep-delivered", "-1"),
        ("--keep-delivered", "nan"),
        ("--keep-delivered", "1e9"),
        ("--connect-timeout", "0"),
        ("--send-timeout", "0"),
        ("--send-timeout", "-inf"),
        ("--backoff-base", "0"),
        ("--backoff-cap", "inf"),
        ("--batch-size", "0"),
        ("--batch-size", "1.5"),
    ],
)
def test_a_wrong_option_is_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, option: str, value: str
) -> None:
    line = refused(
        capsys,
        "--db",
        f"sqlite:///{tmp_path / 'outbox.db'}",
        "--transport",
        "cli_transports:idle_transport",
        option,
        value,
    )
    assert line.startswith(f"messagebus-relay: argument {option}: "), line


def run_cli(*options: str, db: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "MESSAGEBUS_RELAY_DB": db,
    }
    return subprocess.run(
        [sys.executable, "-m", "messagebus.relay", *options],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_backoff_cap_must_not_be_below_its_base(tmp_path: Path) -> None:
    done = run_cli(
        "--transport",
        "cli_transports:idle_transport",
        "--backoff-base",
        "10",
        "--backoff-cap",
        "5",
        db=f"sqlite:///{tmp_path / 'outbox.db'}",
    )
    assert 2 == done.returncode
    assert [
        "messagebus-relay: --backoff-cap 5 is below --backoff-base 10: "
        "the longest wait cannot be shorter than the first"
    ] == done.stderr.splitlines()


def test_a_factory_that_exits_is_refused(tmp_path: Path) -> None:
    done = run_cli("--transport", "builtins:exit", db=f"sqlite:///{tmp_path / 'outbox.db'}")
    assert 2 == done.returncode
    assert [
        "messagebus-relay: the transport factory builtins:exit failed: SystemExit: None"
    ] == done.stderr.splitlines()


def test_a_password_in_the_query_is_hidden_when_the_database_is_unreachable() -> None:
    done = run_cli(
        "--transport",
        "cli_transports:idle_transport",
        "--connect-timeout",
        "5",
        db="postgresql://relay@127.0.0.1:1/app?password=S3cret",
    )
    assert 2 == done.returncode
    [line] = done.stderr.splitlines()
    assert line.startswith(
        "messagebus-relay: cannot reach the database "
        "postgresql://relay@127.0.0.1:1/app?password=***: "
    )
    assert SECRET not in done.stderr


def test_a_traceback_is_printed_without_the_password() -> None:
    """An error the command does not expect is shown whole, secrets removed."""
    postgres_or_skip()  # its trust authentication takes any password
    metadata = MetaData()
    prefix = f"cli_{uuid.uuid4().hex[:8]}_"
    messagebus_tables(metadata, prefix=prefix)
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    metadata.create_all(engine)
    try:
        done = run_cli(
            "--transport",
            "cli_transports:leaky_transport",
            "--once",
            "--prefix",
            prefix,
            db=f"postgresql://postgres:{SECRET}@127.0.0.1:5432/test",
        )
    finally:
        metadata.drop_all(engine)
        engine.dispose()
    assert 1 == done.returncode, done.stderr
    assert "Traceback" in done.stderr
    assert "RuntimeError: cannot flush to postgresql://postgres:***@127.0.0.1" in done.stderr
    assert SECRET not in done.stderr
