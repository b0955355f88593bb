"""Eight agents at once writing one shared namespace: no lost write, no duplicate."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from activities import AgentContext, AgentOutput, AgentRegistry
from activities.contracts import MemoryWrite
from memory import MemoryStore
from tests.workflows.harness import TENANT, Team, agent
from workflows.contracts import ChainSpec, Parallel, Step

AGENTS = 8


@pytest.fixture(params=["sqlite", "postgres"])
async def backend_store(request: pytest.FixtureRequest) -> AsyncIterator[MemoryStore]:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_schema_url"
    store = await MemoryStore.open(str(request.getfixturevalue(fixture)))
    yield store
    await store.close()


async def test_eight_parallel_agents_write_one_namespace_exactly_once(
    team: Team, backend_store: MemoryStore, registry: AgentRegistry
) -> None:
    team.store = backend_store
    session = f"s-{uuid.uuid4().hex[:8]}"
    board = f"{TENANT}/session/{session}"
    # All eight are inside their step before any of them commits: the commits contend.
    barrier = asyncio.Barrier(AGENTS)

    @registry.agent("analyst")
    async def analyst(ctx: AgentContext) -> AgentOutput:
        await asyncio.wait_for(barrier.wait(), 20)
        step = ctx.input.step
        return AgentOutput(
            text=f"{step} reporting",
            writes=(
                MemoryWrite(namespace=board, key=f"finding-{step}", value={"by": step}),
                MemoryWrite(namespace=board, key="tally", value={"last": step}),
            ),
        )

    spec = ChainSpec(
        name="swarm",
        tenant=TENANT,
        session=session,
        agents=(agent("analyst", "python:analyst"),),
        nodes=(Parallel(steps=tuple(Step(agent="analyst", name=f"a{i}") for i in range(AGENTS))),),
    )
    async with team.worker():
        handle, result = await team.run(spec)

    names = {f"a{i}" for i in range(AGENTS)}
    assert {s.step for s in result.steps} == names and len(result.steps) == AGENTS
    ns = (TENANT, "session", session)
    # Each agent's own key: present once.
    for name in names:
        versions = await backend_store.history(ns, f"finding-{name}")
        assert [v.value for v in versions] == [{"by": name}]
    # The key they all wrote: one version per agent, none lost, none twice.
    tally = await backend_store.history(ns, "tally")
    assert [v.version for v in tally] == list(range(1, AGENTS + 1))
    assert {v.value["last"] for v in tally} == names
    assert len({v.commit_seq for v in tally}) == AGENTS
    # The shared transcript: exactly one assistant message per agent.
    transcript = await backend_store.tail(ns, "transcript", 100)
    assert sorted(i.item["content"] for i in transcript) == sorted(f"{n} reporting" for n in names)
    assert len({i.seq for i in transcript}) == AGENTS
    # And one commit per step.
    commits = await team.step_commits(handle.id)
    assert {k: len(v) for k, v in commits.items()} == dict.fromkeys(names, 1)
