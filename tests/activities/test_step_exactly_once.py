"""An agent step commits exactly once, whatever Temporal retries (on both backends)."""

from __future__ import annotations

import pytest

from activities import AgentContext, AgentOutput
from memory import MemoryStore
from tests.activities.conftest import TENANT, Harness, Recorder, agent, attempts, step_input
from tests.activities.workflows_for_tests import Steps, StepsWorkflow


@pytest.fixture
def on_both(harness: Harness, store: MemoryStore) -> Harness:
    """The harness on the parametrized store: SQLite, then PostgreSQL."""
    harness.store = store
    return harness


async def test_retry_after_commit_returns_the_committed_result(on_both: Harness) -> None:
    harness = on_both
    model = Recorder(["The answer is 42."])
    harness.registry.script("solver")(model)
    spec = agent("solver")
    async with harness.worker(faults=frozenset({"raise_after_commit"})):
        handle = await harness.start(StepsWorkflow.run, Steps(steps=(step_input(spec, "solve"),)))
        result = (await handle.result()).results[0]

    assert len(model.calls) == 1, "the retry must not call the model again"
    assert await attempts(handle) == [2], "attempt 1 failed after its commit; attempt 2 replayed"
    commits = await harness.store.list_commits(workflow_id=handle.id)
    assert len(commits) == 1
    commit, record = await harness.record(handle.id, "solve")
    assert commit.provenance.attempt == 1 and commit.provenance.agent == "solver"
    assert commit.key == f"step:{handle.id}:{handle.result_run_id}:1"
    assert result.commit_seq == commit.seq
    assert result.output in commit.writes
    assert result.preview == record.preview == "The answer is 42."
    assert (result.model, result.offline, result.usage) == (record.model, True, record.usage)
    run = (TENANT, "run", handle.id)
    versions = await harness.store.history(run, "output:solve")
    assert [v.version for v in versions] == [1]
    assert versions[0].value["text"] == "The answer is 42."
    assert result.output.namespace == run and result.output.version == 1


async def test_failure_before_commit_commits_once_on_retry(on_both: Harness) -> None:
    harness = on_both
    model = Recorder(["first try", "second try"])
    harness.registry.script("solver")(model)
    spec = agent("solver")
    async with harness.worker(faults=frozenset({"raise_before_commit"})):
        handle = await harness.start(StepsWorkflow.run, Steps(steps=(step_input(spec, "solve"),)))
        result = (await handle.result()).results[0]

    assert len(model.calls) == 2, "nothing was committed, so the retry runs the model again"
    commits = await harness.store.list_commits(workflow_id=handle.id)
    assert len(commits) == 1 and commits[0].provenance.attempt == 2
    assert result.preview == "second try"
    history = await harness.store.history((TENANT, "run", handle.id), "output:solve")
    assert [(v.version, v.value["text"]) for v in history] == [(1, "second try")]


async def test_python_agent_runs_once_and_its_writes_land_in_the_step_commit(
    harness: Harness,
) -> None:
    calls: list[str] = []

    @harness.registry.agent("tally")
    async def tally(ctx: AgentContext) -> AgentOutput:
        calls.append(ctx.input.task)
        note = {"namespace": f"{TENANT}/run/{ctx.bindings['run'][2]}", "key": "note", "value": 1}
        return AgentOutput(text="counted", data={"n": len(calls)}, writes=(note,))

    spec = agent("tally", model="python:tally")
    async with harness.worker(faults=frozenset({"raise_after_commit"})):
        wf, (result,) = await harness.steps(step_input(spec, "count", task="count me"))

    assert calls == ["count me"]
    commit, record = await harness.record(wf, "count")
    assert (record.model, record.offline) == ("python:tally", True)
    note = await harness.store.get((TENANT, "run", wf), "note")
    output = await harness.store.get((TENANT, "run", wf), "output:count")
    assert note.commit_seq == output.commit_seq == result.commit_seq == commit.seq
    assert output.value["data"] == {"n": 1}


async def test_each_step_of_a_workflow_has_its_own_commit(harness: Harness) -> None:
    harness.registry.script("solver")(Recorder([lambda call: call.messages[-1].content.upper()]))
    spec = agent("solver")
    async with harness.worker():
        wf, results = await harness.steps(
            step_input(spec, "one", task="first"), step_input(spec, "two", task="second")
        )
    assert [r.preview for r in results] == ["FIRST", "SECOND"]
    commits = await harness.store.list_commits(workflow_id=wf)
    assert [c.seq for c in commits] == [r.commit_seq for r in results]
    assert len({c.key for c in commits}) == 2
