"""Fixtures for the fault suite: worker processes, dev servers of a test's own, stores, teams.

Workers that a test kills are real ``python worker.py`` processes (`Workers`, shared with
tests/workflows/test_worker_crash.py); a dev server a test kills, restarts or configures with
low limits is its own `DevServer`. Everything started here is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from temporalio.client import Client

from activities import AgentRegistry
from memory import MemoryStore
from tests.fault.servers import DevServer
from tests.workflows.harness import Team
from tests.workflows.test_worker_crash import Workers

FAULT_AGENTS = "tests.workflows.crash_agents,tests.fault.agents"
"""What ``CAIRN_EXTENSIONS`` loads into worker processes: the crash tests' agents and ours."""


@pytest.fixture
def registry() -> AgentRegistry:
    from tests.fault.agents import registry

    return registry


@pytest.fixture
def team(
    client: Client, task_queue: str, sqlite_store: MemoryStore, registry: AgentRegistry
) -> Team:
    """In-process production workers on the session's dev server (nothing killed)."""
    return Team(client, task_queue, sqlite_store, registry)


@pytest.fixture
def workers(client: Client, tmp_path: Path) -> Workers:
    """``python worker.py`` processes on the session's dev server and a SQLite file."""
    return Workers(client, tmp_path)


@pytest.fixture
async def dev_server(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[DevServer]]]:
    """Start a dev server of the test's own: ``await dev_server({"limit.x": 1})``."""
    started: list[DevServer] = []

    async def start(dynamic_config: dict[str, object] | None = None) -> DevServer:
        server = DevServer(tmp_path, dynamic_config)
        started.append(server)
        await server.start()
        return server

    yield start
    for server in started:
        await server.stop()
