"""Scratch databases for one benchmark: a SQLite file or a fresh PostgreSQL schema.

Both are created empty, handed out as a `Database` (the URL `MemoryStore.open` takes plus a
raw-driver connection factory for the same tables) and removed afterwards.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg

from bench.runner import Profile

Backend = Literal["sqlite", "postgres"]

# The pragmas `memory.store` sets on every SQLite connection, so the raw side pays the same
# durability and locking costs.
SQLITE_PRAGMAS = ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON", "synchronous=FULL")


def libpq(url: str) -> str:
    """A libpq connection string from a SQLAlchemy ``postgresql+psycopg://`` URL."""
    return url.split("?", 1)[0].replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass(frozen=True)
class Database:
    backend: Backend
    url: str
    path: Path | None = None
    conninfo: str | None = None
    schema: str | None = None
    search_path: str | None = None
    """The schemas a connection searches: ``schema`` first (more after it: `scratch`'s ``also``)."""

    def sqlite(self) -> sqlite3.Connection:
        """A raw autocommit connection with Cairn's pragmas (transactions are explicit)."""
        assert self.path is not None
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        for pragma in SQLITE_PRAGMAS:
            conn.execute(f"PRAGMA {pragma}")
        return conn

    def postgres(self) -> psycopg.Connection:
        """A raw autocommit connection whose search path is this database's schema."""
        assert self.conninfo is not None and self.schema is not None
        return psycopg.connect(
            self.conninfo,
            autocommit=True,
            options=f"-csearch_path={self.search_path or self.schema}",
        )


def backends(profile: Profile) -> list[Backend]:
    """The backends this run can use: SQLite always, PostgreSQL when reachable."""
    return ["sqlite", "postgres"] if profile.postgres_url else ["sqlite"]


@contextmanager
def scratch(
    profile: Profile, backend: Backend, label: str, *, also: tuple[str, ...] = ()
) -> Iterator[Database]:
    """An empty database for ``label``, dropped (or deleted) on exit.

    On PostgreSQL, connections search the schemas ``also`` after the scratch one (``public``,
    where an extension such as pgvector lives).
    """
    tag = f"{label}_{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        path = profile.workdir / f"{tag}.db"
        try:
            yield Database("sqlite", f"sqlite:///{path}", path=path)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    assert profile.postgres_url is not None
    conninfo, schema = libpq(profile.postgres_url), f"cairn_bench_{tag}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    search_path = ",".join((schema, *also))
    sep = "&" if "?" in profile.postgres_url else "?"
    url = f"{profile.postgres_url}{sep}options=-csearch_path%3D{search_path}"
    try:
        yield Database("postgres", url, conninfo=conninfo, schema=schema, search_path=search_path)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
