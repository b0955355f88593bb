"""Record the histories the replay tests check: ``python -m tests.workflows.record_histories``.

Run it after a deliberate change to workflow code (and version the change with
``workflow.patched`` when old runs may still be open); commit the files it writes. It starts
its own dev server and runs each scenario on the production worker with a SQLite memory file.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from activities import AgentContext, AgentOutput, AgentRegistry
from activities.contracts import AgentSpec
from activities.demo import demo_model
from activities.llm import ChatMessage, ToolSpec
from cairn.devserver import start_local
from cairn.runtime import Settings, build_worker
from memory import MemoryStore
from memory.context import ContextSpec
from workflows.chain import ChainWorkflow, team_search_attributes
from workflows.contracts import (
    Approval,
    ChainSpec,
    Decision,
    Handoff,
    SessionInput,
    Step,
    SubTeam,
    Turn,
)
from workflows.session import SessionWorkflow, session_search_attributes, session_workflow_id
from workflows.teams import research_team

HISTORIES = Path(__file__).parent / "histories"
TENANT = "acme"
TASK_QUEUE = "record-histories"


def registry() -> AgentRegistry:
    """The agents the recorded scenarios use (replay needs none of them)."""
    agents = AgentRegistry()

    @agents.script("router")
    def router(system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
        return "Routing to the editor.\nHANDOFF: editor"

    @agents.agent("editor")
    async def editor(ctx: AgentContext) -> AgentOutput:
        return AgentOutput(text="Edited the report.")

    return agents


def full_chain() -> ChainSpec:
    """Every node kind: write, step, parallel, loop, handoff, approval (with an edit), sub-team."""
    research = research_team(TENANT, "How do agent teams keep context durable?", model="scripted")
    sub = ChainSpec(
        name="checkers",
        tenant=TENANT,
        agents=(
            AgentSpec(
                model="scripted", name="checker", instructions="Check.", context=ContextSpec()
            ),
        ),
        nodes=(Step(agent="checker"),),
    )
    extra = (
        AgentSpec(
            model="scripted",
            name="router",
            instructions="Route.",
            context=ContextSpec(transcript=None),
        ),
        AgentSpec(name="editor", instructions="Edit.", model="python:editor"),
    )
    return research.model_copy(
        update={
            "name": "full",
            "session": "s-full",
            "agents": (*research.agents, *extra),
            "nodes": (
                *research.nodes,
                Handoff(start=Step(agent="router")),
                Approval(edits="writer"),
                SubTeam(team=sub),
            ),
        }
    )


async def until_waiting(handle: WorkflowHandle[Any, Any]) -> None:
    while (await handle.query(ChainWorkflow.progress)).waiting_for is None:
        await asyncio.sleep(0.05)


async def save(client: Client, name: str, workflow_id: str, run_id: str | None = None) -> None:
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json())
    print(f"{name}: {len(history.events)} events")


async def record(client: Client) -> None:
    """Run each scenario and save its history."""
    start = {"task_queue": TASK_QUEUE}
    spec = full_chain()
    handle = await client.start_workflow(
        ChainWorkflow.run,
        spec,
        id="chain-completed",
        search_attributes=team_search_attributes(spec),
        **start,
    )
    await until_waiting(handle)
    await handle.execute_update(
        ChainWorkflow.decide, Decision(approve=True, edit="The edited report.", by="ada")
    )
    result = await handle.result()
    await save(client, "chain_completed", handle.id)
    await save(client, "chain_sub_team", result.children[0])

    waiting = spec.model_copy(
        update={"nodes": (spec.nodes[1], Approval(timeout=timedelta(days=1)))}
    )
    handle = await client.start_workflow(ChainWorkflow.run, waiting, id="chain-waiting", **start)
    await until_waiting(handle)
    await save(client, "chain_waiting", handle.id)
    await handle.terminate("recorded")

    broken = spec.model_copy(
        update={
            "agents": (
                *spec.agents,
                AgentSpec(name="ghost", instructions=".", model="python:ghost"),
            ),
            "nodes": (spec.nodes[1], Step(agent="ghost")),
        }
    )
    handle = await client.start_workflow(ChainWorkflow.run, broken, id="chain-failed", **start)
    try:
        await handle.result()
    except WorkflowFailureError:
        await save(client, "chain_failed", handle.id)
    else:
        raise AssertionError("the chain with an unknown agent should have failed")

    session = SessionInput(
        tenant=TENANT,
        session="s-replay",
        user="u-replay",
        agent=AgentSpec(
            model=demo_model("support"),
            name="support",
            instructions="Help.",
            tools=("remember", "recall"),
        ),
        turns_per_run=3,
    )
    sid = session_workflow_id(TENANT, "s-replay")
    first = await client.start_workflow(
        SessionWorkflow.run,
        session,
        id=sid,
        search_attributes=session_search_attributes(session),
        **start,
    )
    texts = ["Hi, my name is Ada", "What can you do?", "Thanks", "Do you know my name?"]
    for i, text in enumerate(texts, start=1):
        handle = client.get_workflow_handle_for(SessionWorkflow.run, sid)
        await handle.execute_update(SessionWorkflow.send, Turn(message_id=f"m{i}", text=text))
    await handle.execute_update(SessionWorkflow.send, Turn(message_id="m2", text="resent"))
    await handle.signal(SessionWorkflow.end)
    await handle.result()
    await save(client, "session_continued", sid, first.result_run_id)
    await save(client, "session_ended", sid)


async def record_continued(client: Client) -> None:
    """A chain long enough to continue as new (on a server suggesting it after 40 events)."""
    spec = full_chain()
    steps = tuple(Step(agent="planner", name=f"p{i}") for i in range(12))
    long = spec.model_copy(update={"nodes": steps})
    handle = await client.start_workflow(
        ChainWorkflow.run, long, id="chain-continued", task_queue=TASK_QUEUE
    )
    await handle.result()
    await save(client, "chain_continued", handle.id, handle.result_run_id)


async def main(*, continued_only: bool = False) -> None:
    """Start dev servers and workers, record, and shut them down."""
    HISTORIES.mkdir(exist_ok=True)
    low_limits = [("limit.historyCount.suggestContinueAsNew", 40)]
    scenarios = [(low_limits, record_continued)]
    if not continued_only:
        scenarios.insert(0, ([], record))
    for dynamic_config, scenario in scenarios:
        env = await start_local(dynamic_config=dynamic_config)
        with tempfile.TemporaryDirectory() as tmp:
            store = await MemoryStore.open(f"sqlite:///{tmp}/memory.db")
            try:
                settings = Settings(task_queue=TASK_QUEUE, shutdown_grace=1)
                async with build_worker(env.client, store, settings, registry()):
                    await scenario(env.client)
            finally:
                await store.close()
                await env.shutdown()


if __name__ == "__main__":
    # --continued-only: record the continued-as-new chain alone, keeping the other histories.
    asyncio.run(main(continued_only="--continued-only" in sys.argv))
