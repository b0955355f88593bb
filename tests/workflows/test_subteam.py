"""Sub-teams: a child workflow with its own run namespace, the session shared, cancellation."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError

from activities import AgentContext, AgentOutput
from memory import NotFound
from memory.context import ContextSpec
from tests.workflows.harness import TENANT, Team, agent, run_ns
from workflows.contracts import ChainSpec, Step, SubTeam
from workflows.search_attributes import SESSION, TEAM


def session_team(session: str, sub: ChainSpec) -> ChainSpec:
    return ChainSpec(
        name="lead-team",
        tenant=TENANT,
        session=session,
        input="quarterly numbers",
        agents=(agent("lead"), agent("closer", "python:closer", context=ContextSpec())),
        nodes=(
            Step(agent="lead"),
            SubTeam(team=sub, task="Analyse: {input}"),
            Step(agent="closer"),
        ),
    )


async def test_sub_team_runs_as_a_child_with_its_own_run_namespace_and_the_shared_session(
    team: Team,
) -> None:
    session = f"s-{uuid.uuid4().hex[:8]}"
    tasks: dict[str, str] = {}
    team.registry.script("lead")(lambda s, m, t: "Lead: let the analysts look.")
    team.registry.script("checker")(lambda s, m, t: "Checker: the analysis holds.")

    @team.registry.agent("analyst")
    async def analyst(ctx: AgentContext) -> AgentOutput:
        tasks["analyst"] = ctx.input.task
        return AgentOutput(text="Analyst: revenue is up.")

    @team.registry.agent("closer")
    async def closer(ctx: AgentContext) -> AgentOutput:
        return AgentOutput(text=" / ".join(m.content for m in ctx.context.messages))

    sub = ChainSpec(
        name="analysts",
        tenant=TENANT,
        agents=(agent("analyst", "python:analyst"), agent("checker")),
        nodes=(Step(agent="analyst"), Step(agent="checker", sees=("analyst",))),
    )
    async with team.worker():
        handle, result = await team.run(session_team(session, sub))
        child = team.client.get_workflow_handle(result.children[0])
        child_description = await child.describe()

    assert result.status == "completed"
    assert result.children == (f"{handle.id}.analysts.1",)
    assert [s.step for s in result.steps] == ["lead", "analyst", "checker", "closer"]
    assert tasks["analyst"] == "Analyse: quarterly numbers"
    # The child's outputs are in its own run namespace, written by its own workflow.
    child_ns = run_ns(child.id)
    assert await team.text(child_ns, "output:analyst") == "Analyst: revenue is up."
    with pytest.raises(NotFound):
        await team.store.get(run_ns(handle.id), "output:analyst")
    commits = await team.step_commits(child.id)
    assert sorted(commits) == ["analyst", "checker"]
    # One session transcript, written by parent and child, which the closer read.
    transcript = await team.store.tail((TENANT, "session", session), "transcript", 10)
    assert [i.item["name"] for i in transcript] == ["lead", "analyst", "checker", "closer"]
    assert await team.text(run_ns(handle.id), "output:closer") == (
        "Lead: let the analysts look. / Analyst: revenue is up. / Checker: the analysis holds."
    )
    assert child_description.parent_id == handle.id
    attrs = child_description.typed_search_attributes
    assert (attrs.get(TEAM), attrs.get(SESSION)) == ("analysts", session)


async def test_cancelling_the_parent_cancels_the_sub_team(team: Team) -> None:
    started = asyncio.Event()
    team.registry.script("lead")(lambda s, m, t: "Lead.")

    @team.registry.agent("stuck")
    async def stuck(ctx: AgentContext) -> AgentOutput:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    @team.registry.agent("closer")
    async def closer(ctx: AgentContext) -> AgentOutput:
        raise AssertionError("the closer must never run")

    sub = ChainSpec(
        name="stuck-team",
        tenant=TENANT,
        agents=(agent("stuck", "python:stuck"),),
        nodes=(Step(agent="stuck"),),
    )
    async with team.worker():
        handle = await team.start(session_team(f"s-{uuid.uuid4().hex[:8]}", sub))
        await asyncio.wait_for(started.wait(), 20)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        child = team.client.get_workflow_handle(f"{handle.id}.stuck-team.1")
        child_status = (await child.describe()).status
    assert isinstance(failure.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert child_status == WorkflowExecutionStatus.CANCELED
    assert sorted(await team.step_commits(handle.id)) == ["lead"]
    assert await team.step_commits(child.id) == {}


def test_a_sub_team_must_stay_in_the_tenant() -> None:
    sub = ChainSpec(
        name="elsewhere", tenant="globex", agents=(agent("x"),), nodes=(Step(agent="x"),)
    )
    with pytest.raises(ValueError, match="tenant 'globex'"):
        session_team("s-1", sub)
