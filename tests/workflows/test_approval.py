"""Human approval in a chain: approve (with an edit), reject, timeout defaults, bad decisions."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities import AgentContext, AgentOutput
from memory import NotFound
from tests.workflows.harness import (
    TENANT,
    Team,
    agent,
    gated_agent,
    history_events,
    run_ns,
    wait_until,
)
from workflows.chain import ChainWorkflow
from workflows.contracts import Approval, ChainSpec, Decision, Step


@pytest.fixture
def publisher_saw(team: Team) -> list[str]:
    """The draft text the ``publisher`` agent saw, per call."""
    saw: list[str] = []
    team.registry.script("drafter")(lambda s, m, t: "Draft: prices rise 5%.")

    @team.registry.agent("publisher")
    async def publisher(ctx: AgentContext) -> AgentOutput:
        entry = await ctx.memory.get(ctx.bindings["run"], "output:drafter")
        saw.append(entry.value["text"])
        return AgentOutput(text=f"Published: {entry.value['text']}")

    return saw


def approval_chain(**approval: Any) -> ChainSpec:
    return ChainSpec(
        name="release",
        tenant=TENANT,
        agents=(agent("drafter"), agent("publisher", "python:publisher")),
        nodes=(
            Step(agent="drafter"),
            Approval(edits="drafter", **approval),
            Step(agent="publisher", sees=("drafter",)),
        ),
    )


async def waiting(handle: WorkflowHandle[Any, Any], name: str = "approval", done: int = 1) -> None:
    async def probe() -> bool:
        progress = await handle.query(ChainWorkflow.progress)
        return progress.waiting_for == name and progress.done == done

    await wait_until(probe)


async def test_approve_with_edit_writes_a_new_version_a_later_step_sees(
    team: Team, publisher_saw: list[str]
) -> None:
    async with team.worker():
        handle = await team.start(approval_chain())
        await waiting(handle)
        ack = await handle.execute_update(
            ChainWorkflow.decide, Decision(approve=True, edit="Draft: prices rise 4%.", by="ada")
        )
        result = await handle.result()
    assert (ack.approval, ack.approved) == ("approval", True)
    assert result.status == "completed"
    assert [s.step for s in result.steps] == ["drafter", "publisher"]
    versions = await team.store.history(run_ns(handle.id), "output:drafter")
    assert [v.value["text"] for v in versions] == [
        "Draft: prices rise 5%.",
        "Draft: prices rise 4%.",
    ]
    assert versions[1].provenance is not None and versions[1].provenance.agent == "human:ada"
    assert publisher_saw == ["Draft: prices rise 4%."]
    recorded = (await team.store.get(run_ns(handle.id), "approval:approval")).value
    assert recorded == {"approved": True, "by": "ada", "edited": True}


async def test_reject_stops_the_chain(team: Team, publisher_saw: list[str]) -> None:
    async with team.worker():
        handle = await team.start(approval_chain())
        await waiting(handle)
        await handle.execute_update(ChainWorkflow.decide, Decision(approve=False, by="bob"))
        result = await handle.result()
    assert result.status == "rejected"
    assert [s.step for s in result.steps] == ["drafter"]
    assert publisher_saw == []
    with pytest.raises(NotFound):
        await team.store.get(run_ns(handle.id), "output:publisher")
    recorded = (await team.store.get(run_ns(handle.id), "approval:approval")).value
    assert recorded == {"approved": False, "by": "bob", "edited": False}
    assert len(await team.store.history(run_ns(handle.id), "output:drafter")) == 1


@pytest.mark.parametrize(("default", "status"), [("approve", "completed"), ("reject", "rejected")])
async def test_timeout_applies_the_default(
    team: Team, publisher_saw: list[str], default: str, status: str
) -> None:
    spec = approval_chain(timeout=timedelta(seconds=1), default=default)
    async with team.worker():
        handle, result = await team.run(spec)
    assert result.status == status
    assert len(publisher_saw) == (1 if default == "approve" else 0)
    recorded = (await team.store.get(run_ns(handle.id), "approval:approval")).value
    assert recorded == {"approved": default == "approve", "by": "timeout", "edited": False}
    assert len(await history_events(handle, EventType.EVENT_TYPE_TIMER_FIRED)) == 1


async def test_decide_without_a_matching_pending_approval_is_rejected(
    team: Team, publisher_saw: list[str]
) -> None:
    started, release = gated_agent(team.registry, "slow")
    spec = approval_chain().model_copy(
        update={
            "agents": (*approval_chain().agents, agent("slow", "python:slow")),
            "nodes": (Step(agent="slow"), *approval_chain().nodes),
        }
    )
    async with team.worker():
        handle = await team.start(spec)
        await asyncio.wait_for(started.wait(), 20)
        with pytest.raises(WorkflowUpdateFailedError) as nothing_pending:
            await handle.execute_update(ChainWorkflow.decide, Decision(approve=True))
        release.set()
        await waiting(handle, done=2)
        with pytest.raises(WorkflowUpdateFailedError) as wrong_name:
            await handle.execute_update(
                ChainWorkflow.decide, Decision(approval="other", approve=True)
            )
        # Two people answer at once: exactly one decision is accepted.
        outcomes = await asyncio.gather(
            handle.execute_update(ChainWorkflow.decide, Decision(approve=False, by="first")),
            handle.execute_update(ChainWorkflow.decide, Decision(approve=True, by="second")),
            return_exceptions=True,
        )
        result = await handle.result()
    for error in (nothing_pending.value, wrong_name.value):
        assert isinstance(error.cause, ApplicationError)
        assert "no pending approval" in error.cause.message
    assert "waiting for 'approval'" in str(wrong_name.value.cause.message)
    accepted = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(accepted) == 1
    assert result.status == ("completed" if accepted[0].approved else "rejected")
    # Rejected updates leave no trace in history; the accepted one does.
    assert (
        len(await history_events(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED))
        == 1
    )


async def test_edit_is_rejected_when_the_approval_edits_nothing(team: Team) -> None:
    team.registry.script("drafter")(lambda s, m, t: "Draft.")
    spec = ChainSpec(
        name="plain-approval",
        tenant=TENANT,
        agents=(agent("drafter"),),
        nodes=(Step(agent="drafter"), Approval()),
    )
    async with team.worker():
        handle = await team.start(spec)
        await waiting(handle)
        with pytest.raises(WorkflowUpdateFailedError) as error:
            await handle.execute_update(ChainWorkflow.decide, Decision(approve=True, edit="lost"))
        await handle.execute_update(ChainWorkflow.decide, Decision(approve=True))
        result = await handle.result()
    assert "no output to edit" in str(error.value.cause)
    assert result.status == "completed"


async def test_a_second_approval_of_the_same_name_waits_for_its_own_decision(team: Team) -> None:
    team.registry.script("drafter")(lambda s, m, t: "Draft.")
    team.registry.script("editor")(lambda s, m, t: "Edited.")
    spec = ChainSpec(
        name="two-gates",
        tenant=TENANT,
        agents=(agent("drafter"), agent("editor")),
        nodes=(Step(agent="drafter"), Approval(), Step(agent="editor"), Approval()),
    )
    async with team.worker():
        handle = await team.start(spec)
        await waiting(handle, done=1)
        await handle.execute_update(ChainWorkflow.decide, Decision(approve=True, by="first"))
        await waiting(handle, done=2)
        await handle.execute_update(ChainWorkflow.decide, Decision(approve=False, by="second"))
        result = await handle.result()
    assert result.status == "rejected"
    assert [s.step for s in result.steps] == ["drafter", "editor"]
    versions = await team.store.history(run_ns(handle.id), "approval:approval")
    assert [v.value["by"] for v in versions] == ["first", "second"]
