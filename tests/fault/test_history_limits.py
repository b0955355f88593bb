"""Scenario 11: a dev server with very low history limits, a 300-turn session, a 200-step chain.

The server suggests continue-as-new at `SUGGEST` events and terminates any run that reaches
`ERROR`. The session and the chain (with an approval halfway, answered by an update) continue
as new when suggested: no run reaches the limit, no turn or update is lost, every step commits
once, and the steps' idempotency keys differ across runs (activity ids restart in each run).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.contracts import AgentSpec
from memory import MemoryStore
from memory.context import ContextSpec
from tests.fault.agents import registry
from tests.fault.checker import History
from tests.fault.runs import send, spec, start_chain, step
from tests.fault.servers import DevServer
from tests.workflows.harness import TENANT, Team, run_ns, step_commits, wait_until
from workflows.chain import ChainWorkflow
from workflows.contracts import Approval, Decision, SessionInput
from workflows.session import SessionWorkflow

pytestmark = pytest.mark.fault

SUGGEST, ERROR = 60, 150
TURNS, STEPS = 300, 200


async def runs_of(client: Client, workflow_id: str) -> list[list[Any]]:
    """The events of every run of a workflow, first run first."""
    handle = client.get_workflow_handle(workflow_id)
    histories = [(await handle.fetch_history()).events]
    while True:
        started = histories[0][0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return histories
        earlier = client.get_workflow_handle(workflow_id, run_id=started.continued_execution_run_id)
        histories.insert(0, (await earlier.fetch_history()).events)


def check_runs(runs: list[list[Any]]) -> None:
    assert len(runs) > 2
    assert max(len(events) for events in runs) < ERROR
    for events in runs[:-1]:
        assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    assert runs[-1][-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


@pytest.mark.timeout(180)
async def test_a_long_session_and_a_long_chain_stay_under_low_history_limits(
    dev_server: Callable[..., Awaitable[DevServer]], sqlite_store: MemoryStore
) -> None:
    server = await dev_server(
        {
            "limit.historyCount.suggestContinueAsNew": SUGGEST,
            "limit.historyCount.error": ERROR,
            "limit.historyCount.warn": SUGGEST,
        }
    )
    team = Team(await server.client(), f"limits-{uuid.uuid4().hex[:8]}", sqlite_store, registry)
    half = STEPS // 2
    nodes = [step("echo", f"task {i}", name=f"s{i}") for i in range(STEPS)]
    chain = spec(
        *nodes[:half],
        Approval(prompt="Go on?", timeout=timedelta(minutes=5)),
        *nodes[half:],
        agents=("echo=scripted",),
    )
    inp = SessionInput(
        tenant=TENANT,
        session=f"low-{uuid.uuid4().hex[:8]}",
        agent=AgentSpec(
            model="scripted",
            name="echo",
            instructions="Echo.",
            context=ContextSpec(last_messages=4),
        ),
    )

    async def talk() -> list[Any]:
        return [
            await send(team.client, team.task_queue, inp, f"m{n}", f"turn {n}")
            for n in range(1, TURNS + 1)
        ]

    async with team.worker():
        handle = await start_chain(team.client, team.task_queue, chain)
        talking = asyncio.create_task(talk())

        async def waiting() -> bool:
            progress = await handle.query(ChainWorkflow.progress)
            return progress.waiting_for == "approval"

        await wait_until(waiting, timeout=120)
        ack = await handle.execute_update(ChainWorkflow.decide, Decision(approve=True, by="tester"))
        result = await asyncio.wait_for(handle.result(), 120)
        replies = await asyncio.wait_for(talking, 120)
        session = team.session(inp)
        await session.signal(SessionWorkflow.end)
        end = await session.result()

    # The chain: every step once, in order, across runs that never reached the limit.
    assert ack.approved and result.status == "completed"
    assert [s.step for s in result.steps] == [f"s{i}" for i in range(STEPS)]
    check_runs(await runs_of(team.client, handle.id))
    commits = await step_commits(sqlite_store, handle.id)
    history = History()
    for i in range(STEPS):
        history.record(f"s{i}", "ok")
    history.check(name for name, found in commits.items() for _ in found)
    keys = [c.key for found in commits.values() for c in found]
    run_ids = {c.provenance.run_id for found in commits.values() for c in found}
    activity_ids = [c.provenance.activity_id for found in commits.values() for c in found]
    assert len(set(keys)) == STEPS and len(run_ids) > 2
    assert len(set(activity_ids)) < STEPS  # activity ids restarted; the run ids tell them apart
    approval = await sqlite_store.get(run_ns(handle.id), "approval:approval")
    assert approval.value == {"approved": True, "by": "tester", "edited": False}

    # The session: every turn answered once, in order, and the conversation goes on.
    assert [r.turn for r in replies] == list(range(1, TURNS + 1)) and end.turns == TURNS
    assert all(r.text.startswith(f"turn {r.turn} ") for r in replies)
    check_runs(await runs_of(team.client, session.id))
    turns = await step_commits(sqlite_store, session.id)
    assert sorted(turns) == sorted(f"turn-{n}" for n in range(1, TURNS + 1))
    assert all(len(c) == 1 for c in turns.values())
