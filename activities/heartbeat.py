"""Heartbeating while a step runs, so Temporal tells a slow model from a dead worker.

Workflows give step activities a heartbeat timeout of a few seconds (`workflows.steps`
``STEP_HEARTBEAT``), so a step whose worker was killed runs again elsewhere within seconds,
while a model call may take minutes. `heartbeating` awaits a call and heartbeats every second
meanwhile. The SDK sends at most one heartbeat to the server per 80% of the heartbeat timeout
and keeps the rest locally, so beating often costs a timer wake-up, not a round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import TypeVar

from temporalio import activity

T = TypeVar("T")
HEARTBEAT_EVERY = 1.0
"""Seconds between heartbeats; a fifth of the shortest heartbeat timeout a workflow sets."""

# The details the innermost running `heartbeating` reports; one beating task per activity.
_DETAILS: ContextVar[list[str] | None] = ContextVar("cairn_heartbeat_details", default=None)


async def _beat(details: list[str]) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_EVERY)
        activity.heartbeat(details[0])


async def heartbeating(awaitable: Awaitable[T], details: str) -> T:
    """Await ``awaitable`` while heartbeating ``details``; cancelling this cancels it.

    The call runs in the caller's task, so a step that ends in milliseconds pays no extra
    hop; a side task heartbeats until it ends. Nested inside another `heartbeating` (a model
    call within a step), it only changes the details the outer one reports.
    """
    outer = _DETAILS.get()
    if outer is not None:
        previous, outer[0] = outer[0], details
        try:
            return await awaitable
        finally:
            outer[0] = previous
    current = [details]
    token = _DETAILS.set(current)
    beat = asyncio.create_task(_beat(current))
    try:
        return await awaitable
    finally:
        beat.cancel()
        _DETAILS.reset(token)
