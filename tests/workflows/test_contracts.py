"""What a new user's team gets told before anything starts, and what `scripted` answers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from activities.contracts import AgentSpec
from tests.workflows.harness import TENANT, Team, agent
from workflows.contracts import Approval, ChainSpec, Handoff, Step


def team(*nodes: Step | Approval | Handoff, agents: tuple[AgentSpec, ...] = ()) -> ChainSpec:
    return ChainSpec(
        name="mine", tenant=TENANT, agents=agents or (agent("a"), agent("b")), nodes=nodes
    )


def test_an_agent_without_a_model_names_itself_and_the_valid_ids() -> None:
    with pytest.raises(ValidationError) as info:
        ChainSpec.model_validate(
            {
                "name": "mine",
                "tenant": TENANT,
                "agents": [{"name": "researcher", "instructions": "Research."}],
                "nodes": [{"agent": "researcher"}],
            }
        )
    message = str(info.value)
    assert "'researcher' names no model" in message
    assert '"openai:<model>"' in message and '"scripted"' in message


def test_a_model_id_without_a_provider_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"'gpt-4o': no provider .*\"openai:gpt-4o\""):
        team(Step(agent="a"), agents=(agent("a", model="gpt-4o"),))


def test_sees_naming_no_step_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"step 'b' sees 'writer', which names no step"):
        team(Step(agent="a"), Step(agent="b", sees=("writer",)))


def test_sees_may_name_a_later_step_or_a_handoff_hop() -> None:
    spec = team(Handoff(start=Step(agent="a", sees=("b",))), Step(agent="b", sees=("b-hop1", "a")))
    assert spec.nodes[1].kind == "step"


def test_an_approval_editing_no_step_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"approval 'ok' edits 'c', which names no step"):
        team(Step(agent="a"), Approval(name="ok", edits="c"))


async def test_the_demo_scripts_do_not_answer_a_users_agent_of_the_same_name(
    team: Team,
) -> None:
    spec = ChainSpec(
        name="mine",
        tenant=TENANT,
        agents=(agent("researcher"),),
        nodes=(Step(agent="researcher"),),
        input="What is durable execution?",
    )
    async with team.worker():
        _, result = await team.run(spec)
    assert result.final is not None
    # The plain scripted model restates the task; the demo's researcher would list findings.
    assert "Findings" not in result.final.preview
    assert "What is durable execution?" in result.final.preview
