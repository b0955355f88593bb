"""Grants bound what a step reads and writes; caller mistakes fail fast, naming the problem."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowFailureError

from activities import AgentContext, AgentOutput, AgentSpec
from activities.contracts import MemoryWrite, ToolCallRecord, WriteInput
from memory import MemoryStore, NotFound
from memory.context import ContextSpec, Pinned, SearchSource
from tests.activities.conftest import (
    TENANT,
    Harness,
    Recorder,
    agent,
    app_error,
    attempts,
    seed,
    step_input,
    tool_call,
    transcript,
)
from tests.activities.workflows_for_tests import Steps, StepsWorkflow, WriteWorkflow

SECRET = "okapi"


def remember(where: str) -> dict[str, object]:
    args = {"key": "pet", "text": f"The user has an {SECRET}.", "where": where}
    return {"tool_calls": [{"name": "remember", "arguments": args}]}


async def test_an_agent_reading_only_its_run_sees_no_session_or_tenant_data(
    harness: Harness,
) -> None:
    await seed(
        harness.store,
        ((TENANT, "session", "s-1"), "brief", {"text": f"The {SECRET} plan."}),
        ((TENANT, "docs"), "animals", {"text": f"Every {SECRET} is striped."}),
    )
    await transcript(harness.store, "s-1", ("user", f"my {SECRET} is ill"))
    model = Recorder([tool_call("recall", query=SECRET, where="tenant"), "nothing found"])
    harness.registry.script("loner")(model)
    spec = agent(
        "loner",
        reads=("{run}",),
        writes=("{run}",),
        tools=("recall",),
        context=ContextSpec(
            transcript="acme/session/s-1",
            pinned=(Pinned(where="acme/session/s-1", key="brief"),),
            search=SearchSource(where="tenant"),
        ),
    )
    async with harness.worker():
        wf, (result,) = await harness.steps(step_input(spec, "look", task=f"{SECRET} facts"))

    first, second = model.calls
    assert first.messages[:-1] == () and SECRET not in first.system
    assert second.messages[-1].role == "tool" and second.messages[-1].content == "[]"
    _, record = await harness.record(wf, "look")
    assert record.input_refs == ()
    assert record.tool_calls == (ToolCallRecord(name="recall", ok=True),)
    assert result.preview == "nothing found"


async def test_remember_outside_write_grants_is_a_tool_error_and_the_step_commits(
    harness: Harness,
) -> None:
    harness.registry.script_replies("support", [remember("user"), "I could not store that."])
    spec = agent("support", tools=("remember",))
    async with harness.worker():
        wf, (result,) = await harness.steps(step_input(spec, "t1", user="u-1"))

    _, record = await harness.record(wf, "t1")
    assert record.tool_calls == (ToolCallRecord(name="remember", ok=False),)
    assert result.preview == "I could not store that."
    with pytest.raises(NotFound):
        await harness.store.get((TENANT, "user", "u-1"), "pet")
    (logged,) = await harness.store.tail((TENANT, "run", wf), "tools")
    assert logged.commit_seq == result.commit_seq
    assert logged.item["result"] == "error: 'support' may not write 'acme/user/u-1'"


async def test_python_agent_writing_outside_its_grants_fails_fast(harness: Harness) -> None:
    calls: list[str] = []

    @harness.registry.agent("sneaky")
    async def sneaky(ctx: AgentContext) -> AgentOutput:
        calls.append(ctx.input.step)
        other = MemoryWrite(namespace="acme/user/u-2", key="pet", value="stolen")
        return AgentOutput(text="done", writes=(other,))

    spec = agent("sneaky", model="python:sneaky")
    async with harness.worker():
        handle = await harness.start(StepsWorkflow.run, Steps(steps=(step_input(spec),)))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    error = app_error(failed.value)
    assert (error.type, error.non_retryable) == ("AccessDenied", True)
    assert error.message == "'sneaky' may not write 'acme/user/u-2'"
    assert calls == ["s1"] and await attempts(handle) == [1]
    assert await harness.store.list_commits(workflow_id=handle.id) == []


async def fails_with(harness: Harness, spec: AgentSpec, **kw: object) -> tuple[str, str]:
    async with harness.worker():
        handle = await harness.start(StepsWorkflow.run, Steps(steps=(step_input(spec, **kw),)))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    error = app_error(failed.value)
    assert error.non_retryable and await attempts(handle) == [1]
    assert await harness.store.list_commits(workflow_id=handle.id) == []
    return error.type or "", error.message


async def test_unknown_python_agent(harness: Harness) -> None:
    kind, message = await fails_with(harness, agent("ghost", model="python:ghost"))
    assert kind == "UnknownAgent" and "'ghost'" in message


async def test_unknown_tool(harness: Harness) -> None:
    kind, message = await fails_with(harness, agent("helper", tools=("teleport",)))
    assert kind == "UnknownAgent" and "teleport" in message


async def test_scripted_model_naming_an_unregistered_script(harness: Harness) -> None:
    kind, message = await fails_with(harness, agent("helper", model="scripted:nope"))
    assert kind == "UnknownAgent" and "'nope'" in message


def test_model_id_without_a_provider_is_rejected_when_the_spec_is_built() -> None:
    with pytest.raises(ValidationError, match=r"'helper'.*'gpt-4o'.*openai:gpt-4o"):
        agent("helper", model="gpt-4o")


async def test_grants_naming_another_tenant(harness: Harness) -> None:
    kind, message = await fails_with(harness, agent("helper", reads=("{run}", "globex/docs")))
    assert kind == "InvalidInput" and "globex" in message


async def test_spec_unable_to_write_its_own_output_fails_before_the_model(
    harness: Harness,
) -> None:
    model = Recorder()
    harness.registry.script("mute")(model)
    kind, message = await fails_with(harness, agent("mute", writes=("{run}",)), session="s-1")
    assert kind == "AccessDenied" and "acme/session/s-1" in message
    assert model.calls == []


async def test_output_over_the_size_cap(harness: Harness, sqlite_url: str) -> None:
    @harness.registry.agent("verbose")
    async def verbose(ctx: AgentContext) -> AgentOutput:
        return AgentOutput(text="x" * 5000)

    small = await MemoryStore.open(sqlite_url, max_value_bytes=4096)
    harness.store = small
    try:
        kind, message = await fails_with(harness, agent("verbose", model="python:verbose"))
    finally:
        await small.close()
    assert kind == "ValueTooLarge" and "output:s1" in message and "4096" in message


@pytest.mark.parametrize(
    "grant", ["{tenat}/docs", "*/docs", "{run!r}", "acme/bad segment", "{0}", "acme/{"]
)
def test_malformed_grant_patterns_are_rejected_when_the_spec_is_built(grant: str) -> None:
    with pytest.raises(ValidationError, match="grant"):
        AgentSpec(model="scripted", name="a", instructions="", reads=(grant,))


async def test_write_memory_commits_and_stays_in_its_tenant(harness: Harness) -> None:
    doc = MemoryWrite(namespace="acme/docs", key="faq", value={"text": "Open 9-5."}, tags=("faq",))
    async with harness.worker():
        done = await (
            await harness.start(WriteWorkflow.run, WriteInput(tenant=TENANT, writes=(doc,)))
        ).result()
        outside = MemoryWrite(namespace="globex/docs", key="faq", value="x")
        handle = await harness.start(
            WriteWorkflow.run, WriteInput(tenant=TENANT, writes=(outside,))
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    entry = await harness.store.get((TENANT, "docs"), "faq")
    assert done.refs == (entry.ref,) and done.commit_seq == entry.commit_seq
    assert [v.version for v in await harness.store.history((TENANT, "docs"), "faq")] == [1]
    error = app_error(failed.value)
    assert (error.type, error.non_retryable) == ("AccessDenied", True)
