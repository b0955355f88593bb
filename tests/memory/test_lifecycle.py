"""Contract: expiry and purging, the size cap, opening, reachability and migrations."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from memory import (
    InvalidInput,
    MemoryStore,
    MemoryStoreError,
    NotFound,
    StoreUnavailable,
    ValueTooLarge,
)
from memory.engine import create_store_engine
from memory.migrations import SCHEMA_VERSION
from tests.memory.conftest import NS, Clock, put, row_counts


async def test_expired_entries_are_hidden_at_once(clock_store: tuple[MemoryStore, Clock]) -> None:
    store, clock = clock_store
    await put(store, NS, "temp", "v1")
    await put(store, NS, "temp", "short-lived", ttl=30)
    await put(store, NS, "kept", "no expiry")
    entry = await store.get(NS, "temp")
    assert entry.expires_at is not None
    assert (entry.expires_at - clock.now).total_seconds() == 30
    clock.advance(29)
    assert (await store.get(NS, "temp")).value == "short-lived"
    clock.advance(1)
    with pytest.raises(NotFound):
        await store.get(NS, "temp")
    assert [e.key for e in (await store.list(NS)).entries] == ["kept"]
    # The expired version is gone from history; the earlier, unexpiring one remains.
    assert [h.value for h in await store.history(NS, "temp")] == ["v1"]


async def test_an_expired_key_counts_as_missing_for_writes(
    clock_store: tuple[MemoryStore, Clock],
) -> None:
    store, clock = clock_store
    await put(store, NS, "lock", "held", ttl=10)
    await put(store, NS, "log", ["old"], ttl=10)
    clock.advance(11)
    async with store.commit() as c:
        c.put(NS, "lock", "mine", expected_version=0)
        c.put(NS, "log", "new", merge="append")
    assert (await store.get(NS, "lock")).value == "mine"
    assert (await store.get(NS, "log")).value == ["new"]


async def test_purge_expired_deletes_for_good(clock_store: tuple[MemoryStore, Clock]) -> None:
    store, clock = clock_store
    await put(store, NS, "gone", "a", ttl=5)
    await put(store, NS, "gone", "b", ttl=5)
    await put(store, NS, "old-version", "expires", ttl=5)
    await put(store, NS, "old-version", "stays")
    await put(store, NS, "fresh", "stays", ttl=3600)
    clock.advance(6)
    counts = await store.purge_expired()
    assert counts == {"keys": 1, "versions": 3}
    with store.engine.connect() as conn:
        left = conn.execute(text("SELECT key, value FROM cairn_entries ORDER BY id")).all()
        heads = conn.execute(text("SELECT key FROM cairn_heads ORDER BY key")).scalars().all()
    assert [tuple(r) for r in left] == [("old-version", '"stays"'), ("fresh", '"stays"')]
    assert heads == ["fresh", "old-version"]
    assert (await store.audit_log(limit=1))[0].action == "purge_expired"
    assert await store.purge_expired() == {"keys": 0, "versions": 0}


async def test_ttl_must_be_positive(store: MemoryStore) -> None:
    async with store.commit() as c:
        for ttl in (0, -1, float("nan"), float("inf"), "60", True, 1e12):
            with pytest.raises(InvalidInput, match="ttl"):
                c.put(NS, "k", 1, ttl=ttl)  # type: ignore[arg-type]


async def test_size_cap_is_checked_before_anything_is_written(open_store) -> None:
    store = await open_store(max_value_bytes=100)
    await put(store, NS, "small", "x" * 98)  # '"' + 98 + '"' is exactly the cap
    before = await row_counts(store)
    with pytest.raises(ValueTooLarge) as info:
        async with store.commit() as c:
            c.put(NS, "first", "fits")
            c.put(NS, "big", "x" * 99)
    err = info.value
    assert (err.namespace, err.key, err.size, err.limit) == (NS, "big", 101, 100)
    assert "101 bytes; the limit is 100 bytes" in str(err)
    assert isinstance(err, InvalidInput)
    with pytest.raises(ValueTooLarge):
        async with store.commit() as c:
            c.append(NS, "log", ["é" * 60])  # 120 bytes of UTF-8, 60 characters
    with pytest.raises(ValueTooLarge):
        async with store.commit() as c:
            c.put(NS, "log", ["x" * 60], merge="append")
            c.put(NS, "log", ["x" * 60], merge="append")  # the merged list is over the cap
    with pytest.raises(ValueTooLarge, match="commit"):
        async with store.commit() as c:
            c.put(NS, "k", 1)
            c.result = "r" * 70_000
    assert await row_counts(store) == before


async def test_open_rejects_bad_urls(tmp_path: Path) -> None:
    bad = [
        "",
        "not a url",
        "mysql://user@localhost/db",
        "http://example.com/memory",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql+psycopg://user@localhost:notaport/db",
        None,
        42,
    ]
    for url in bad:
        with pytest.raises(InvalidInput, match=r"memory|SQLite"):
            await MemoryStore.open(url)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="pool_size"):
        await MemoryStore.open(f"sqlite:///{tmp_path}/m.db", pool_size=0)
    with pytest.raises(InvalidInput, match="max_value_bytes"):
        await MemoryStore.open(f"sqlite:///{tmp_path}/m.db", max_value_bytes=-1)


async def test_other_sqlite_drivers_use_the_standard_one(tmp_path: Path) -> None:
    store = await MemoryStore.open(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    try:
        assert store.engine.dialect.driver == "pysqlite"
        await put(store, NS, "k", 1)
    finally:
        await store.close()


async def test_unreachable_database_is_store_unavailable(store_url: str, tmp_path: Path) -> None:
    if store_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path}/no/such/dir/memory.db"
    else:
        url = "postgresql+psycopg://postgres:hunter2@127.0.0.1:1/test"
    with pytest.raises(StoreUnavailable, match="unavailable") as info:
        await MemoryStore.open(url)
    assert "hunter2" not in str(info.value)


async def test_setup_is_idempotent(store: MemoryStore) -> None:
    assert await store.setup() == (SCHEMA_VERSION, SCHEMA_VERSION)
    await put(store, NS, "k", 1)
    assert await store.setup() == (SCHEMA_VERSION, SCHEMA_VERSION)
    assert (await store.get(NS, "k")).value == 1
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cairn_schema")).scalar_one() == 1


async def test_migrations_run_once_when_many_stores_start_together(store_url: str) -> None:
    stores = [MemoryStore(create_store_engine(store_url, pool_size=1)) for _ in range(6)]
    try:
        results = await asyncio.gather(*(s.setup() for s in stores))
        latest = SCHEMA_VERSION
        assert sorted(results) == [(0, latest)] + [(latest, latest)] * 5
        await put(stores[0], NS, "k", "from 0")
        assert (await stores[5].get(NS, "k")).value == "from 0"
        with stores[0].engine.connect() as conn:
            versions = conn.execute(text("SELECT version FROM cairn_schema")).scalars().all()
        assert versions == [latest]
    finally:
        for s in stores:
            await s.close()


async def test_open_without_migrate_refuses_an_unmigrated_database(store_url: str) -> None:
    with pytest.raises(MemoryStoreError, match="cairn memory migrate"):
        await MemoryStore.open(store_url, migrate=False)
    migrated = await MemoryStore.open(store_url)
    await migrated.close()
    checked = await MemoryStore.open(store_url, migrate=False)
    await checked.close()


async def test_a_closed_store_says_so(store_url: str) -> None:
    store = await MemoryStore.open(store_url)
    await store.close()
    with pytest.raises(MemoryStoreError, match="closed"):
        await store.get(NS, "k")


async def test_a_version_1_database_migrates_to_long_commit_keys(store: MemoryStore) -> None:
    with store.engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("ALTER TABLE cairn_commits ALTER COLUMN key TYPE VARCHAR(300)"))
        conn.execute(text("UPDATE cairn_schema SET version = 1"))
    assert await store.setup() == (1, SCHEMA_VERSION)
    # A Temporal workflow id may be 1,000 bytes; keys built from it must fit.
    key = f"step:{'w' * 1000}:0191b7a4-6a1e-7c3e-9f55-9c1d2a3b4c5d:12"
    async with store.commit(key=key) as c:
        c.put(NS, "k", 1)
    assert (await store.get_commit(key)).key == key
    assert await store.setup() == (SCHEMA_VERSION, SCHEMA_VERSION)


async def test_connections_the_server_dropped_are_replaced_unnoticed(
    postgres_url: str, postgres_schema_url: str
) -> None:
    # The pool does not ping before use: a connection the server dropped (a restart, an idle
    # timeout) fails on its first statement, and the store reruns the operation once.
    name = f"cairn_dropped_{uuid.uuid4().hex[:8]}"
    store = await MemoryStore.open(f"{postgres_schema_url}&application_name={name}")

    def drop_all() -> int:
        with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as conn:
            kill = (
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s"
            )
            return len(conn.execute(kill, (name,)).fetchall())

    try:
        await put(store, NS, "k", 1)
        assert drop_all() > 0
        assert (await store.get(NS, "k")).value == 1
        drop_all()
        async with store.commit() as c:
            c.put(NS, "k", 2)
        assert (c.seq, c.replayed) == (2, False)
        drop_all()
        assert [e.value for e in await store.history(NS, "k")] == [1, 2]
        drop_all()
        assert (await store.forget(NS))["keys"] == 1
    finally:
        await store.close()
