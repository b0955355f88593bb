"""The store conformance suite against LangGraph's own stores (the proof that it tests
LangGraph's semantics) and against `CairnStore` on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.store.sqlite.aio import AsyncSqliteStore

from cairn.integrations.langgraph import CairnStore
from cairn.integrations.langgraph.conformance import StoreConformance
from tests.integrations.langgraph.conftest import libpq


@pytest.fixture(scope="module")
async def langgraph_sqlite_store(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[AsyncSqliteStore]:
    path = tmp_path_factory.mktemp("lg") / "store.db"
    async with AsyncSqliteStore.from_conn_string(str(path)) as store:
        await store.setup()
        yield store


@pytest.fixture(scope="module")
async def langgraph_postgres_store(module_pg_url: str) -> AsyncIterator[AsyncPostgresStore]:
    async with AsyncPostgresStore.from_conn_string(libpq(module_pg_url)) as store:
        await store.setup()
        yield store


class TestInMemoryStore(StoreConformance):
    @pytest.fixture
    def store_under_test(self) -> BaseStore:
        return InMemoryStore()


class TestSqliteStore(StoreConformance):
    @pytest.fixture
    def store_under_test(self, langgraph_sqlite_store: AsyncSqliteStore) -> BaseStore:
        return langgraph_sqlite_store


@pytest.mark.postgres
class TestPostgresStore(StoreConformance):
    @pytest.fixture
    def store_under_test(self, langgraph_postgres_store: AsyncPostgresStore) -> BaseStore:
        return langgraph_postgres_store


class TestCairnStore(StoreConformance):
    @pytest.fixture
    def store_under_test(self, cairn_store: CairnStore) -> BaseStore:
        return cairn_store
