"""OpenTelemetry set-up for worker and CLI processes, from the standard ``OTEL_*`` variables.

Nothing is configured (and the OpenTelemetry API stays a no-op) unless an exporter is asked
for: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the traces/metrics-specific endpoint variables),
``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` set to ``otlp`` or ``console``, or the
``console`` choice of ``cairn dev --trace console``. Temporal's tracing interceptor carries the
trace from client to workflow to activity; Cairn's own spans nest below it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from opentelemetry import metrics, trace
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status
from temporalio.client import Interceptor
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    OpenTelemetryConfig,
    Runtime,
    TelemetryConfig,
)

_ENDPOINTS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)


def capture_content(env: Mapping[str, str]) -> bool:
    """Whether ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` puts prompts in spans."""
    value = env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "")
    return value.lower() in ("1", "true", "yes")


@dataclass
class Telemetry:
    """What `configure` set up: client interceptors and the runtime for Temporal metrics."""

    interceptors: list[Interceptor] = field(default_factory=list)
    runtime: Runtime | None = None
    shutdown_hooks: list[object] = field(default_factory=list)

    def shutdown(self) -> None:
        """Flush and stop the exporters (spans still buffered are sent)."""
        for provider in self.shutdown_hooks:
            getattr(provider, "shutdown", lambda: None)()


def wanted(env: Mapping[str, str], console: bool = False) -> tuple[str | None, str | None]:
    """The trace and metric exporters the environment asks for (``otlp``, ``console`` or None)."""
    endpoint = any(env.get(name) for name in _ENDPOINTS)
    traces = env.get("OTEL_TRACES_EXPORTER") or ("otlp" if endpoint else None)
    metric = env.get("OTEL_METRICS_EXPORTER") or ("otlp" if endpoint else None)
    if console:
        traces = "console"
    return (None if traces == "none" else traces), (None if metric == "none" else metric)


def configure(
    env: Mapping[str, str], *, console: bool = False, core_logs_to_python: bool = False
) -> Telemetry:
    """Install tracer and meter providers when exporters are configured; else do nothing.

    Args:
        env: The process environment (only `worker.py` and `cairn.cli.app` pass it).
        console: Print spans to stdout (``cairn dev --trace console``).
        core_logs_to_python: Send the Temporal core's own log lines (such as its payload-size
            warnings, which it otherwise prints on stdout) to Python's ``temporalio.core``
            logger: a command whose stdout is JSON keeps it clean.
    """
    traces, metric = wanted(env, console)
    result = Telemetry()
    if core_logs_to_python:
        result.runtime = Runtime(telemetry=_telemetry_config(None))
    if traces is None and metric is None:
        return result
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "cairn")}).merge(
        OTELResourceDetector().detect()
    )
    protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    if traces is not None:
        provider = TracerProvider(resource=resource)
        if traces == "console":
            exporter: object = ConsoleSpanExporter()
        elif protocol.startswith("http"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        else:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcSpanExporter,
            )

            exporter = GrpcSpanExporter()
        if not capture_content(env):
            exporter = RedactingExporter(exporter)  # type: ignore[arg-type]
        provider.add_span_processor(BatchSpanProcessor(exporter))  # type: ignore[arg-type]
        trace.set_tracer_provider(provider)
        result.shutdown_hooks.append(provider)
        result.interceptors.append(TracingInterceptor())
    if metric == "otlp":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        if protocol.startswith("http"):
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        else:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # type: ignore[assignment]
                OTLPMetricExporter,
            )
        meters = MeterProvider(
            resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())]
        )
        metrics.set_meter_provider(meters)
        result.shutdown_hooks.append(meters)
        # Temporal's own SDK metrics (task latencies, poll counts...) to the same collector.
        endpoint = env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317"
        )
        metrics_config = OpenTelemetryConfig(url=endpoint)
        result.runtime = Runtime(
            telemetry=_telemetry_config(metrics_config)
            if core_logs_to_python
            else TelemetryConfig(metrics=metrics_config)
        )
    return result


def _telemetry_config(metrics_config: OpenTelemetryConfig | None) -> TelemetryConfig:
    """Temporal core telemetry whose log lines go to the ``temporalio.core`` Python logger."""
    forwarding = LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
    logs = LoggingConfig(filter=LoggingConfig.default.filter, forwarding=forwarding)
    return TelemetryConfig(logging=logs, metrics=metrics_config)


class RedactingExporter(SpanExporter):
    """Exports spans with exception messages removed (their types stay).

    An exception's message can quote what a step handled (a memory value, a model's reply), and
    Temporal's tracing interceptor records it in the span status and exception event. Unless
    content capture is on, only the exception's type leaves the process.
    """

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export redacted copies of ``spans``."""
        return self.inner.export([_redacted(s) for s in spans])

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        return self.inner.force_flush(timeout_millis)


def _redacted(span: ReadableSpan) -> ReadableSpan:
    events = [
        Event(
            e.name,
            {
                k: "[redacted]" if k in ("exception.message", "exception.stacktrace") else v
                for k, v in (e.attributes or {}).items()
            },
            e.timestamp,
        )
        for e in span.events
    ]
    description = span.status.description
    status = Status(span.status.status_code, description.split(":")[0] if description else None)
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        instrumentation_scope=span.instrumentation_scope,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
    )
