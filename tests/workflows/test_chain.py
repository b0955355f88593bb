"""`ChainWorkflow` happy paths: the research team, handoffs, loop bounds and memory writes."""

from __future__ import annotations

import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities import AgentContext, AgentOutput
from activities.contracts import MemoryWrite, StepRecord
from memory.context import ContextSpec, SearchSource
from tests.workflows.harness import TENANT, Team, agent, history_events, run_ns
from workflows.chain import ChainWorkflow
from workflows.contracts import ChainSpec, Handoff, Loop, Step, Write
from workflows.search_attributes import SESSION, TEAM
from workflows.search_attributes import TENANT as TENANT_KEY
from workflows.teams import ANGLES, research_team


def decode(client: Client, payload: object) -> object:
    return client.data_converter.payload_converter.from_payloads([payload])[0]


async def test_research_team_fans_out_loops_and_versions_each_round(team: Team) -> None:
    spec = research_team(TENANT, "How do agent teams keep context durable?", model="scripted")
    async with team.worker():
        handle, result = await team.run(spec)
        progress = await handle.query(ChainWorkflow.progress)

    assert result.status == "completed"
    assert (progress.status, progress.done, progress.current) == ("completed", 8, ())
    names = [s.step for s in result.steps]
    assert names[0] == "planner"
    assert sorted(names[1:4]) == [f"research-{i}" for i in range(1, len(ANGLES) + 1)]
    assert names[4:] == ["writer", "reviewer", "writer", "reviewer"]
    assert [s.verdict for s in result.steps if s.step == "reviewer"] == ["revise", "approve"]
    assert result.final is not None and result.final.verdict == "approve"

    # Fan-out: the researchers were scheduled together, before any of them finished.
    events = (await handle.fetch_history()).events
    scheduled = [
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and decode(team.client, e.user_metadata.summary).startswith("researcher:")
    ]
    first_done = next(
        i
        for i, e in enumerate(events)
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED and i > scheduled[0]
    )
    assert len(scheduled) == 3 and scheduled[-1] < first_done

    # Fan-in: the writer's first draft read all three researchers' outputs.
    ns = run_ns(handle.id)
    versions = await team.store.history(ns, "output:writer")
    assert len(versions) == 2
    assert versions[0].value["text"].startswith("[scripted] Draft report")
    assert versions[1].value["text"].startswith("[scripted] Revised report")
    commits = await team.step_commits(handle.id)
    first_draft = StepRecord.model_validate(commits["writer"][0].result)
    read = {(r.key, r.version) for r in first_draft.input_refs}
    assert {(f"output:research-{i}", 1) for i in range(1, 4)} <= read
    # Every step committed exactly once, the reviewer's revision request before the rewrite.
    assert {k: len(v) for k, v in commits.items()} == {
        "planner": 1,
        "research-1": 1,
        "research-2": 1,
        "research-3": 1,
        "writer": 2,
        "reviewer": 2,
    }
    second_draft = StepRecord.model_validate(commits["writer"][1].result)
    assert ("output:reviewer", 1) in {(r.key, r.version) for r in second_draft.input_refs}

    description = await handle.describe()
    assert description.typed_search_attributes.get(TENANT_KEY) == TENANT
    assert description.typed_search_attributes.get(TEAM) == "research"


