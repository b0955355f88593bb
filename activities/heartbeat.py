"""Heartbeating while a long call runs, so Temporal tells a slow model from a dead worker.

Workflows give model-calling activities a heartbeat timeout of tens of seconds; a model call
may take minutes. `heartbeating` awaits the call and heartbeats every few seconds meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity

T = TypeVar("T")
HEARTBEAT_EVERY = 5.0
"""Seconds between heartbeats; well under any heartbeat timeout a workflow sets."""


async def heartbeating(awaitable: Awaitable[T], details: str) -> T:
    """Await ``awaitable`` while heartbeating ``details``; cancelling this cancels it."""
    task = asyncio.ensure_future(awaitable)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY)
            if done:
                return task.result()
            activity.heartbeat(details)
    finally:
        # A cancelled activity must not leave its model call running.
        task.cancel()
