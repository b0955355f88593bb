"""Scenario 15: an in-flight workflow survives a code upgrade that uses `workflow.patched`.

A run started on version 1 waits for a signal while the workers are replaced. A version that
changes the past without a patch is caught (its workflow task fails with a nondeterminism
error and the run stalls, unharmed); the patched version replays the run unchanged, takes the
new path from there on, and runs new starts the new way. Memory holds each step once. (The
recorded-history replay gate is tests/workflows/test_replay.py.)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.worker import Worker

from cairn.runtime import Settings, build_worker
from tests.fault.upgrade_workflows import OnboardingV1, OnboardingV2, OnboardingV2Unpatched
from tests.workflows.harness import TENANT, Team, wait_until

pytestmark = pytest.mark.fault


@asynccontextmanager
async def deployed(team: Team, workflow: type) -> AsyncIterator[Worker]:
    settings = Settings(task_queue=team.task_queue, shutdown_grace=1)
    async with build_worker(team.client, team.store, settings, team.registry, [workflow]) as w:
        yield w


async def test_an_in_flight_run_survives_a_patched_upgrade(team: Team) -> None:
    async def start() -> WorkflowHandle[Any, list[str]]:
        return await team.client.start_workflow(
            "Onboarding",
            TENANT,
            id=f"onboarding-{uuid.uuid4().hex[:8]}",
            task_queue=team.task_queue,
            execution_timeout=timedelta(seconds=90),
            result_type=list[str],
        )

    async with deployed(team, OnboardingV1):
        old = await start()
        await wait_until(lambda: old.query("steps"))

    async with deployed(team, OnboardingV2Unpatched):
        await old.signal("proceed")

        async def task_failed() -> bool:
            history = await old.fetch_history()
            failed = [
                e.workflow_task_failed_event_attributes.failure.message
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
            ]
            return any("Nondeterminism" in m or "nondeterminism" in m for m in failed)

        await wait_until(task_failed)

    async with deployed(team, OnboardingV2):
        upgraded = await asyncio.wait_for(old.result(), 30)
        new = await start()
        await new.signal("proceed")
        fresh = await asyncio.wait_for(new.result(), 30)

    # The old run kept its past (no review) and took the new path after the upgrade (audit).
    assert upgraded == ["greet", "audit", "finish"]
    assert fresh == ["greet", "review", "audit", "finish"]
    for handle, steps in ((old, upgraded), (new, fresh)):
        commits = await team.step_commits(handle.id)
        assert {k: len(v) for k, v in commits.items()} == dict.fromkeys(steps, 1)
