"""An ended session stays ended; an idle one resumes where it was; a session keeps its user."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from activities.contracts import SESSION_KEY, SessionRecord
from tests.workflows.harness import TENANT, Team, agent, run_ns
from workflows.contracts import SessionInput, Turn
from workflows.session import SessionWorkflow


def session(**kw: Any) -> SessionInput:
    kw.setdefault("agent", agent("helper"))
    kw.setdefault("user", "u-1")
    return SessionInput(tenant=TENANT, session=f"s-{uuid.uuid4().hex[:8]}", **kw)


def refusal(error: WorkflowUpdateFailedError) -> ApplicationError:
    assert isinstance(error.cause, ApplicationError)
    return error.cause


async def test_a_turn_after_the_end_is_refused_and_numbering_never_restarts(team: Team) -> None:
    inp = session()
    async with team.worker():
        await team.send(inp, "m1", "Hello")
        handle = team.session(inp)
        await handle.signal(SessionWorkflow.end)
        assert (await handle.result()).reason == "ended"
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await team.send(inp, "m2", "Still there?")
        again = await team.session(inp).result()
    cause = refusal(refused.value)
    assert cause.type == "SessionEnded" and "start a new session id" in str(cause)
    assert f"session {inp.session!r} ended at " in str(cause)
    assert again.reason == "refused" and again.turns == 0  # the refused run served none
    record = await team.store.get((TENANT, "session", inp.session), SESSION_KEY)
    assert SessionRecord.model_validate(record.value).ended
    history = await team.store.history(run_ns(handle.id), "output:turn-1")
    assert len(history) == 1  # no second "turn-1" from a silently restarted session


async def test_an_idle_session_resumes_its_turn_numbering(team: Team) -> None:
    inp = session(idle_timeout=timedelta(seconds=1))
    async with team.worker():
        await team.send(inp, "m1", "Hello")
        assert (await team.session(inp).result()).reason == "idle"
        reply = await team.send(inp, "m2", "Back again")
    assert reply.turn == 2 and reply.output.step == "turn-2"


async def test_a_turn_for_another_user_is_refused(team: Team) -> None:
    inp = session()
    async with team.worker():
        await team.send(inp, "m1", "Hello", user="u-1")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await team.send(inp, "m2", "Hi", user="u-2")
    assert "belongs to user 'u-1', not 'u-2'" in str(refused.value.cause)


async def test_a_restart_for_another_user_is_refused(team: Team) -> None:
    inp = session(idle_timeout=timedelta(seconds=1))
    async with team.worker():
        await team.send(inp, "m1", "Hello")
        assert (await team.session(inp).result()).reason == "idle"
        other = inp.model_copy(update={"user": "u-2"})
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await team.send(other, "m2", "Hi")
    cause = refusal(refused.value)
    assert cause.type == "SessionUserMismatch" and "'u-1', not 'u-2'" in str(cause)


def test_a_malformed_user_is_refused_before_any_workflow_exists() -> None:
    with pytest.raises(ValidationError, match="user"):
        session(user="ada/../bob")
    with pytest.raises(ValidationError, match="user"):
        Turn(message_id="m1", text="Hi", user="has space")
