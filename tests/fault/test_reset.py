"""Scenario 16: an operator resets a completed session (``temporal workflow reset``).

Observed and asserted behaviour (to document for operators): a reset to the first workflow
task starts a new run, and Temporal reapplies the updates and the ``end`` signal. But the
session's record in memory says it was ended, so the new run refuses to serve any turn: its
result is ``refused`` and memory gains nothing (no commit of the new run, no transcript item,
no new version). Memory is the source of truth for a conversation, not the workflow's history.
To redo a conversation from an earlier point, fork the session's namespace as of the commit
before it into a new session; that is checked too.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from activities.contracts import AgentSpec
from cairn.devserver import temporal_binary
from memory.context import ContextSpec
from tests.fault.checker import History
from tests.fault.runs import send
from tests.workflows.harness import TENANT, Team, run_ns
from workflows.contracts import SessionInput
from workflows.session import SessionWorkflow

pytestmark = pytest.mark.fault

TURNS = 3


async def test_resetting_a_completed_session_keeps_memory_consistent_and_auditable(
    team: Team,
) -> None:
    inp = SessionInput(
        tenant=TENANT,
        session=f"reset-{uuid.uuid4().hex[:8]}",
        agent=AgentSpec(model="scripted", name="echo", instructions="Echo.", context=ContextSpec()),
    )
    session_ns = (TENANT, "session", inp.session)
    handle = team.session(inp)
    async with team.worker():
        for n in range(1, TURNS + 1):
            await send(team.client, team.task_queue, inp, f"m{n}", f"turn {n}")
        await handle.signal(SessionWorkflow.end)
        first_end = await handle.result()
        first_run = (await handle.describe()).run_id
        before = await team.store.list_commits(workflow_id=handle.id)
        reset = await asyncio.create_subprocess_exec(
            temporal_binary(),
            "workflow",
            "reset",
            "--address",
            team.client.service_client.config.target_host,
            "--workflow-id",
            handle.id,
            "--type",
            "FirstWorkflowTask",
            "--reason",
            "fault suite: operator reset",
            "--yes",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(reset.communicate(), 30)
        assert reset.returncode == 0, err.decode()
        second_end = await asyncio.wait_for(handle.result(), 30)
        second_run = (await handle.describe()).run_id
    after = await team.store.list_commits(workflow_id=handle.id)

    assert first_end.reason == "ended" and second_end.reason == "refused"
    assert first_run != second_run
    # The reset run wrote nothing: the commit log is what it was, every commit of the first run.
    assert after == before
    steps = [c for c in after if c.key.startswith("step:")]
    history = History()
    for n in range(1, TURNS + 1):
        history.record(f"turn-{n}", "ok")
    history.check(c.result["step"] for c in steps)  # type: ignore[index, call-overload]
    assert {c.provenance.run_id for c in steps} == {first_run}
    versions = await team.store.history(run_ns(handle.id), "output:turn-1")
    assert [v.provenance.run_id for v in versions] == [first_run]  # type: ignore[union-attr]
    transcript = await team.store.tail(session_ns, "transcript", 100)
    users = [i.item["content"] for i in transcript if i.item["role"] == "user"]  # type: ignore[index, call-overload]
    assert users == [f"turn {n}" for n in range(1, TURNS + 1)]

    # The way to redo a conversation from a point: fork its memory as of that point.
    turn_one = next(c for c in steps if c.result["step"] == "turn-1")  # type: ignore[index, call-overload]
    branch = (TENANT, "session", f"{inp.session}-redo")
    await team.store.fork(session_ns, branch, as_of=turn_one.seq)
    forked = await team.store.tail(branch, "transcript", 100)
    assert [i.item["content"] for i in forked] == ["turn 1", "turn 1 (saw 0)"]  # type: ignore[index, call-overload]
