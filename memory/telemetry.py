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

from memory.commit import Applied
from memory.errors import ConflictError, NotFound

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

_COMMIT = {"operation": "commit"}


async def traced_commit(run: Awaitable[Applied], entry_count: int, tenant: str | None) -> Applied:
    """Await applying a commit in a ``cairn.memory.commit`` span, counting conflicts and replays."""
    if not tracing():
        started = time.perf_counter()
        try:
            applied = await run
        except ConflictError:
            commit_conflicts.add(1)
            raise
        if applied.replayed:
            commit_replays.add(1)
        operation_duration.record(time.perf_counter() - started, _COMMIT)
        return applied
    attributes: dict[str, str | int] = {"cairn.memory.entry_count": entry_count}
    if tenant:
        attributes["cairn.tenant"] = tenant
    started = time.perf_counter()
    with tracer.start_as_current_span("cairn.memory.commit", attributes=attributes) as span:
        try:
            applied = await run
        except ConflictError:
            commit_conflicts.add(1)
            raise
        span.set_attribute("cairn.memory.commit_seq", applied.seq)
        span.set_attribute("cairn.memory.replayed", applied.replayed)
    if applied.replayed:
        commit_replays.add(1)
    operation_duration.record(time.perf_counter() - started, _COMMIT)
    return applied


def tracing() -> bool:
    """Whether a tracer provider is installed; without one every span is a no-op.

    Skipping the no-op span saves a point read a fifth of its cost (context attach and
    detach, three context managers). OpenTelemetry's global is read directly: while none is
    installed, ``trace.get_tracer_provider()`` looks up an environment variable on every call
    (0.8 us, 5% of a point read). Creating `tracer` at import honours that variable (it loads
    the provider it names); should a later OpenTelemetry rename the global, the public call
    is used instead.
    """
    provider = getattr(trace, "_TRACER_PROVIDER", _UNKNOWN)
    if provider is _UNKNOWN:
        provider = trace.get_tracer_provider()
    return provider is not None and not isinstance(provider, _NO_PROVIDER)


_NO_PROVIDER = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
_UNKNOWN = object()


def namespace_attributes(namespace: object) -> dict[str, Any]:
    """``cairn.tenant`` and ``cairn.namespace.depth`` of a namespace argument, if it is one."""
    if isinstance(namespace, (tuple, list)) and namespace and isinstance(namespace[0], str):
        return {"cairn.tenant": namespace[0], "cairn.namespace.depth": len(namespace)}
    return {}


def _count(result: object) -> int | None:
    if isinstance(result, list):
        return len(result)
    # Asked of the model class first: a missing attribute on a pydantic model instance costs
    # an exception inside pydantic, a noticeable share of a point read.
    if "entries" in getattr(type(result), "model_fields", ()):
        entries = getattr(result, "entries", None)
        if isinstance(entries, Sequence):
            return len(entries)
    return None


def instrumented(
    operation: str,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Wrap an async store method in a ``cairn.memory.<operation>`` span and a latency metric."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        metric_attributes = {"operation": operation}

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not tracing():
                # Kept apart from the traced path below: a context manager and a closure
                # per call would cost a point read 2%.
                started = time.perf_counter()
                result = await fn(*args, **kwargs)
                operation_duration.record(time.perf_counter() - started, metric_attributes)
                return result
            attributes = {"cairn.memory.operation": operation}
            attributes.update(namespace_attributes(args[1] if len(args) > 1 else None))
            started = time.perf_counter()
            missing: NotFound | None = None
            with tracer.start_as_current_span(
                f"cairn.memory.{operation}", attributes=attributes
            ) as span:
                try:
                    result = await fn(*args, **kwargs)
                except NotFound as error:
                    # An expected answer ("nothing there"), not a failure of the operation:
                    # raised outside the span so that it is not recorded as the span's error.
                    span.set_attribute("cairn.memory.found", False)
                    missing = error
                else:
                    count = _count(result)
                    if count is not None:
                        span.set_attribute("cairn.memory.entry_count", count)
            operation_duration.record(time.perf_counter() - started, metric_attributes)
            if missing is not None:
                raise missing
            return result

        return wrapper

    return decorate
