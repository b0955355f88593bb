"""The team graph: a researcher and a writer, each run as a Temporal activity by the plugin.

Both nodes write to one `CairnStore` that every workflow shares: findings under
``("team", "findings")`` and a tally of node runs under ``("team", "tally")``, bumped by
compare-and-set. A node's writes are exactly once under retries and worker crashes, so the
tally counts each node run once however often Temporal retried it.
"""

from __future__ import annotations

import asyncio
import operator
import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from temporalio import activity
from temporalio.common import RetryPolicy

from cairn.integrations.langgraph import CairnStore
from memory import ConflictError

FINDINGS = ("team", "findings")
REPORTS = ("team", "reports")
TALLY = ("team", "tally")
# Short, so a node cut off by a dead worker is retried on another within seconds.
NODE_OPTIONS: dict[str, Any] = {
    "execute_in": "activity",
    "start_to_close_timeout": timedelta(seconds=3),
    "retry_policy": RetryPolicy(initial_interval=timedelta(milliseconds=200)),
}

_store: CairnStore | None = None


def use_store(store: CairnStore) -> None:
    """Give this worker process's nodes their store (LangGraph's own store cannot cross)."""
    global _store
    _store = store


def store() -> CairnStore:
    """The worker's store."""
    if _store is None:
        raise RuntimeError("call use_store(CairnStore(...)) before starting the worker")
    return _store


class Team(TypedDict):
    """The graph's state: the topic, and notes that each node appends to."""

    topic: str
    notes: Annotated[list[str], operator.add]


async def bump_tally() -> int:
    """Add one to the shared tally; concurrent writers retry their compare-and-set."""
    s = store()
    while True:
        item = await s.aget(TALLY, "node-runs")
        n = 0 if item is None else int(item.value["n"])
        try:
            await s.aput(
                TALLY, "node-runs", {"n": n + 1}, expected_version=item.version if item else 0
            )
            return n + 1
        except ConflictError:
            continue


def _log(line: str) -> None:
    if path := os.environ.get("TEAM_LOG"):
        with Path(path).open("a") as f:
            f.write(line + "\n")


async def researcher(state: Team) -> dict[str, Any]:
    """Record a finding about the topic."""
    topic = state["topic"]
    await store().aput(FINDINGS, topic, {"topic": topic, "finding": f"{topic} is worth a look"})
    await bump_tally()
    return {"notes": [f"researched {topic}"]}


async def writer(state: Team) -> dict[str, Any]:
    """Write a report from every finding so far (every workflow's), then finish."""
    topic = state["topic"]
    findings = await store().asearch(FINDINGS, limit=100)
    report = {"topic": topic, "findings": sorted(i.key for i in findings)}
    await store().aput(REPORTS, topic, report)
    await bump_tally()
    attempt = activity.info().attempt
    _log(f"writer {topic} attempt {attempt}")
    if os.environ.get("TEAM_HOLD_WRITER") == topic and attempt == 1:
        # Stands for a long model call; the crash test kills the worker here.
        await asyncio.Event().wait()
    return {"notes": [f"wrote {topic}"]}


def build() -> StateGraph[Any, Any, Any, Any]:
    """The uncompiled graph, as `temporalio.langgraph.LangGraphPlugin` takes it."""
    graph = StateGraph(Team)
    graph.add_node("researcher", researcher, metadata=NODE_OPTIONS)
    graph.add_node("writer", writer, metadata=NODE_OPTIONS)
    graph.add_edge(START, "researcher")
    graph.add_edge("researcher", "writer")
    graph.add_edge("writer", END)
    return graph
