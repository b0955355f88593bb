"""Scenario 12: Temporal's payload limit lowered far below Cairn's own value cap.

The dev server refuses any payload over `BLOB_LIMIT`. Values larger than that but within
Cairn's cap live in memory, and only references cross Temporal; a value over Cairn's cap fails
its step at once, with a non-retryable ``ValueTooLarge`` naming the key and the size, never a
workflow-task retry loop.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType

from activities.contracts import PREVIEW_CHARS, AgentSpec
from memory import MemoryStore
from memory.context import ContextSpec
from memory.store import DEFAULT_MAX_VALUE_BYTES
from tests.fault.agents import registry
from tests.fault.runs import (
    activity_attempts,
    failure,
    spec,
    start_chain,
    step,
    workflow_task_failures,
)
from tests.fault.servers import DevServer
from tests.workflows.harness import TENANT, Team, run_ns
from workflows.contracts import SessionInput
from workflows.session import SessionWorkflow

pytestmark = pytest.mark.fault

BLOB_LIMIT = 200_000
PER_RUN = 40
LIMITS = {"limit.blobSize.warn": 100_000, "limit.blobSize.error": BLOB_LIMIT}


def largest_payload(events: list[object]) -> int:
    sizes = [0]
    for event in events:
        for field, value in event.ListFields():  # type: ignore[attr-defined]
            if field.name.endswith("_attributes"):
                sizes.append(value.ByteSize())
    return max(sizes)


async def test_large_values_stay_in_memory_and_oversized_ones_fail_fast(
    dev_server: Callable[..., Awaitable[DevServer]], sqlite_store: MemoryStore, tmp_path: Path
) -> None:
    server = await dev_server(LIMITS)
    team = Team(await server.client(), f"limits-{uuid.uuid4().hex[:8]}", sqlite_store, registry)
    within, over = 3 * BLOB_LIMIT, DEFAULT_MAX_VALUE_BYTES + 10
    async with team.worker():
        fits = await start_chain(
            team.client, team.task_queue, spec(step("big", str(within)), agents=("big",))
        )
        result = await fits.result()
        started = time.monotonic()
        too_big = await start_chain(
            team.client, team.task_queue, spec(step("big", str(over)), agents=("big",))
        )
        error = await failure(too_big)
        elapsed = time.monotonic() - started

    # The value is in memory, whole; the workflow saw a reference to it.
    blob = await sqlite_store.get(run_ns(fits.id), "blob")
    assert blob.value == "x" * within
    assert result.final.output.key == "output:big"
    history = (await fits.fetch_history()).events
    assert largest_payload(history) < 10_000
    # Over Cairn's cap: refused before anything was written, at once, naming key and size.
    assert error.type == "ValueTooLarge" and error.non_retryable
    assert "'blob'" in str(error) and f"{over + 2} bytes" in str(error)
    assert await activity_attempts(too_big) == [1]
    assert await workflow_task_failures(too_big) == 0
    assert elapsed < 10
    assert (await sqlite_store.list(run_ns(too_big.id))).entries == ()


async def test_long_replies_never_push_a_session_past_the_payload_limit(
    dev_server: Callable[..., Awaitable[DevServer]], sqlite_store: MemoryStore
) -> None:
    # Each reply is the longest a session carries whole; 40 of them are 320 KB, well over the
    # limit, and a continue-as-new carries them all. (Fixed: the input was over the limit, so
    # every workflow task after it failed and the session was stuck.)
    server = await dev_server(LIMITS)
    team = Team(await server.client(), f"limits-{uuid.uuid4().hex[:8]}", sqlite_store, registry)
    inp = SessionInput(
        tenant=TENANT,
        session=f"long-{uuid.uuid4().hex[:8]}",
        agent=AgentSpec(
            model="scripted",
            name="long",
            instructions="Talk.",
            context=ContextSpec(last_messages=2),
        ),
        turns_per_run=PER_RUN,
        compact_budget=100_000,
    )
    replies = {}
    async with team.worker():
        for n in range(1, PER_RUN + 2):
            replies[n] = await asyncio.wait_for(team.send(inp, f"m{n}", f"t{n}"), 30)
            assert replies[n].turn == n
        # In the new run, resent turns are recognised: the newest whole, the oldest by preview.
        newest = await asyncio.wait_for(team.send(inp, f"m{PER_RUN}", "again"), 30)
        oldest = await asyncio.wait_for(team.send(inp, "m1", "again"), 30)
        state = await team.session(inp).query(SessionWorkflow.state)
    assert newest == replies[PER_RUN]
    assert (oldest.turn, oldest.output) == (1, replies[1].output)
    assert replies[1].text.startswith(oldest.text) and len(oldest.text) == PREVIEW_CHARS
    # (Turn 41 may have been served by the first run, which finishes turns before it goes.)
    assert state.turns == PER_RUN + 1 and state.turns_this_run <= 1
    history = (await team.session(inp).fetch_history()).events
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in [e.event_type for e in history]
    started = history[0].workflow_execution_started_event_attributes
    assert started.continued_execution_run_id
    assert BLOB_LIMIT / 4 < started.input.ByteSize() < BLOB_LIMIT * 0.75
