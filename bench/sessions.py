"""Long sessions: turn latency late in one session against early, continue-as-new in between.

One `SessionWorkflow` session takes turns one after another (update-with-start, as ``cairn
chat`` sends them), continuing as new every ``turns_per_run`` turns; its transcript and summary
live in memory (SQLite). At each mark (turn 10, then later turns) the long session's next 20
turns are interleaved with turns 2-21 of a fresh session, so the ratio compares turn N with an
early turn measured at the same moment on this noisy machine. Target (reported, not asserted):
the ratio stays within 1.2x.

Quick profile: marks at turns 10, 200 and 1,000 (``turns_per_run=100``); ``--full``: 10, 1,000
and 10,000 (``turns_per_run=500``, the default). A run also ends when the server suggests
continue-as-new (4,096 events); ``runs_before`` counts the runs that actually ended.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from activities import AgentRegistry, AgentSpec
from activities.llm import ChatMessage, ToolSpec
from bench.databases import scratch
from bench.devserver import cairn_worker, dev_server, task_queue
from bench.runner import Profile, Row, benchmark
from memory import MemoryStore
from memory.context import ContextSpec
from workflows.contracts import Reply, SessionInput, Turn
from workflows.session import SessionWorkflow, session_search_attributes, session_workflow_id

TARGET = 1.2
TURN_TIMEOUT = 120.0
"""Seconds a turn may take before the benchmark fails instead of hanging."""
WINDOW = 20
TENANT = "bench"
AGENT = "talker"
CHART = Path(__file__).parent / "charts" / "session_latency.png"


def reply(system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
    """The scripted model: a reply of a few hundred characters that depends on what it saw."""
    return f"Noted ({len(messages)} messages in view): " + "considered, answered. " * 10


@dataclass(frozen=True)
class Plan:
    marks: tuple[int, ...]
    turns_per_run: int

    @property
    def turns(self) -> int:
        return self.marks[-1] + WINDOW


def plan(profile: Profile) -> Plan:
    return Plan((10, 1_000, 10_000), 500) if profile.full else Plan((10, 200, 1_000), 100)


@dataclass
class Session:
    client: Client
    queue: str
    inp: SessionInput
    latencies: list[float] = field(default_factory=list)

    @classmethod
    def new(cls, client: Client, queue: str, turns_per_run: int) -> Session:
        agent = AgentSpec(
            model="scripted",
            name=AGENT,
            instructions="Answer briefly.",
            context=ContextSpec(last_messages=20),
        )
        inp = SessionInput(
            tenant=TENANT,
            session=f"s-{uuid.uuid4().hex[:10]}",
            agent=agent,
            turns_per_run=turns_per_run,
        )
        return cls(client, queue, inp)

    async def turn(self) -> float:
        """Send the next turn; return its latency in ms."""
        n = len(self.latencies) + 1
        start = WithStartWorkflowOperation(
            SessionWorkflow.run,
            self.inp,
            id=session_workflow_id(self.inp.tenant, self.inp.session),
            task_queue=self.queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=session_search_attributes(self.inp),
        )
        t0 = time.perf_counter()
        try:
            result: Reply = await asyncio.wait_for(
                self.client.execute_update_with_start_workflow(
                    SessionWorkflow.send,
                    Turn(message_id=f"m{n}", text=f"Question {n}: what next?"),
                    start_workflow_operation=start,
                ),
                TURN_TIMEOUT,
            )
        except Exception as error:
            raise RuntimeError(f"turn {n} failed: {error}; {await self._runs()}") from error
        ms = (time.perf_counter() - t0) * 1000
        if result.turn != n:
            raise AssertionError(f"turn {n} answered as turn {result.turn}")
        self.latencies.append(ms)
        return ms

    async def _runs(self) -> str:
        """How the session's last two runs stand (for the error of a failed turn)."""
        wf = session_workflow_id(self.inp.tenant, self.inp.session)
        latest = await self.client.get_workflow_handle(wf).describe()
        history = await self.client.get_workflow_handle(wf, run_id=latest.run_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        out = f"latest run {latest.run_id} is {latest.status}"
        if started.continued_execution_run_id:
            previous = self.client.get_workflow_handle(
                wf, run_id=started.continued_execution_run_id
            )
            last = (await previous.fetch_history()).events[-1]
            out += f"; the run before ended with {EventType.Name(last.event_type)}: {last}"
        return out


@dataclass(frozen=True)
class Mark:
    turn: int
    long_ms: list[float]
    fresh_ms: list[float]


async def run_session(client: Client, queue: str, p: Plan) -> tuple[Session, list[Mark]]:
    long = Session.new(client, queue, p.turns_per_run)
    marks = []
    for mark in p.marks:
        first = max(2, mark - WINDOW // 2 + 1)
        while len(long.latencies) < first - 1:
            await long.turn()
        fresh = Session.new(client, queue, p.turns_per_run)
        await fresh.turn()  # starts its workflow; not compared
        pairs: list[tuple[float, float]] = []
        for i in range(WINDOW):
            a, b = (long, fresh) if i % 2 == 0 else (fresh, long)
            first_ms, second_ms = await a.turn(), await b.turn()
            pairs.append((first_ms, second_ms) if a is long else (second_ms, first_ms))
        marks.append(Mark(mark, [x for x, _ in pairs], [y for _, y in pairs]))
    return long, marks


async def run_starts(session: Session) -> list[int]:
    """The turn count each continued run of the session started from, first to last.

    Runs end at ``turns_per_run`` turns or earlier, when the server suggests continue-as-new;
    each run's input says how many turns came before it.
    """
    client, wf = session.client, session_workflow_id(session.inp.tenant, session.inp.session)
    run_id: str | None = (await client.get_workflow_handle(wf).describe()).run_id
    starts = []
    while run_id:
        events = client.get_workflow_handle(wf, run_id=run_id).fetch_history_events(page_size=1)
        started = (await anext(events)).workflow_execution_started_event_attributes
        (payload,) = started.input.payloads
        starts.append(int(json.loads(payload.data)["turns"]))
        run_id = started.continued_execution_run_id or None
    return sorted(t for t in starts if t > 0)


def rows(p: Plan, marks: list[Mark], starts: list[int]) -> list[Row]:
    base = median(marks[0].long_ms)
    out: list[Row] = []
    for m in marks:
        long_ms, fresh_ms = median(m.long_ms), median(m.fresh_ms)
        ratio = long_ms / fresh_ms
        out.append(
            {
                "turn": m.turn,
                "runs_before": sum(1 for t in starts if t < m.turn),
                "turns_per_run": p.turns_per_run,
                "long_p50_ms": long_ms,
                "long_range_ms": (min(m.long_ms), max(m.long_ms)),
                "fresh_p50_ms": fresh_ms,
                "fresh_range_ms": (min(m.fresh_ms), max(m.fresh_ms)),
                "ratio_vs_fresh": ratio,
                "ratio_vs_turn_10": long_ms / base,
                "target_met": ratio <= TARGET,
            }
        )
    return out


@benchmark("long_session", "Long sessions: turn latency at turn N vs an early turn, interleaved")
async def long_session(profile: Profile) -> list[Row]:
    p = plan(profile)
    with scratch(profile, "sqlite", "sessions") as db:
        store = await MemoryStore.open(db.url)
        try:
            async with dev_server() as client:
                queue = task_queue("sessions")
                registry = AgentRegistry()
                registry.script(AGENT)(reply)
                async with cairn_worker(client, store, queue, registry):
                    long, marks = await run_session(client, queue, p)
                starts = await run_starts(long)
        finally:
            await store.close()
    from bench.charts import session_chart

    # The committed chart comes from the full profile; a quick run's goes to its workdir.
    session_chart(
        long.latencies,
        starts,
        [(m.turn, median(m.long_ms), median(m.fresh_ms)) for m in marks],
        CHART if profile.full else profile.workdir / CHART.name,
        f"profile {profile.name}: {len(long.latencies):,} turns in {len(starts) + 1} runs "
        f"(turns_per_run={p.turns_per_run}), SQLite memory",
    )
    return rows(p, marks, starts)
