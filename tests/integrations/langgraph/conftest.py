"""LangGraph's own stores and savers, and Cairn's, on real databases, for the shared suites.

The suites write under unique names, so one store per module serves all of a module's tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from cairn.integrations.langgraph import CairnStore
from memory import MemoryStore
from tests.conftest import fresh_schema


def libpq(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as a libpq connection string."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="module")
def module_pg_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL URL on a fresh schema for this module, dropped after it."""
    yield from fresh_schema(postgres_url)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A memory URL on each backend, shared by a module's tests."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('cairn') / 'memory.db'}"
    return str(request.getfixturevalue("module_pg_url"))


@pytest.fixture(scope="module")
async def module_memory(module_store_url: str) -> AsyncIterator[MemoryStore]:
    """An open memory store on each backend, shared by a module's tests."""
    memory = await MemoryStore.open(module_store_url)
    yield memory
    await memory.close()


@pytest.fixture(scope="module")
async def cairn_store(module_memory: MemoryStore) -> AsyncIterator[CairnStore]:
    """A `CairnStore` on each backend, shared by a module's tests."""
    store = CairnStore(module_memory, namespace=("acme", "langgraph"))
    yield store
    store.close()
