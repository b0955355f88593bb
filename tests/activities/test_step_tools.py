"""The tool loop of an agent step: remember and recall, within the step's commit and bounds."""

from __future__ import annotations

import json

import pytest

from activities.contracts import ToolCallRecord
from memory import NotFound
from memory.context import ContextSpec
from tests.activities.conftest import TENANT, Harness, Recorder, agent, step_input, tool_call

USER = (TENANT, "user", "u-7")
FACT = "The user's favourite colour is teal."


async def test_remember_then_answer_writes_the_fact_in_the_step_commit(harness: Harness) -> None:
    remember = {"name": "remember", "arguments": {"key": "colour", "text": FACT}}
    harness.registry.script_replies("support", [{"tool_calls": [remember]}, "Noted: teal."])
    spec = agent("support", tools=("remember", "recall"), writes=("{run}", "{session}", "{user}"))
    async with harness.worker():
        wf, (result,) = await harness.steps(
            step_input(spec, "t1", task="I love teal.", session="s-1", user="u-7")
        )

    fact = await harness.store.get(USER, "colour")
    assert fact.value == {"text": FACT}
    assert fact.commit_seq == result.commit_seq, "the fact lands in the step's own commit"
    assert fact.provenance is not None and fact.provenance.agent == "support"
    commit, record = await harness.record(wf, "t1")
    assert fact.ref in commit.writes
    assert record.tool_calls == (ToolCallRecord(name="remember", ok=True),)
    assert result.preview == "Noted: teal."
    (logged,) = await harness.store.tail((TENANT, "run", wf), "tools")
    assert logged.item == {
        "step": "t1",
        "tool": "remember",
        "arguments": {"key": "colour", "text": FACT},
        "result": "remembered 'colour'",
    }


async def test_recall_finds_what_an_earlier_session_remembered(harness: Harness) -> None:
    writer = agent("support", tools=("remember",), writes=("{run}", "{user}"))
    harness.registry.script("support")(
        Recorder([tool_call("remember", key="colour", text=FACT), "ok"])
    )
    model = Recorder(
        [
            tool_call("recall", query="favourite colour", where="user"),
            lambda call: f"You like {json.loads(call.messages[-1].content)[0]['value']['text']}",
        ]
    )
    harness.registry.script("concierge")(model)
    reader = agent("concierge", tools=("recall",), context=ContextSpec(transcript=None))
    async with harness.worker():
        await harness.steps(step_input(writer, "first", user="u-7"))
        _, (result,) = await harness.steps(step_input(reader, "later", user="u-7"))

    first, second = model.calls
    assert [t.name for t in first.tools] == ["recall"]
    assert second.messages[-1].role == "tool" and second.messages[-1].tool_call_id == "call-recall"
    hits = json.loads(second.messages[-1].content)
    assert hits[0]["source"] == "acme/user/u-7" and hits[0]["key"] == "colour"
    assert result.preview == f"You like {FACT}"


async def test_tool_rounds_are_bounded_and_the_last_call_offers_no_tools(harness: Harness) -> None:
    model = Recorder([lambda call: tool_call("recall", query=f"round {len(model.calls)}")])
    harness.registry.script("looper")(model)
    spec = agent("looper", tools=("recall",), max_tool_rounds=2)
    async with harness.worker():
        wf, (result,) = await harness.steps(step_input(spec, "loop"))

    assert [len(c.tools) for c in model.calls] == [1, 1, 0]
    _, record = await harness.record(wf, "loop")
    assert record.tool_calls == (ToolCallRecord(name="recall", ok=True),) * 2
    logged = await harness.store.tail((TENANT, "run", wf), "tools", 10)
    assert [i.item["arguments"] for i in logged] == [{"query": "round 1"}, {"query": "round 2"}]
    output = await harness.store.get((TENANT, "run", wf), "output:loop")
    assert output.commit_seq == result.commit_seq and result.preview == ""


async def test_no_tool_rounds_means_one_call_without_tools(harness: Harness) -> None:
    model = Recorder(["plain answer"])
    harness.registry.script("plain")(model)
    async with harness.worker():
        await harness.steps(step_input(agent("plain", tools=("recall",), max_tool_rounds=0)))
    assert [len(c.tools) for c in model.calls] == [0]


async def test_a_bad_tool_call_is_the_models_error_not_the_steps(harness: Harness) -> None:
    model = Recorder(
        [
            tool_call("remember", key="bad\nkey", text="x", where="run"),
            tool_call("remember", key="output:forged", text="x", where="run"),
            tool_call("teleport"),
            tool_call("remember", key="ok", where="run"),
            "gave up",
        ]
    )
    harness.registry.script("clumsy")(model)
    spec = agent("clumsy", tools=("remember",), max_tool_rounds=4)
    async with harness.worker():
        wf, (result,) = await harness.steps(step_input(spec, "try"))

    _, record = await harness.record(wf, "try")
    assert [c.ok for c in record.tool_calls] == [False] * 4
    errors = [c.messages[-1].content for c in model.calls[1:]]
    assert "control character" in errors[0]
    assert "reserved" in errors[1]
    assert errors[2] == "error: no tool named 'teleport'"
    assert "text" in errors[3] and "Field required" in errors[3]
    assert result.preview == "gave up"
    with pytest.raises(NotFound):
        await harness.store.get((TENANT, "run", wf), "output:forged")
