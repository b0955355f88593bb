"""Spans and metrics around memory operations, through the OpenTelemetry API only.

With no SDK configured the API is a no-op, so an uninstrumented process pays nothing but a
function call. Attributes never include values, keys or namespace segments beyond the tenant:
memory content stays out of telemetry.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from opentelemetry import metrics, trace

P = ParamSpec("P")
R = TypeVar("R")

tracer = trace.get_tracer("cairn.memory")
_meter = metrics.get_meter("cairn.memory")
operation_duration = _meter.create_histogram(
    "cairn.memory.operation.duration", unit="s", description="Memory operation latency"
)
commit_conflicts = _meter.create_counter(
    "cairn.memory.commit.conflicts", description="Commits refused by compare-and-set"
)
commit_replays = _meter.create_counter(
    "cairn.memory.commit.replays", description="Commits whose key was already applied"
)


def namespace_attributes(namespace: object) -> dict[str, Any]:
    """``cairn.tenant`` and ``cairn.namespace.depth`` of a namespace argument, if it is one."""
    if isinstance(namespace, (tuple, list)) and namespace and isinstance(namespace[0], str):
        return {"cairn.tenant": namespace[0], "cairn.namespace.depth": len(namespace)}
    return {}


def _count(result: object) -> int | None:
    entries = getattr(result, "entries", None)
    if isinstance(entries, Sequence):
        return len(entries)
    if isinstance(result, list):
        return len(result)
    return None


def instrumented(
    operation: str,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Wrap an async store method in a ``cairn.memory.<operation>`` span and a latency metric."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            attributes = {"cairn.memory.operation": operation}
            attributes.update(namespace_attributes(args[1] if len(args) > 1 else None))
            started = time.perf_counter()
            with tracer.start_as_current_span(
                f"cairn.memory.{operation}", attributes=attributes
            ) as span:
                result = await fn(*args, **kwargs)
                count = _count(result)
                if count is not None:
                    span.set_attribute("cairn.memory.entry_count", count)
            operation_duration.record(time.perf_counter() - started, {"operation": operation})
            return result

        return wrapper

    return decorate
