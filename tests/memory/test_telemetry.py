"""Memory spans: an expected "nothing there" is not an error."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from memory import MemoryStore, NotFound
from tests.memory.conftest import NS


async def test_get_not_found_is_not_a_span_error(
    store: MemoryStore, span_exporter: InMemorySpanExporter
) -> None:
    span_exporter.clear()
    with pytest.raises(NotFound):
        await store.get(NS, "never-written")
    (span,) = [s for s in span_exporter.get_finished_spans() if s.name == "cairn.memory.get"]
    assert span.status.status_code is not StatusCode.ERROR
    assert not [e for e in span.events if e.name == "exception"]
    assert span.attributes is not None and span.attributes["cairn.memory.found"] is False
