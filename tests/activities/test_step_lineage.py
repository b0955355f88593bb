"""A step's lineage names what it read through its tools and agent code, with versions."""

from __future__ import annotations

from pydantic import BaseModel

from activities import AgentContext, AgentOutput
from activities.contracts import StepRecord
from memory import MemoryRef, MemoryStore
from memory.context import ContextSpec
from tests.activities.conftest import TENANT, Harness, Recorder, agent, step_input, tool_call

USER = (TENANT, "user", "u-7")


class Fact(BaseModel):
    text: str


async def remembered_name(store: MemoryStore) -> MemoryRef:
    async with store.commit() as c:
        c.put(USER, "name", {"text": "My name is Ada."})
    return (await store.get(USER, "name")).ref


async def lineage_of(store: MemoryStore, workflow_id: str) -> StepRecord:
    (commit,) = await store.list_commits(workflow_id=workflow_id)
    return StepRecord.model_validate(commit.result)


async def test_a_recall_through_a_tool_is_in_the_lineage_and_the_result(
    harness: Harness, store: MemoryStore
) -> None:
    name = await remembered_name(store)
    harness.registry.script("support")(
        Recorder([tool_call("recall", query="name", where="user"), "Welcome back, Ada!"])
    )
    spec = agent("support", tools=("recall",), context=ContextSpec(transcript=None))
    async with harness.worker(store=store):
        wf, (result,) = await harness.steps(step_input(spec, "turn-1", user="u-7"))

    assert name in (await lineage_of(store, wf)).input_refs
    assert name in result.reads  # what the Temporal UI shows for the step


async def test_a_get_by_agent_code_is_in_the_lineage(harness: Harness, store: MemoryStore) -> None:
    name = await remembered_name(store)

    @harness.registry.agent("greeter")
    async def greeter(ctx: AgentContext) -> AgentOutput:
        fact = await ctx.memory.get(USER, "name", model=Fact)  # a typed read has a version too
        return AgentOutput(text=f"Hello! ({fact.text})")

    spec = agent("greeter", model="python:greeter", context=ContextSpec(transcript=None))
    async with harness.worker(store=store):
        wf, (result,) = await harness.steps(step_input(spec, "greet", user="u-7"))

    assert "My name is Ada." in result.preview
    assert (await lineage_of(store, wf)).input_refs == (name,)
    assert result.reads == (name,)
