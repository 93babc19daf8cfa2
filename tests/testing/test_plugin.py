"""The pytest plugin, run in projects of its own with pytester: off until a project opts in."""

import pytest

pytest_plugins = ["pytester"]

LIBRARY = """
from messagebus import Command, Event, Metadata, Model, async_listen, sync_listen


class RegisterBook(Command):
    id: str
    title: str
    metadata: Metadata = Metadata(name="register_book", schema_version=1)


class BookRegistered(Event):
    id: str
    title: str
    metadata: Metadata = Metadata(name="book_registered", schema_version=1, published=True)


class Book(Model):
    id: str
    title: str


@async_listen
async def register_book(command: RegisterBook, transaction) -> None:
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=book.id, title=book.title))
    await transaction.books.add(book)


@sync_listen
def register_book_sync(command: RegisterBook, transaction) -> None:
    book = Book(id=command.id, title=command.title)
    book.messages.append(BookRegistered(id=book.id, title=book.title))
    transaction.books.add(book)
"""

CONFTEST = """
import pytest
from messagebus.testing import AsyncInMemoryRepository, AsyncInMemoryUnitOfWork
from messagebus.testing import SyncInMemoryRepository, SyncInMemoryUnitOfWork


@pytest.fixture
def messagebus_uow(messagebus_transport):
    return AsyncInMemoryUnitOfWork(messagebus_transport, books=AsyncInMemoryRepository())


@pytest.fixture
def messagebus_sync_uow(messagebus_sync_transport):
    return SyncInMemoryUnitOfWork(messagebus_sync_transport, books=SyncInMemoryRepository())
"""

TESTS = """
from messagebus.testing import assert_handled, assert_published
from library import BookRegistered, RegisterBook


async def test_register(messagebus_scenario, messagebus_uow, messagebus_transport):
    await messagebus_scenario.when(RegisterBook(id="1", title="Dune"))
    messagebus_scenario.then(BookRegistered(id="1", title="Dune"))
    assert_published(messagebus_transport, [BookRegistered(id="1", title="Dune")])
    assert ["1"] == list(messagebus_uow.books.models)


def test_register_sync(messagebus_sync_scenario):
    scenario = messagebus_sync_scenario.when(RegisterBook(id="1", title="Dune"))
    scenario.then_published(BookRegistered(id="1", title="Dune"))


async def test_wrong_title(messagebus_scenario):
    await messagebus_scenario.when(RegisterBook(id="1", title="Dune"))
    messagebus_scenario.then(BookRegistered(id="1", title="Emma"))
"""

INI = """
[pytest]
addopts = --strict-config -p no:cacheprovider
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
{options}
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with handlers in ``library`` and tests of them."""
    pytester.makepyfile(library=LIBRARY, test_library=TESTS)
    pytester.syspathinsert()
    return pytester


def test_the_fixtures_are_off_in_a_project_that_did_not_opt_in(project: pytest.Pytester) -> None:
    project.makeini(INI.format(options=""))
    project.makepyfile(test_plain="def test_plain():\n    assert True\n")

    result = project.runpytest()

    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines(["*fixture 'messagebus_scenario' not found*"])
    assert "messagebus_uow" not in project.runpytest("--fixtures").stdout.str()


def test_the_ini_option_turns_the_fixtures_on(project: pytest.Pytester) -> None:
    project.makepyfile(empty="")  # a module of no handler, scanned as well
    project.makeini(
        INI.format(options="messagebus_testing = true\nmessagebus_handlers = library\n  empty")
    )
    project.makeconftest(CONFTEST)

    result = project.runpytest()

    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: The messages handled are not the expected ones*",
            "*- <BookRegistered id='1' title='Emma'>",
            "*+ <BookRegistered id='1' title='Dune'>",
        ]
    )


def test_a_conftest_can_load_the_fixtures_and_name_the_packages(project: pytest.Pytester) -> None:
    project.makeini(INI.format(options=""))
    project.makeconftest(
        CONFTEST
        + """
pytest_plugins = ["messagebus.testing.fixtures"]


@pytest.fixture
def messagebus_packages():
    return ["library"]
"""
    )

    project.runpytest().assert_outcomes(passed=2, failed=1)


def test_a_bus_without_packages_says_how_to_name_them(project: pytest.Pytester) -> None:
    project.makeini(INI.format(options="messagebus_testing = true"))
    project.makeconftest(CONFTEST)

    result = project.runpytest("-k", "test_register_sync")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*messagebus_sync_bus fixture scans no package*ini option*"])


def test_the_kits_unit_of_work_is_the_default(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI.format(options="messagebus_testing = true"))
    pytester.makepyfile(
        """
        from messagebus.testing import AsyncInMemoryUnitOfWork, SyncInMemoryUnitOfWork

        def test_units_of_work(messagebus_uow, messagebus_sync_uow, messagebus_transport):
            assert isinstance(messagebus_uow, AsyncInMemoryUnitOfWork)
            assert isinstance(messagebus_sync_uow, SyncInMemoryUnitOfWork)
            assert messagebus_uow.transport is messagebus_transport
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_a_run_without_the_plugin_refuses_its_options(project: pytest.Pytester) -> None:
    project.makeini(INI.format(options="messagebus_testing = true"))

    result = project.runpytest("-p", "no:messagebus")

    assert pytest.ExitCode.OK != result.ret
    result.stderr.fnmatch_lines(["*Unknown config option: messagebus_testing*"])


def test_without_autoloading_the_plugin_is_loaded_by_name(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    project.makeini(
        INI.format(options="messagebus_testing = true\nmessagebus_handlers = library")
        .replace("asyncio_mode = auto\n", "")
        .replace("asyncio_default_fixture_loop_scope = function\n", "")
    )
    project.makeconftest(CONFTEST)

    result = project.runpytest("-p", "messagebus.testing.plugin", "-k", "test_register_sync")

    result.assert_outcomes(passed=1, deselected=2)
