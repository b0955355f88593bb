"""`heartbeating` returns the call's result, and cancelling it cancels the call."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.testing import ActivityEnvironment

from activities.heartbeat import heartbeating


async def test_returns_the_result() -> None:
    async def call() -> str:
        return "done"

    assert await heartbeating(call(), "details") == "done"


async def test_cancelling_it_cancels_the_model_call() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def call() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.create_task(heartbeating(call(), "details"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()


async def test_a_running_call_heartbeats_with_the_innermost_details() -> None:
    beats: list[object] = []
    beat = asyncio.Event()
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: (beats.extend(details), beat.set())

    async def model_call() -> str:
        await beat.wait()  # returns once the step has heartbeated
        return "reply"

    async def step() -> str:
        return await heartbeating(model_call(), "model call 1")

    assert await env.run(heartbeating, step(), "step") == "reply"
    # One beating task for the step, reporting what runs inside it.
    assert beats == ["model call 1"]
