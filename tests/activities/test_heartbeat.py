"""`heartbeating` returns the call's result, and cancelling it cancels the call."""

from __future__ import annotations

import asyncio

import pytest

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
