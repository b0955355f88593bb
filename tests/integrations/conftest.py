"""Fixtures for the framework integrations: a real local model server, and one store per module."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from openai import AsyncOpenAI

from memory import MemoryStore
from tests.activities.fake_providers import FakeProvider


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    """A local server speaking the OpenAI chat-completions wire format."""
    fake = FakeProvider()
    yield fake
    fake.close()


@pytest.fixture
async def model_client(provider: FakeProvider) -> AsyncIterator[AsyncOpenAI]:
    """The OpenAI SDK's client on ``provider``, closed after the test."""
    client = AsyncOpenAI(base_url=f"{provider.url}/v1", api_key="sk-test", max_retries=0)
    yield client
    await client.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[MemoryStore]:
    """One store per backend for the whole module (migrations are most of a test's cost);
    tests keep apart by tenant (`tenant`)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('memory') / 'memory.db'}"
        async with await MemoryStore.open(url) as s:
            yield s
        return
    base = str(request.getfixturevalue("postgres_url"))
    schema = f"cairn_test_{uuid.uuid4().hex[:12]}"
    libpq = base.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        async with await MemoryStore.open(f"{base}?options=-csearch_path%3D{schema}") as s:
            yield s
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def tenant() -> str:
    """A tenant of the test's own, so tests sharing a module's store never see each other."""
    return f"t-{uuid.uuid4().hex[:10]}"
