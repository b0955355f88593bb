"""Fixtures for the workflow tests: the production worker per test, on a fresh task queue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client

from activities import AgentRegistry
from memory import MemoryStore
from tests.workflows.harness import Team


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[MemoryStore]:
    """SQLite unless a test asks for PostgreSQL (this overrides the two-backend fixture)."""
    s = await MemoryStore.open(sqlite_url)
    yield s
    await s.close()


@pytest.fixture
def registry() -> AgentRegistry:
    """Python agents and scripts for this test (the demo's are added by `build_worker`)."""
    return AgentRegistry()


@pytest.fixture
def team(client: Client, task_queue: str, store: MemoryStore, registry: AgentRegistry) -> Team:
    return Team(client, task_queue, store, registry)
