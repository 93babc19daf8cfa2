"""The typed usage files are real code: they run, as well as type-check."""

import asyncio

from messagebus import TransactionStatus
from typing_tests._async import usage as async_usage
from typing_tests._sync import usage as sync_usage


def test_the_async_usage_runs() -> None:
    assert TransactionStatus.closed == asyncio.run(async_usage.main())


def test_the_sync_usage_runs() -> None:
    assert TransactionStatus.closed == sync_usage.main()
