from typing_tests import faststream_usage


async def test_the_faststream_usage_runs() -> None:
    assert ({"1": "Dune", "2": "Emma"}, 2) == await faststream_usage.main()
