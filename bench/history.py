"""History growth: workflow history bytes per step, references (Cairn) against context by value.

For each context size the same chain runs on both sides. Cairn: every step's output (of that
size) is committed to memory and the next step reads it from there; only `StepResult`
references cross the workflow. By value (`bench.baselines.ByValueWorkflow`): the context
travels as each activity's input and comes back as its output.

Per-step bytes and events are the slope between a 1-step and a ``steps``-step run of each (the
protobuf size of every history event, from ``fetch_history``). Where each side reaches
Temporal's limits is extrapolated from those slopes, and labelled so; the by-value workflow also
records, after every step, what the server itself reports (``workflow.info()``), so its first
continue-as-new suggestion is measured where it falls inside the run.

Thresholds are the server's dynamic-config defaults (temporalio/temporal,
``common/dynamicconfig/constants.go``): continue-as-new is suggested from 4 MiB
(``limit.historySize.suggestContinueAsNew``) or 4,096 events
(``limit.historyCount.suggestContinueAsNew``); warnings at 10 MiB / 10,240 events; a run fails
at 50 MiB (``limit.historySize.error``) or 51,200 events (``limit.historyCount.error``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from activities import AgentRegistry, AgentSpec
from activities.llm import ChatMessage, ToolSpec
from bench.baselines import ByValueInput, ByValueResult, ByValueWorkflow, by_value_step, step_text
from bench.databases import scratch
from bench.devserver import RUN_TIMEOUT, cairn_worker, dev_server, plain_worker, task_queue
from bench.runner import Profile, Row, benchmark
from memory import MemoryStore
from memory.context import ContextSpec
from workflows.chain import ChainWorkflow, team_search_attributes
from workflows.contracts import ChainSpec, Step

MiB = 1024 * 1024
SUGGEST_BYTES, SUGGEST_EVENTS = 4 * MiB, 4 * 1024
LIMIT_BYTES, LIMIT_EVENTS = 50 * MiB, 50 * 1024
TARGET_BYTES = 2048
"""Cairn's target: under 2 KB of history per step, whatever the context size."""
SIZES = (1_000, 10_000, 100_000, 1_000_000)
TENANT = "bench"
AGENT = "grower"
CHART = Path(__file__).parent / "charts" / "history_bytes.png"


def _sized(registry: AgentRegistry, sizes: Sequence[int]) -> AgentRegistry:
    """One scripted agent per size (``grower-<size>``): step N answers `step_text(N, size)`."""
    for size in sizes:

        def reply(
            system: str,
            messages: Sequence[ChatMessage],
            tools: Sequence[ToolSpec],
            size: int = size,
        ) -> str:
            return step_text(int(messages[-1].content.split()[-1]), size)

        registry.script(f"{AGENT}-{size}")(reply)
    return registry


def chain_spec(size: int, steps: int) -> ChainSpec:
    """``steps`` steps, each writing ``size`` characters and reading the previous step's."""
    agent = AgentSpec(
        model="scripted",
        name=f"{AGENT}-{size}",
        instructions="Extend the findings.",
        context=ContextSpec(transcript=None, token_budget=2_000_000),
    )
    nodes = tuple(
        Step(agent=agent.name, name=f"s{i}", task=f"step {i}", sees=(f"s{i - 1}",) if i > 1 else ())
        for i in range(1, steps + 1)
    )
    return ChainSpec(name="history", tenant=TENANT, agents=(agent,), nodes=nodes)


@dataclass(frozen=True)
class Sized:
    """A finished run's history: bytes and events, and the bytes of its completion event."""

    bytes: int
    events: int
    result_bytes: int


async def measured(handle: WorkflowHandle[Any, Any]) -> Sized:
    events = (await handle.fetch_history()).events
    return Sized(sum(e.ByteSize() for e in events), len(events), events[-1].ByteSize())


