"""Spans and metrics of agent steps: context assembly, model calls (GenAI conventions), steps.

Through the OpenTelemetry API only (a no-op until `telemetry.configure` installs a provider).
Message contents, memory values and tool arguments are recorded only when content capture is
switched on explicitly (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, Status, StatusCode

from activities.llm import ChatMessage, ModelClient, ModelReply, ToolSpec

tracer = trace.get_tracer("cairn.activities")
_meter = metrics.get_meter("cairn.activities")
step_duration = _meter.create_histogram(
    "cairn.step.duration", unit="s", description="Agent step latency, context to commit"
)
tokens = _meter.create_counter(
    "gen_ai.client.token.usage.total", unit="{token}", description="Tokens in and out per agent"
)


def provider_of(model_id: str) -> str:
    """``gen_ai.system`` of a model id: ``openai``, ``anthropic`` or ``cairn.scripted``."""
    provider, sep, _ = model_id.partition(":")
    return provider if sep else f"cairn.{model_id}"


@contextmanager
def _span(name: str, attributes: dict[str, str], capture_content: bool) -> Iterator[Span]:
    """A span that records a failure by exception type; the message only with content capture.

    An exception's message may quote what the step was working on (a memory value, a model's
    reply, a validation error's input), so it is content.
    """
    with tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield span
        except BaseException as error:
            kind = f"{type(error).__module__}.{type(error).__qualname__}"
            event = {"exception.type": kind}
            if capture_content:
                event["exception.message"] = str(error)
            span.add_event("exception", event)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            raise


@contextmanager
def step_span(agent: str, step: str, *, capture_content: bool = False) -> Iterator[Span]:
    """The span of one agent step's own work (inside Temporal's RunActivity span)."""
    started = time.perf_counter()
    attributes = {"cairn.agent": agent, "cairn.step": step}
    with _span("cairn.step", attributes, capture_content) as span:
        yield span
    step_duration.record(time.perf_counter() - started, {"cairn.agent": agent})


@contextmanager
def context_span(agent: str, *, capture_content: bool = False) -> Iterator[Span]:
    """The span around context assembly; callers add token and reference counts."""
    with _span("cairn.context.build", {"cairn.agent": agent}, capture_content) as span:
        yield span


async def complete(
    model: ModelClient,
    agent: str,
    *,
    system: str,
    messages: Sequence[ChatMessage],
    tools: Sequence[ToolSpec],
    capture_content: bool,
) -> ModelReply:
    """Call ``model.complete`` in a ``chat <model>`` span with GenAI semantic conventions."""
    request_model = model.model_id.partition(":")[2] or model.model_id
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": provider_of(model.model_id),
        "gen_ai.request.model": request_model,
        "cairn.agent": agent,
    }
    with _span(f"chat {request_model}", attributes, capture_content) as span:
        if capture_content:
            span.add_event(
                "gen_ai.content.prompt",
                {"gen_ai.prompt": json.dumps([system, *(m.model_dump() for m in messages)])},
            )
        reply = await model.complete(system=system, messages=messages, tools=tools)
        span.set_attribute("gen_ai.response.model", reply.model)
        span.set_attribute("gen_ai.response.finish_reasons", [reply.finish_reason])
        span.set_attribute("gen_ai.usage.input_tokens", reply.usage.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", reply.usage.output_tokens)
        if capture_content:
            span.add_event("gen_ai.content.completion", {"gen_ai.completion": reply.text})
    labels = {"cairn.agent": agent, "gen_ai.request.model": request_model}
    tokens.add(reply.usage.input_tokens, {**labels, "gen_ai.token.type": "input"})
    tokens.add(reply.usage.output_tokens, {**labels, "gen_ai.token.type": "output"})
    return reply
