"""One trace from client to workflow to activity to memory operation and model call.

A tracer provider with an in-memory exporter is installed once for this process (OpenTelemetry
allows one global provider); each test clears it and looks only at its own trace.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities import AgentActivities, AgentRegistry, MemoryActivities
from activities.contracts import AgentSpec
from cairn import telemetry
from memory import ConflictError, MemoryStore
from memory.context import ContextSpec
from workflows.chain import ChainWorkflow
from workflows.contracts import ChainSpec, Step
from workflows.session import SessionWorkflow

SECRET = "canary-7f3a9c"
EXPORTER: InMemorySpanExporter
READER: InMemoryMetricReader


@pytest.fixture(autouse=True)
def providers(span_exporter: InMemorySpanExporter, metric_reader: InMemoryMetricReader) -> None:
    global EXPORTER, READER
    EXPORTER, READER = span_exporter, metric_reader


@pytest.fixture
async def traced_client(temporal_env: WorkflowEnvironment) -> Client:
    config = temporal_env.client.config()
    config["interceptors"] = [TracingInterceptor()]
    return Client(**config)


def chain(task: str) -> ChainSpec:
    agents = tuple(
        AgentSpec(
            model="scripted",
            name=n,
            instructions=f"You are {n}.",
            context=ContextSpec(transcript=None),
        )
        for n in ("a", "b", "c")
    )
    steps = (Step(agent="a", task=task), Step(agent="b", sees=("a",)), Step(agent="c", sees=("b",)))
    return ChainSpec(name="traced", tenant="acme", agents=agents, nodes=steps, input=task)


async def run_chain(
    client: Client, store: MemoryStore, task_queue: str, *, capture: bool = False, cache: int = 100
) -> list[ReadableSpan]:
    EXPORTER.clear()
    agents = AgentActivities(store, AgentRegistry(), capture_content=capture)
    memory = MemoryActivities(store)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ChainWorkflow, SessionWorkflow],
        activities=[agents.agent_step, agents.compact_transcript, memory.write_memory],
        max_cached_workflows=cache,
    ):
        result = await client.execute_workflow(
            ChainWorkflow.run,
            chain(f"summarise {SECRET}"),
            id=f"traced-{uuid.uuid4().hex[:8]}",
            task_queue=task_queue,
        )
    assert result.status == "completed"
    return list(EXPORTER.get_finished_spans())


def by_name(spans: list[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


def parent(spans: list[ReadableSpan], span: ReadableSpan) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} has no parent"
    found = [s for s in spans if s.context.span_id == span.parent.span_id]
    assert len(found) == 1, f"parent of {span.name} not exported"
    return found[0]


async def test_a_chain_is_one_trace_correctly_nested(traced_client, store, task_queue):
    spans = await run_chain(traced_client, store, task_queue)

    assert len({s.context.trace_id for s in spans}) == 1, "every span belongs to one trace"
    start = by_name(spans, "StartWorkflow:ChainWorkflow")
    assert len(start) == 1 and start[0].parent is None
    run = by_name(spans, "RunWorkflow:ChainWorkflow")
    assert len(run) == 1 and parent(spans, run[0]) is start[0]

    steps = by_name(spans, "cairn.step")
    assert [s.attributes["cairn.agent"] for s in sorted(steps, key=lambda s: s.start_time)] == [
        "a",
        "b",
        "c",
    ]
    for step in steps:
        run_activity = parent(spans, step)
        assert run_activity.name == "RunActivity:agent_step"
        start_activity = parent(spans, run_activity)
        assert start_activity.name == "StartActivity:agent_step"
        # Temporal's interceptor parents workflow-side spans on the workflow's start span.
        assert parent(spans, start_activity) is start[0]
        children = [s for s in spans if s.parent and s.parent.span_id == step.context.span_id]
        names = {c.name for c in children}
        assert {"cairn.context.build", "chat scripted", "cairn.memory.commit"} <= names, names
        context = next(c for c in children if c.name == "cairn.context.build")
        reads = [s for s in spans if s.parent and s.parent.span_id == context.context.span_id]
        assert all(r.name.startswith("cairn.memory.") for r in reads)
        if step.attributes["cairn.agent"] != "a":  # b and c read the previous step's output
            assert [r.name for r in reads] == ["cairn.memory.get"]
        commit = next(c for c in children if c.name == "cairn.memory.commit")
        assert commit.attributes["cairn.tenant"] == "acme"
        assert commit.attributes["cairn.memory.replayed"] is False
        assert commit.attributes["cairn.memory.commit_seq"] > 0
        chat = next(c for c in children if c.name == "chat scripted")
        assert chat.attributes["gen_ai.system"] == "cairn.scripted"
        assert chat.attributes["gen_ai.usage.output_tokens"] > 0
        assert chat.attributes["gen_ai.response.finish_reasons"] == ("stop",)


async def test_replaying_workflow_tasks_adds_no_duplicate_spans(traced_client, store, task_queue):
    # No workflow cache: every workflow task replays the whole history from the start.
    spans = await run_chain(traced_client, store, task_queue, cache=0)
    counts = Counter(s.name for s in spans)
    assert counts["RunWorkflow:ChainWorkflow"] == 1
    assert counts["StartActivity:agent_step"] == 3
    assert counts["RunActivity:agent_step"] == 3
    assert counts["cairn.step"] == 3


def _texts(spans: list[ReadableSpan]) -> str:
    out = []
    for s in spans:
        out.append(s.name)
        out.extend(str(v) for v in (s.attributes or {}).values())
        for e in s.events:
            out.extend(str(v) for v in (e.attributes or {}).values())
    return "\n".join(out)


async def test_content_stays_out_of_spans_unless_capture_is_on(traced_client, store, task_queue):
    spans = await run_chain(traced_client, store, task_queue)
    assert SECRET not in _texts(spans)

    captured = await run_chain(traced_client, store, task_queue, capture=True)
    assert SECRET in _texts(captured), "positive control: capture on shows the prompt"


def _points(name: str) -> list:
    data = READER.get_metrics_data()
    return [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
        for p in m.data.data_points
    ]


async def test_metrics_count_steps_tokens_operations_and_conflicts(
    traced_client, store, task_queue
):
    def total(name: str) -> float:
        return sum(getattr(p, "count", None) or getattr(p, "value", 0) for p in _points(name))

    steps_before = total("cairn.step.duration")
    await run_chain(traced_client, store, task_queue)
    assert total("cairn.step.duration") - steps_before == 3
    assert total("gen_ai.client.token.usage.total") > 0
    operations = {p.attributes["operation"] for p in _points("cairn.memory.operation.duration")}
    assert {"commit", "get"} <= operations

    conflicts_before = total("cairn.memory.commit.conflicts")
    async with store.commit() as c:
        c.put(("acme", "x"), "k", 1)
    with pytest.raises(ConflictError):
        async with store.commit() as c:
            c.put(("acme", "x"), "k", 2, expected_version=5)
    assert total("cairn.memory.commit.conflicts") - conflicts_before == 1


def test_nothing_is_configured_without_otel_variables():
    configured = telemetry.configure({})
    assert configured.interceptors == [] and configured.runtime is None
    assert telemetry.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}) == (
        "otlp",
        "otlp",
    )
    assert telemetry.wanted({"OTEL_TRACES_EXPORTER": "none"}) == (None, None)
    assert telemetry.wanted({}, console=True) == ("console", None)
