"""`SessionWorkflow`: turns as updates, recall across sessions, resent turns, end and idle."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from activities import AgentContext, AgentOutput
from activities.llm import ChatMessage, ModelRequestError, ToolSpec
from memory.context import SUMMARY_KEY, ContextSpec
from tests.workflows.harness import TENANT, Team, agent, history_events, wait_until
from workflows.contracts import SessionInput
from workflows.search_attributes import AGENT, SESSION
from workflows.search_attributes import TENANT as TENANT_KEY
from workflows.session import SessionWorkflow
from workflows.teams import support_agent


def session_input(**kw: Any) -> SessionInput:
    kw.setdefault("agent", support_agent(model="scripted"))
    return SessionInput(tenant=TENANT, session=f"s-{uuid.uuid4().hex[:8]}", **kw)


async def test_a_conversation_answers_each_turn_with_the_transcript_in_memory(team: Team) -> None:
    inp = session_input()
    async with team.worker():
        first = await team.send(inp, "m1", "Hello there")
        second = await team.send(inp, "m2", "How are you?")
        handle = team.session(inp)
        state = await handle.query(SessionWorkflow.state)
        description = await handle.describe()
        await handle.signal(SessionWorkflow.end)
        end = await handle.result()
    assert (first.turn, first.text) == (1, "[scripted] You said: Hello there")
    assert (second.turn, second.text) == (2, "[scripted] You said: How are you?")
    assert second.output.step == "turn-2" and second.output.agent == "support"
    assert (state.turns, state.turns_this_run, state.last_reply, state.closed) == (
        2,
        2,
        second.text,
        False,
    )
    transcript = await team.store.tail((TENANT, "session", inp.session), "transcript", 10)
    assert [(i.item["role"], i.item["content"]) for i in transcript] == [
        ("user", "Hello there"),
        ("assistant", first.text),
        ("user", "How are you?"),
        ("assistant", second.text),
    ]
    attrs = description.typed_search_attributes
    assert (attrs.get(TENANT_KEY), attrs.get(SESSION), attrs.get(AGENT)) == (
        TENANT,
        inp.session,
        "support",
    )
    assert (end.turns, end.reason) == (2, "ended")


async def test_facts_about_a_user_are_recalled_by_the_next_session(team: Team) -> None:
    user = f"u-{uuid.uuid4().hex[:6]}"
    one, two = session_input(user=user), session_input(user=user)
    stranger = session_input(user=f"u-{uuid.uuid4().hex[:6]}")
    async with team.worker():
        told = await team.send(one, "m1", "Hi, my name is Ada")
        recalled = await team.send(two, "m1", "Do you know my name?")
        unknown = await team.send(stranger, "m1", "Do you know my name?")
    assert told.text == "[scripted] Thanks, I'll remember that for next time."
    assert recalled.text == "[scripted] Welcome back, Ada!"
    assert unknown.text == "[scripted] I don't know your name yet."
    fact = await team.store.get((TENANT, "user", user), "name")
    assert fact.value == {"text": "My name is Ada."}
    assert fact.provenance is not None
    assert fact.provenance.workflow_id == f"session:{TENANT}:{one.session}"


async def test_a_resent_turn_is_answered_without_a_second_step(team: Team) -> None:
    inp = session_input()
    async with team.worker():
        first = await team.send(inp, "m1", "Ship it")
        again = await team.send(inp, "m1", "Ship it")
        # Resent while the original is still in flight: both wait for the one answer.
        both = await asyncio.gather(
            team.send(inp, "m2", "Now?"), team.send(inp, "m2", "Now?"), team.send(inp, "m2", "Now?")
        )
        state = await team.session(inp).query(SessionWorkflow.state)
    assert again == first
    assert both[0] == both[1] == both[2] and both[0].turn == 2
    assert state.turns == 2
    commits = await team.step_commits(team.session(inp).id)
    assert {k: len(v) for k, v in commits.items()} == {"turn-1": 1, "turn-2": 1}
    transcript = await team.store.tail((TENANT, "session", inp.session), "transcript", 10)
    assert [i.item["content"] for i in transcript if i.item["role"] == "user"] == [
        "Ship it",
        "Now?",
    ]


async def test_a_session_closes_when_idle(team: Team) -> None:
    inp = session_input(idle_timeout=timedelta(seconds=1))
    async with team.worker():
        await team.send(inp, "m1", "One question")
        end = await asyncio.wait_for(team.session(inp).result(), 20)
    assert (end.turns, end.reason) == (1, "idle")


async def test_a_long_turn_is_not_idleness(team: Team) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    @team.registry.agent("ponder")
    async def ponder(ctx: AgentContext) -> AgentOutput:
        if ctx.input.task == "think hard":
            started.set()
            await asyncio.wait_for(release.wait(), 30)
        return AgentOutput(text=f"thought about {ctx.input.task}")

    inp = session_input(agent=agent("ponder", "python:ponder"), idle_timeout=timedelta(seconds=1))
    async with team.worker():
        handle = team.session(inp)
        turn = asyncio.create_task(team.send(inp, "m1", "think hard"))
        await asyncio.wait_for(started.wait(), 20)
        # The idle timer fires while the turn is still running...
        await wait_until(lambda: history_events(handle, EventType.EVENT_TYPE_TIMER_FIRED))
        release.set()
        reply = await turn
        # ...and the session stays open for the next turn.
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        after = await team.send(inp, "m2", "again")
        end = await asyncio.wait_for(handle.result(), 20)
    assert reply.text == "thought about think hard"
    assert after.turn == 2
    assert (end.turns, end.reason) == (2, "idle")


async def test_a_python_agent_session_compacts_its_transcript(team: Team) -> None:
    @team.registry.agent("chatty")
    async def chatty(ctx: AgentContext) -> AgentOutput:
        return AgentOutput(text=f"{ctx.input.task} " + "and so on " * 20)

    inp = session_input(
        agent=agent("chatty", "python:chatty", context=ContextSpec()), compact_budget=100
    )
    async with team.worker():
        for i in range(1, 8):
            await team.send(inp, f"m{i}", f"point {i}")
        state = await team.session(inp).query(SessionWorkflow.state)
    assert state.turns == 7
    summary = await team.store.get((TENANT, "session", inp.session), SUMMARY_KEY)
    assert summary.value["text"].startswith("[scripted summary]")
    assert summary.value["covers_until"] > 0


async def test_a_failing_compaction_does_not_end_the_session(team: Team) -> None:
    TURNS = range(1, 8)

    @team.registry.script("compactor")
    def refuse(system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
        raise ModelRequestError("scripted", "scripted", status=400, reason="prompt too long")

    inp = session_input(compact_budget=100)
    async with team.worker():
        # Over budget once the transcript holds more than the 10 items compaction keeps.
        replies = [await team.send(inp, f"m{i}", f"point {i} " + "and so on " * 20) for i in TURNS]
        handle = team.session(inp)
        failed = await wait_until(
            lambda: history_events(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED)
        )
        description = await handle.describe()
    assert [r.turn for r in replies] == list(TURNS)
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert failed[
        0
    ].activity_task_failed_event_attributes.failure.application_failure_info.type == (
        "ModelRequestError"
    )
    ns = (TENANT, "session", inp.session)
    assert len(await team.store.tail(ns, "transcript", 100)) == 2 * len(TURNS)


async def test_the_longest_message_id_is_accepted(team: Team) -> None:
    inp = session_input()
    async with team.worker():
        reply = await asyncio.wait_for(team.send(inp, "x" * 64, "Hello"), 20)
    assert (reply.turn, reply.message_id) == (1, "x" * 64)
