"""A test extension: agent steps that crash or raise at a checkpoint, on their first attempt.

Production code has no fault injection; tests load it the way users load their own code.
In-process workers use `with_faults`; ``python worker.py`` processes load this module through
``CAIRN_EXTENSIONS``, which picks up `agent_activities`, with the faults named (comma-separated)
by ``CAIRN_TEST_FAULT``: ``crash_before_commit``, ``crash_after_commit``, ``raise_before_commit``,
``raise_after_commit``. A crash is ``os._exit(137)``, as when the machine dies.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from temporalio import activity

from activities import AgentActivities

POINTS = frozenset(
    f"{how}_{point}" for how in ("crash", "raise") for point in ("before_commit", "after_commit")
)


class FaultyAgentActivities(AgentActivities):
    """`AgentActivities` whose `checkpoint` fires the faults in `faults`."""

    faults: frozenset[str] = frozenset()

    async def checkpoint(self, point: str) -> None:
        if activity.info().attempt != 1:
            return
        if f"crash_{point}" in self.faults:
            os._exit(137)
        if f"raise_{point}" in self.faults:
            raise RuntimeError(f"injected fault {point}")


def with_faults(faults: Iterable[str]) -> type[AgentActivities]:
    """An `AgentActivities` subclass firing ``faults``; a `ValueError` names an unknown one."""
    chosen = frozenset(faults)
    if unknown := chosen - POINTS:
        raise ValueError(f"unknown fault points {sorted(unknown)}; known: {sorted(POINTS)}")
    return type("FaultyAgentActivities", (FaultyAgentActivities,), {"faults": chosen})


agent_activities = with_faults(f for f in os.environ.get("CAIRN_TEST_FAULT", "").split(",") if f)