@dataclass(frozen=True)
class Growth:
    """One side at one context size: history of a 1-step and an N-step run."""

    side: str
    size: int
    steps: int
    one: Sized
    many: Sized
    measured_suggest_at: int | None = None

    @property
    def bytes_1(self) -> int:
        return self.one.bytes

    @property
    def events_1(self) -> int:
        return self.one.events

    @property
    def bytes_n(self) -> int:
        return self.many.bytes

    @property
    def bytes_per_step(self) -> float:
        return (self.many.bytes - self.one.bytes) / (self.steps - 1)

    @property
    def result_bytes_per_step(self) -> float:
        """The part of `bytes_per_step` that is the workflow's result growing with each step."""
        return (self.many.result_bytes - self.one.result_bytes) / (self.steps - 1)

    @property
    def events_per_step(self) -> float:
        return (self.many.events - self.one.events) / (self.steps - 1)

    def total(self, step: float) -> tuple[float, float]:
        """(bytes, events) of a run of ``step`` steps, on the measured line."""
        return (
            self.bytes_1 + (step - 1) * self.bytes_per_step,
            self.events_1 + (step - 1) * self.events_per_step,
        )

    def reaches(self, max_bytes: int, max_events: int) -> tuple[int, str]:
        """The first step (extrapolated) whose history passes either threshold, and which one."""
        by_bytes = 1 + (max_bytes - self.bytes_1) / self.bytes_per_step
        by_events = 1 + (max_events - self.events_1) / self.events_per_step
        step, which = min((by_bytes, "bytes"), (by_events, "events"))
        return max(1, int(step) + 1), which


async def cairn_side(client: Client, queue: str, size: int, steps: int) -> Sized:
    spec = chain_spec(size, steps)
    handle = await client.start_workflow(
        ChainWorkflow.run,
        spec,
        id=f"history-{size}-{uuid.uuid4().hex[:10]}",
        task_queue=queue,
        execution_timeout=RUN_TIMEOUT,
        search_attributes=team_search_attributes(spec),
    )
    await handle.result()
    return await measured(handle)


async def by_value_side(
    client: Client, queue: str, size: int, steps: int
) -> tuple[Sized, ByValueResult]:
    handle = await client.start_workflow(
        ByValueWorkflow.run,
        ByValueInput(steps=steps, context=step_text(0, size)),
        id=f"by-value-{size}-{uuid.uuid4().hex[:10]}",
        task_queue=queue,
        execution_timeout=RUN_TIMEOUT,
    )
    result: ByValueResult = await handle.result()
    return await measured(handle), result


async def measure(client: Client, store: MemoryStore, steps: int) -> list[Growth]:
    cairn_q, value_q = task_queue("history"), task_queue("by-value")
    out = []
    async with (
        cairn_worker(client, store, cairn_q, _sized(AgentRegistry(), SIZES)),
        plain_worker(client, value_q, [ByValueWorkflow], [by_value_step]),
    ):
        for size in SIZES:
            c1 = await cairn_side(client, cairn_q, size, 1)
            cn = await cairn_side(client, cairn_q, size, steps)
            v1, _ = await by_value_side(client, value_q, size, 1)
            vn, result = await by_value_side(client, value_q, size, steps)
            suggested = next((p.step for p in result.points if p.suggested), None)
            out.append(Growth("cairn", size, steps, c1, cn))
            out.append(Growth("by_value", size, steps, v1, vn, suggested))
    return out


def _size(n: int) -> str:
    return f"{n // 1_000_000} MB" if n >= 1_000_000 else f"{n // 1000} KB"


def rows(growth: list[Growth]) -> list[Row]:
    out: list[Row] = []
    for g in growth:
        suggest, suggest_by = g.reaches(SUGGEST_BYTES, SUGGEST_EVENTS)
        limit, limit_by = g.reaches(LIMIT_BYTES, LIMIT_EVENTS)
        row: dict[str, Any] = {
            "context": _size(g.size),
            "side": g.side,
            "steps": g.steps,
            "history_bytes": g.bytes_n,
            "bytes_per_step": g.bytes_per_step,
            "of_which_result": g.result_bytes_per_step,
            "x_context": g.bytes_per_step / g.size,
            "events_per_step": g.events_per_step,
            "can_suggested_at": suggest,
            "suggest_by": suggest_by,
            "fails_at": limit,
            "fails_by": limit_by,
            "measured_suggest_at": g.measured_suggest_at,
            "target_met": g.bytes_per_step < TARGET_BYTES if g.side == "cairn" else None,
        }
        out.append(row)
    return out


@benchmark("history_growth", "History bytes per step: references (Cairn) vs context by value")
async def history_growth(profile: Profile) -> list[Row]:
    steps = 12 if profile.full else 4
    with scratch(profile, "sqlite", "history") as db:
        store = await MemoryStore.open(db.url, max_value_bytes=4 * MiB)
        try:
            async with dev_server() as client:
                growth = await measure(client, store, steps)
        finally:
            await store.close()
    from bench.charts import history_chart

    note = f" ({profile.name} profile, {steps} steps measured)"
    # The committed chart comes from the full profile; a quick run's goes to its workdir.
    chart = CHART if profile.full else profile.workdir / CHART.name
    history_chart(growth, chart, SUGGEST_BYTES, LIMIT_BYTES, note)
    return rows(growth)
