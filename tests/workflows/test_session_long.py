"""A long session: 300 turns over a dozen continue-as-new runs, context intact, history small."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence

from temporalio.api.enums.v1 import EventType

from activities.contracts import AgentSpec
from activities.llm import ChatMessage, ToolSpec
from memory.context import ContextSpec
from tests.workflows.harness import TENANT, Team, wait_until
from workflows.contracts import SessionInput
from workflows.search_attributes import SESSION
from workflows.session import REMEMBERED_REPLIES, SessionWorkflow

TURNS = 300
PER_RUN = 25
LAST_MESSAGES = 20
KEEP_RECENT = 10  # what compaction leaves unsummarized (CompactInput's default)
ECHO = re.compile(r"^saw=(\d+) prev=(.*) summary=(yes|no)$")


def echo(system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
    """Reports what the agent was shown: transcript size, the previous user turn, a summary."""
    seen = messages[:-1]  # the last message is this turn's task
    prev = next((m.content for m in reversed(seen) if m.role == "user"), "-")
    return f"saw={len(seen)} prev={prev} summary={'yes' if '<summary ' in system else 'no'}"


async def run_ids(team: Team, workflow_id: str) -> list[str]:
    """Every run of a workflow, first to last (following each run's predecessor)."""
    handle = team.client.get_workflow_handle(workflow_id)
    runs = [(await handle.describe()).run_id]
    while True:
        history = await team.client.get_workflow_handle(workflow_id, run_id=runs[0]).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return runs
        runs.insert(0, started.continued_execution_run_id)


async def test_three_hundred_turns_across_continue_as_new(team: Team) -> None:
    team.registry.script("echo")(echo)
    inp = SessionInput(
        tenant=TENANT,
        session=f"long-{uuid.uuid4().hex[:8]}",
        agent=AgentSpec(
            model="scripted",
            name="echo",
            instructions="Echo.",
            context=ContextSpec(last_messages=LAST_MESSAGES),
        ),
        turns_per_run=PER_RUN,
        compact_budget=100,
    )
    replies = {}
    started = time.monotonic()
    async with team.worker():
        handle = team.session(inp)
        for n in range(1, TURNS + 1):
            reply = await team.send(inp, f"m{n}", f"message {n}")
            replies[n] = reply
            assert reply.turn == n, reply
            seen, prev, summary = ECHO.match(reply.text).groups()  # type: ignore[union-attr]
            # The previous turn is always in view, from memory, whichever run served it.
            assert prev == (f"message {n - 1}" if n > 1 else "-"), (n, reply.text)
            assert min(2 * (n - 1), KEEP_RECENT) <= int(seen) <= min(2 * (n - 1), LAST_MESSAGES)
            if n % PER_RUN == 0:
                # The run continued as new: resent turns are still recognised in the new run.
                async def new_run(turns: int = n) -> bool:
                    state = await handle.query(SessionWorkflow.state)
                    return state.turns == turns and state.turns_this_run == 0

                await wait_until(new_run)
                assert await team.send(inp, f"m{n}", "ignored") == reply
                assert (
                    await team.send(inp, f"m{n - PER_RUN + 1}", "ignored")
                    == replies[n - PER_RUN + 1]
                )
        state = await handle.query(SessionWorkflow.state)
        attrs = (await handle.describe()).typed_search_attributes
        elapsed = time.monotonic() - started
        runs = await run_ids(team, handle.id)
        histories = [
            await team.client.get_workflow_handle(handle.id, run_id=r).fetch_history() for r in runs
        ]

    assert state.turns == TURNS and not state.closed
    # The search attributes came along through every continue-as-new.
    assert attrs.get(SESSION) == inp.session
    # Summaries written in early runs are shown in later ones.
    assert summary == "yes"
    # Every turn ran exactly one step, none repeated for the resent turns.
    commits = await team.step_commits(handle.id)
    assert sorted(commits) == sorted(f"turn-{n}" for n in range(1, TURNS + 1))
    assert all(len(c) == 1 for c in commits.values())
    # One run per PER_RUN turns, each ending in continue-as-new, each about the same size.
    assert len(runs) == TURNS // PER_RUN + 1
    for history in histories[:-1]:
        assert (
            history.events[-1].event_type
            == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        )
    sizes = [sum(e.ByteSize() for e in h.events) for h in histories[:-1]]
    events = [len(h.events) for h in histories[:-1]]
    print(f"{TURNS} turns in {elapsed:.1f}s; per run: events {events}, bytes {sizes}")
    # Bounded: about 20 events a turn, and no growth once the carried replies' window is full
    # (64 replies: from the fourth run on).
    assert max(events) <= 24 * (PER_RUN + 2)
    full = sizes[REMEMBERED_REPLIES // PER_RUN + 1 :]
    assert max(full) <= min(full) * 1.25
    assert max(sizes) < 512 * 1024
