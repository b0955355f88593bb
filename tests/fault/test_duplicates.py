"""Scenario 6: the same session (and the same chain) started twice, concurrently.

Two clients race to start one session with update-with-start, each with its own first turn,
while others resend one turn several times at once and plain starts collide on the id. One
execution serves them all; each distinct turn runs once and is written once.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.contracts import AgentSpec
from memory.context import ContextSpec
from tests.fault.checker import History
from tests.fault.runs import EXECUTION_TIMEOUT, send, spec, start_chain, step
from tests.workflows.harness import TENANT, Team
from workflows.contracts import Reply, SessionInput
from workflows.session import SessionWorkflow, session_workflow_id

pytestmark = pytest.mark.fault


async def test_a_session_started_twice_at_once_is_one_execution(team: Team) -> None:
    inp = SessionInput(
        tenant=TENANT,
        session=f"twice-{uuid.uuid4().hex[:8]}",
        agent=AgentSpec(model="scripted", name="echo", instructions="Echo.", context=ContextSpec()),
    )
    # A second client, as a second process would have.
    other = await Client.connect(
        team.client.service_client.config.target_host, data_converter=team.client.data_converter
    )
    wf_id = session_workflow_id(inp.tenant, inp.session)
    async with team.worker():
        calls: list[Any] = [
            send(team.client, team.task_queue, inp, "a1", "from a"),
            send(other, team.task_queue, inp, "b1", "from b"),
            *(send(c, team.task_queue, inp, "r1", "resent") for c in (team.client, other) * 3),
            *(
                c.start_workflow(
                    SessionWorkflow.run,
                    inp,
                    id=wf_id,
                    task_queue=team.task_queue,
                    execution_timeout=EXECUTION_TIMEOUT,
                )
                for c in (team.client, other)
            ),
        ]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        await team.session(inp).signal(SessionWorkflow.end)
        end = await team.session(inp).result()

    replies, starts = outcomes[:8], outcomes[8:]
    assert all(isinstance(r, Reply) for r in replies), replies
    # Plain starts found it running (the update-with-starts may have started it first).
    assert all(isinstance(s, WorkflowAlreadyStartedError) for s in starts) or (
        sum(not isinstance(s, BaseException) for s in starts) == 1
    ), starts
    resent = replies[2:]
    assert all(r == resent[0] for r in resent)
    assert sorted(r.turn for r in replies[:3]) == [1, 2, 3] and end.turns == 3
    executions = [w async for w in team.client.list_workflows(f"WorkflowId = '{wf_id}'")]
    assert len(executions) == 1
    # Each distinct turn ran one step and wrote one user message and one reply.
    history = History()
    for msg in ("from a", "from b", "resent"):
        history.record(msg, "ok")
    transcript = await team.store.tail((TENANT, "session", inp.session), "transcript", 100)
    history.check(i.item["content"] for i in transcript if i.item["role"] == "user")  # type: ignore[index,call-overload]
    assert len(transcript) == 6
    commits = await team.step_commits(wf_id)
    assert sorted(commits) == ["turn-1", "turn-2", "turn-3"]
    assert all(len(c) == 1 for c in commits.values())


async def test_a_chain_started_twice_at_once_runs_once(team: Team) -> None:
    chain = spec(step("echo", "hello", name="s1"), agents=("echo=scripted",))
    wf_id = f"twice-{uuid.uuid4().hex[:8]}"
    async with team.worker():
        outcomes = await asyncio.gather(
            *(start_chain(team.client, team.task_queue, chain, id=wf_id) for _ in range(4)),
            return_exceptions=True,
        )
        started = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(started) == 1, outcomes
        assert sum(isinstance(o, WorkflowAlreadyStartedError) for o in outcomes) == 3
        await started[0].result()
    assert {k: len(v) for k, v in (await team.step_commits(wf_id)).items()} == {"s1": 1}