async def test_step_activity_summary_names_agent_and_step(team: Team) -> None:
    spec = ChainSpec(
        name="one",
        tenant=TENANT,
        agents=(agent("clerk"),),
        nodes=(Step(agent="clerk", name="file-it"),),
    )
    async with team.worker():
        handle, _ = await team.run(spec)
    (event,) = await history_events(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    assert event.activity_task_scheduled_event_attributes.activity_type.name == "agent_step"
    assert decode(team.client, event.user_metadata.summary) == "clerk: file-it"


async def test_chain_started_without_search_attributes_sets_them(team: Team) -> None:
    spec = ChainSpec(
        name="plain",
        tenant=TENANT,
        session="s-1",
        agents=(agent("clerk"),),
        nodes=(Step(agent="clerk"),),
    )
    async with team.worker():
        handle = await team.client.start_workflow(
            ChainWorkflow.run, spec, id=f"plain-{uuid.uuid4().hex[:8]}", task_queue=team.task_queue
        )
        await handle.result()
    attrs = (await handle.describe()).typed_search_attributes
    assert (attrs.get(TENANT_KEY), attrs.get(TEAM), attrs.get(SESSION)) == (TENANT, "plain", "s-1")


async def test_handoffs_route_between_python_and_scripted_agents(team: Team) -> None:
    seen: dict[str, str] = {}

    @team.registry.script("triage")
    def triage(system, messages, tools) -> str:
        return "This is about money.\nHANDOFF: billing"

    @team.registry.agent("billing")
    async def billing(ctx: AgentContext) -> AgentOutput:
        seen["billing"] = ctx.context.system
        return AgentOutput(text=f"Refund needed for: {ctx.input.task}", handoff="refunds")

    @team.registry.agent("refunds")
    async def refunds(ctx: AgentContext) -> AgentOutput:
        seen["refunds"] = ctx.context.system
        return AgentOutput(text="Refunded.", handoff="nobody")  # not on the team: routing ends

    spec = ChainSpec(
        name="support",
        tenant=TENANT,
        input="I was charged twice",
        agents=(
            agent("triage"),
            agent("billing", "python:billing"),
            agent("refunds", "python:refunds"),
        ),
        nodes=(Handoff(start=Step(agent="triage")),),
    )
    async with team.worker():
        handle, result = await team.run(spec)
    assert [(s.step, s.agent, s.handoff) for s in result.steps] == [
        ("triage", "triage", "billing"),
        ("billing-hop1", "billing", "refunds"),
        ("refunds-hop2", "refunds", "nobody"),
    ]
    # Each agent saw the output of the one that handed off to it.
    assert 'key="output:triage"' in seen["billing"] and "This is about money." in seen["billing"]
    assert 'key="output:billing-hop1"' in seen["refunds"]
    assert "I was charged twice" in await team.text(run_ns(handle.id), "output:billing-hop1")


async def test_handoffs_stop_at_max_hops(team: Team) -> None:
    team.registry.script("ping")(lambda s, m, t: "HANDOFF: pong")
    team.registry.script("pong")(lambda s, m, t: "HANDOFF: ping")
    spec = ChainSpec(
        name="pingpong",
        tenant=TENANT,
        agents=(agent("ping"), agent("pong")),
        nodes=(Handoff(start=Step(agent="ping"), max_hops=3),),
    )
    async with team.worker():
        _, result = await team.run(spec)
    assert [s.step for s in result.steps] == ["ping", "pong-hop1", "ping-hop2", "pong-hop3"]


async def test_review_loop_stops_at_max_rounds(team: Team) -> None:
    drafts = iter(range(1, 100))
    team.registry.script("drafter")(lambda s, m, t: f"draft {next(drafts)}")
    team.registry.script("critic")(lambda s, m, t: "Still weak.\nVERDICT: revise")
    spec = ChainSpec(
        name="stubborn",
        tenant=TENANT,
        agents=(agent("drafter"), agent("critic"), agent("closer")),
        nodes=(
            Loop(
                steps=(Step(agent="drafter"), Step(agent="critic", sees=("drafter",))), max_rounds=2
            ),
            Step(agent="closer", sees=("drafter",)),
        ),
    )
    async with team.worker():
        handle, result = await team.run(spec)
    assert result.status == "completed"
    assert [s.step for s in result.steps] == ["drafter", "critic", "drafter", "critic", "closer"]
    versions = await team.store.history(run_ns(handle.id), "output:drafter")
    assert [v.value["text"] for v in versions] == ["draft 1", "draft 2"]


async def test_write_node_ingests_documents_a_later_step_recalls(team: Team) -> None:
    docs = f"{TENANT}/docs-{uuid.uuid4().hex[:6]}"
    writes = (
        MemoryWrite(namespace=docs, key="otters", value={"text": "Sea otters hold hands asleep."}),
        MemoryWrite(namespace=docs, key="tax", value={"text": "Tax forms are due in April."}),
    )
    librarian = agent(
        "librarian",
        context=ContextSpec(transcript=None, search=SearchSource(where=docs, limit=1)),
        reads=(docs,),
    )
    team.registry.script("librarian")(lambda system, m, t: system)
    spec = ChainSpec(
        name="library",
        tenant=TENANT,
        input="How do otters sleep?",
        agents=(librarian,),
        nodes=(Write(writes=writes), Step(agent="librarian")),
    )
    async with team.worker():
        handle, result = await team.run(spec)
    entry = await team.store.get(tuple(docs.split("/")), "otters")
    assert entry.provenance is not None
    assert (entry.provenance.workflow_id, entry.provenance.agent) == (handle.id, "library")
    writes_committed = [
        c
        for c in await team.store.list_commits(workflow_id=handle.id)
        if c.key.startswith("write:")
    ]
    assert len(writes_committed) == 1 and len(writes_committed[0].writes) == 2
    recalled = await team.text(run_ns(handle.id), "output:librarian")
    assert "Sea otters hold hands asleep." in recalled and "Tax forms" not in recalled
    assert [s.step for s in result.steps] == ["librarian"]
