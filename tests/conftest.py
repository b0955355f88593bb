"""Shared fixtures: one real Temporal dev server per session, and real memory stores.

PostgreSQL comes from ``CAIRN_TEST_POSTGRES_URL`` (default: the local server, database
``test``). Each test gets a fresh schema there. When PostgreSQL is unreachable the tests that
need it are skipped locally, but fail under ``CI``: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from cairn.devserver import start_local
from memory import MemoryStore

POSTGRES_URL = os.environ.get(
    "CAIRN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server on a free port, shared by the whole session."""
    env = await start_local()
    yield env
    await env.shutdown()


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    """The dev server's client (pydantic data converter)."""
    return temporal_env.client


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[MemoryStore]:
    """An open store on SQLite only (for tests that need one backend)."""
    s = await MemoryStore.open(sqlite_url)
    yield s
    await s.close()


@pytest.fixture
def task_queue() -> str:
    """A fresh task queue per test, so workers of different tests never share work."""
    return f"tq-{uuid.uuid4()}"


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server's URL; a failure under CI when it cannot be reached."""
    try:
        with psycopg.connect(_libpq(POSTGRES_URL), connect_timeout=5):
            pass
    except psycopg.OperationalError as error:
        message = f"PostgreSQL at {POSTGRES_URL} is unreachable: {error}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return POSTGRES_URL


def fresh_schema(postgres_url: str) -> Iterator[str]:
    """Yield a URL whose connections use a fresh, empty schema; drop the schema afterwards."""
    schema = f"cairn_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(postgres_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in postgres_url else "?"
    yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(_libpq(postgres_url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema, dropped after the test."""
    yield from fresh_schema(postgres_url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite memory file in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'memory.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    """The memory URL of each backend in turn: the contract suite runs against both."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_schema_url"))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[MemoryStore]:
    """An open, migrated store on each backend."""
    s = await MemoryStore.open(store_url)
    yield s
    await s.close()


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """The process's one global tracer provider, exporting to memory (OpenTelemetry allows
    one per process, so every test that inspects spans shares this; clear it first)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        pytest.fail("a global tracer provider was installed outside the span_exporter fixture")
    return exporter


@pytest.fixture(scope="session")
def metric_reader() -> InMemoryMetricReader:
    """The process's one global meter provider, read in memory."""
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return reader
