"""Scenarios 2 and 5: a worker dies before its step commits; a commit's outcome is unknown.

Worker processes (``python worker.py``) load tests/activities/fault_points.py by
``CAIRN_EXTENSIONS`` and hit its fault points at `AgentActivities.checkpoint` on each step's
first attempt: ``crash_before_commit`` exits the process after the model call,
before the step's commit; ``raise_after_commit`` and ``raise_before_commit`` fail the attempt
with the commit applied, or not, as a lost connection would. Scenario 1 (a SIGKILL after the
commit) is tests/workflows/test_worker_crash.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from memory import MemoryStore
from tests.fault.checker import History
from tests.fault.runs import start_chain
from tests.workflows.harness import run_ns, step_commits
from tests.workflows.test_worker_crash import Workers, chain, counted

pytestmark = pytest.mark.fault


async def present_steps(workers: Workers, workflow_id: str) -> tuple[list[str], list[str]]:
    """The steps committed, one per commit; and the run's keys with every version each has."""
    store = await MemoryStore.open(workers.url)
    try:
        commits = await step_commits(store, workflow_id)
        entries = (await store.list(run_ns(workflow_id))).entries
        versions = [
            f"{e.key}@{h.version}" for e in entries for h in await store.history(e.namespace, e.key)
        ]
    finally:
        await store.close()
    return [name for name, found in commits.items() for _ in found], versions


async def assert_s1_s2_committed_once(workers: Workers, workflow_id: str) -> None:
    """Steps s1 and s2 each committed exactly once, each output at version 1."""
    history = History()
    for s in ("s1", "s2"):
        history.record(s, "ok")
    steps, versions = await present_steps(workers, workflow_id)
    history.check(steps)
    assert versions == ["output:s1@1", "output:s2@1"]


async def test_sigkill_before_the_commit_leaves_nothing_and_the_retry_commits_once(
    workers: Workers,
) -> None:
    handle = await start_chain(
        workers.client, workers.task_queue, chain(counted("s1"), counted("s2"))
    )
    async with workers.process(fault="crash_before_commit") as first:
        # The model answered, then the process died before the commit.
        assert await asyncio.wait_for(first.wait(), 60) == 137, workers.worker_logs()
    assert workers.log_lines() == ["call s1"]
    assert await present_steps(workers, handle.id) == ([], [])  # no partial rows
    async with workers.process():
        result = await asyncio.wait_for(handle.result(), 80)

    await assert_s1_s2_committed_once(workers, handle.id)
    # Nothing was committed, so the retry had to call the model again, and only for s1.
    assert workers.log_lines() == ["call s1", "call s1", "call s2"]
    assert [s.step for s in result.steps] == ["s1", "s2"]


EXPECTED = {
    # Applied, but the caller saw an error: the retry finds the key and calls nothing.
    "raise_after_commit": (["call s1", "call s2"], 1),
    # Not applied: the retry runs the step again and commits it once.
    "raise_before_commit": (["call s1", "call s1", "call s2", "call s2"], 2),
}


async def test_a_commit_whose_outcome_the_step_did_not_see_applies_once(
    client: Client, tmp_path: Path
) -> None:
    async def run(fault: str) -> tuple[Workers, Any]:
        (tmp_path / fault).mkdir()
        workers = Workers(client, tmp_path / fault)
        handle = await start_chain(client, workers.task_queue, chain(counted("s1"), counted("s2")))
        async with workers.process(fault=fault):
            return workers, (handle, await asyncio.wait_for(handle.result(), 60))

    runs = dict(zip(EXPECTED, await asyncio.gather(*map(run, EXPECTED)), strict=True))
    for fault, (workers, (handle, result)) in runs.items():
        calls, attempt = EXPECTED[fault]
        await assert_s1_s2_committed_once(workers, handle.id)
        assert workers.log_lines() == calls, fault
        store = await MemoryStore.open(workers.url)
        try:
            commits = await step_commits(store, handle.id)
        finally:
            await store.close()
        for s, ref in zip(("s1", "s2"), result.steps, strict=True):
            (commit,) = commits[s]
            # The workflow got the one commit's result, whichever attempt reported it.
            assert ref.commit_seq == commit.seq
            assert commit.provenance.attempt == attempt, fault
