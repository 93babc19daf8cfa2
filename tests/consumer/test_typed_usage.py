"""The consumer usage file that mypy --strict checks also runs."""

from pathlib import Path

from typing_tests import consumer_usage


async def test_the_consumer_usage_runs(tmp_path: Path) -> None:
    stats = await consumer_usage.main(str(tmp_path / "typed.sqlite"))
    assert (1, 1, 1) == (stats.handled, stats.duplicates, stats.dead_lettered)
    assert ["Dune"] == consumer_usage.renamed
