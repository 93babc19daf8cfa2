"""The tracing usage file that mypy --strict checks also runs."""

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from messagebus.consumer import Outcome
from typing_tests import opentelemetry_usage


async def test_the_tracing_usage_runs() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert ("1", "2", Outcome.handled) == await opentelemetry_usage.main(provider)
    assert {"handle register_book", "commit"} <= {s.name for s in exporter.get_finished_spans()}
