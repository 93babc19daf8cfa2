"""The pytest plugin of messagebus, off until a project turns it on.

pytest loads this module in every project where messagebus is installed (it is declared
under the ``pytest11`` entry point), so it does nothing by itself: it declares two ini
options and, when a project sets ``messagebus_testing = true``, loads the fixtures of
:mod:`messagebus.testing.fixtures`. A project can also load them itself, with
``pytest_plugins = ["messagebus.testing.fixtures"]`` in its root ``conftest.py`` or
``-p messagebus.testing.fixtures``; ``-p no:messagebus`` keeps this module out.
"""

import pytest

FIXTURES = "messagebus.testing.fixtures"
"""The module of the fixtures this plugin loads when a project opts in."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the ini options ``messagebus_testing`` and ``messagebus_handlers``."""
    parser.addini(
        "messagebus_testing",
        "Load the fixtures of messagebus.testing (messagebus_bus, messagebus_uow, ...).",
        type="bool",
        default=False,
    )
    parser.addini(
        "messagebus_handlers",
        "The modules or packages whose handlers the messagebus_bus fixture scans.",
        type="args",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    """Load the fixtures if the project opted in."""
    if config.getini("messagebus_testing"):
        config.pluginmanager.import_plugin(FIXTURES)
