"""Scenario 14: malformed workflow, update and signal payloads, and generated memory API input.

A client with Temporal's plain JSON converter sends what a buggy or hostile client in any
language could: payloads that are not the contracts. A malformed start fails its workflow at
once, naming the field (it used to fail the first workflow task over and over until the
execution timed out); a malformed update is refused before it reaches the workflow's state,
naming the field; a signal with unexpected arguments changes nothing; an activity input that
is not its contract fails its first attempt for good. None of these failures quotes the input
or pydantic's docs link: they name the field and the rule, as activity failures do. Generated
memory API input is stored and read back exactly, or refused naming what is wrong with
nothing written.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.converter import DataConverter

from activities import AgentRegistry
from cairn.codec import data_converter_with_codec
from cairn.runtime import Settings, build_worker
from memory import InvalidInput, MemoryStore
from tests.fault.malformed_activity import SendRawStepInput
from tests.fault.runs import (
    activity_attempts,
    failure,
    send,
    spec,
    start_chain,
    step,
    workflow_task_failures,
)
from tests.memory.conftest import row_counts
from tests.workflows.harness import TENANT, Team, agent, wait_until
from workflows.chain import ChainWorkflow
from workflows.contracts import Approval, SessionInput
from workflows.session import SessionWorkflow

pytestmark = pytest.mark.fault

GOOD = spec(step("echo", "hi"), agents=("echo=scripted",)).model_dump(mode="json")
SESSION = SessionInput(tenant=TENANT, session="s", agent=agent("echo")).model_dump(mode="json")
BAD_STARTS: dict[str, tuple[str, Any, str]] = {
    "missing fields": ("ChainWorkflow", {"name": "x", "tenant": TENANT}, "agents"),
    "traversal tenant": ("ChainWorkflow", {**GOOD, "tenant": "../beta"}, "tenant"),
    "unknown node": ("ChainWorkflow", {**GOOD, "nodes": [{"kind": "rm -rf"}]}, "nodes"),
    "extra field": ("ChainWorkflow", {**GOOD, "admin": "sekrit-1"}, "admin"),
    "not an object": ("ChainWorkflow", "please run", "ChainSpec"),
    "input too long": ("ChainWorkflow", {**GOOD, "input": "x" * 40_000}, "input"),
    "bad session": ("SessionWorkflow", {**SESSION, "session": "a/b"}, "session"),
    "negative turns": ("SessionWorkflow", {**SESSION, "turns_per_run": -1}, "turns_per_run"),
}
QUOTED = ("../beta", "rm -rf", "sekrit-1", "please run", "xxxx", "a/b", "-1", "pydantic.dev")
"""Bits of the malformed inputs above (and pydantic's docs link) no failure may quote."""


@pytest.fixture
async def team(
    client: Client, task_queue: str, sqlite_store: MemoryStore, registry: AgentRegistry
) -> Team:
    """In-process workers with Cairn's data converter, as ``python worker.py`` has."""
    production = await Client.connect(
        client.service_client.config.target_host,
        namespace=client.namespace,
        data_converter=data_converter_with_codec(None),
    )
    return Team(production, task_queue, sqlite_store, registry)


def assert_quotes_nothing(message: str) -> None:
    leaked = [q for q in QUOTED if q in message]
    assert not leaked, (leaked, message)


async def raw_client(client: Client) -> Client:
    return await Client.connect(
        client.service_client.config.target_host, data_converter=DataConverter.default
    )


async def test_a_malformed_start_fails_the_workflow_at_once(team: Team) -> None:
    raw = await raw_client(team.client)
    async with team.worker():
        started = time.monotonic()
        handles = {
            name: await raw.start_workflow(
                workflow,
                payload,
                id=f"raw-{uuid.uuid4().hex[:8]}",
                task_queue=team.task_queue,
                execution_timeout=timedelta(seconds=60),
            )
            for name, (workflow, payload, _) in BAD_STARTS.items()
        }
        errors = {name: await failure(h) for name, h in handles.items()}
        elapsed = time.monotonic() - started
    for name, (_, _, field) in BAD_STARTS.items():
        assert errors[name].type == "ValidationError", (name, errors[name])
        assert field in str(errors[name]), (name, errors[name])
        assert_quotes_nothing(str(errors[name]))
        assert await workflow_task_failures(handles[name]) == 0, name
    assert elapsed < 15
    assert await team.store.list_commits() == []


async def test_malformed_updates_and_signals_are_refused_and_change_nothing(team: Team) -> None:
    raw = await raw_client(team.client)
    inp = SessionInput(tenant=TENANT, session=f"m-{uuid.uuid4().hex[:8]}", agent=agent("echo"))
    chain = spec(
        Approval(timeout=timedelta(minutes=1)), step("echo", "after"), agents=("echo=scripted",)
    )
    async with team.worker():
        first = await send(team.client, team.task_queue, inp, "m1", "hello")
        session = raw.get_workflow_handle(f"session:{TENANT}:{inp.session}")
        handle = await start_chain(team.client, team.task_queue, chain)

        async def waiting() -> bool:
            return (await handle.query(ChainWorkflow.progress)).waiting_for == "approval"

        await wait_until(waiting)
        chain_raw = raw.get_workflow_handle(handle.id)
        refused = {
            "message_id": (session, "send", {"message_id": "../beta", "text": "hi"}),
            "text": (session, "send", {"message_id": "m2", "text": ""}),
            "Turn": (session, "send", ["not", "a", "turn"]),
            "approve": (chain_raw, "decide", {"approve": "yes please"}),
            # A lone surrogate is not JSON: no field can be named, only where parsing stopped.
            "Invalid JSON": (chain_raw, "decide", {"approve": True, "edit": "\ud800"}),
        }
        for field, (target, update, payload) in refused.items():
            with pytest.raises(WorkflowUpdateFailedError) as info:
                await target.execute_update(update, payload)
            assert field in str(info.value.cause), (field, info.value.cause)
            assert_quotes_nothing(str(info.value.cause))
        # Signals the session has no handler for (one named like its update) do nothing.
        await session.signal("send", {"message_id": "m9", "text": "sneaked in"})
        await session.signal("drop_tables", "now")
        second = await send(team.client, team.task_queue, inp, "m2", "still there?")
        state = await team.session(inp).query(SessionWorkflow.state)
        # `end` takes no arguments; sent with some, it still just ends the session.
        await session.signal("end", {"reason": "injected"})
        end = await team.session(inp).result()
        # The chain still waits for a real decision, and takes one.
        assert (await handle.query(ChainWorkflow.progress)).waiting_for == "approval"
        await handle.execute_update(ChainWorkflow.decide, {"approve": True})  # type: ignore[arg-type]
        result = await asyncio.wait_for(handle.result(), 30)
    assert (first.turn, second.turn, state.turns, state.closed) == (1, 2, 2, False)
    assert (end.turns, end.reason) == (2, "ended")
    assert [s.step for s in result.steps] == ["echo"]
    commits = await team.step_commits(session.id)
    assert sorted(commits) == ["turn-1", "turn-2"]


async def test_a_malformed_activity_input_fails_its_first_attempt_naming_the_field(
    team: Team,
) -> None:
    settings = Settings(task_queue=team.task_queue, shutdown_grace=1)
    worker = build_worker(
        team.client, team.store, settings, team.registry, workflows=[SendRawStepInput]
    )
    payload = {"step": "s", "task": "t", "tenant": TENANT, "admin": "sekrit-1"}
    async with worker:
        handle = await team.client.start_workflow(
            SendRawStepInput.run,
            payload,
            id=f"raw-activity-{uuid.uuid4().hex[:8]}",
            task_queue=team.task_queue,
            execution_timeout=timedelta(seconds=60),
        )
        error = await failure(handle)
    assert (error.type, error.non_retryable) == ("MalformedInput", True)
    assert "agent: Field required" in str(error) and "admin" in str(error)
    assert_quotes_nothing(str(error))
    assert error.cause is None  # the converter's own error, which quotes the input, is dropped
    assert await activity_attempts(handle) == [1]


TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=70)
SEGMENTS = st.lists(st.one_of(TEXT, st.sampled_from(["acme", "a_b", "..", "%", "*"])), max_size=9)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def test_generated_memory_input_round_trips_or_is_refused_whole(sqlite_url: str) -> None:
    with asyncio.Runner() as runner:
        store = runner.run(MemoryStore.open(sqlite_url))

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(ns=SEGMENTS, key=TEXT, value=VALUES, tags=st.lists(TEXT, max_size=3))
        def put_one(ns: list[str], key: str, value: Any, tags: list[str]) -> None:
            runner.run(check(store, tuple(ns), key, value, tags))

        try:
            put_one()
        finally:
            runner.run(store.close())


async def check(store: MemoryStore, ns: tuple[str, ...], key: str, value: Any, tags: Any) -> None:
    before = await row_counts(store)
    try:
        async with store.commit() as c:
            c.put(("acme", "first"), "k", "written in the same commit")
            c.put(ns, key, value, tags=tags)
    except InvalidInput as error:
        # Named: which argument, and never a database error.
        assert any(w in str(error) for w in ("namespace", "key", "value", "tag")), str(error)
        assert await row_counts(store) == before
        return
    entry = await store.get(ns, key)
    assert entry.key == key and entry.namespace == ns
    assert entry.value == value or value != value  # NaN never gets this far
    assert sorted(set(tags)) == list(entry.tags)
