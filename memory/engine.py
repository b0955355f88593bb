"""The SQLAlchemy engine behind a `MemoryStore`: URL parsing, per-dialect connection setup.

This is the one place where SQLite and PostgreSQL connections differ: SQLite gets its pragmas
and takes the write lock up front; PostgreSQL gets psycopg 3, connection recycling and timeouts.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, Engine, NullPool, create_engine, event, exc
from sqlalchemy.engine import URL, make_url

from memory.errors import InvalidInput, StoreUnavailable


def _sqlite_connect(dbapi_conn: Any, _record: Any, *, busy_ms: int = 30_000) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (the driver's implicit BEGIN cannot
    # take the write lock up front).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # busy_timeout first: switching a new file to WAL takes a lock that another process may
    # hold. WAL: readers never block the writer. busy_timeout: writers queue for the lock
    # instead of failing with "database is locked". synchronous=FULL: a commit survives power
    # loss, not just a process crash.
    pragmas = (f"busy_timeout={busy_ms}", "journal_mode=WAL", "foreign_keys=ON", "synchronous=FULL")
    for pragma in pragmas:
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writes take the write lock first: a read-then-write transaction can never find the
    # database changed under it, so no update is lost.
    write = conn.get_execution_options().get("cairn_write", False)
    conn.connection.driver_connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")  # type: ignore[union-attr]


def create_store_engine(url: str, *, pool_size: int = 8) -> Engine:
    """An engine for ``sqlite:///path`` or ``postgresql+psycopg://...`` set up for the store.

    Raises:
        InvalidInput: The URL is malformed or of an unsupported kind.
    """
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or not 0 < pool_size <= 200:
        raise InvalidInput(f"pool_size must be an int from 1 to 200, got {pool_size!r}")
    try:
        # make_url raises ValueError for a bad port, not ArgumentError.
        parsed = make_url(url) if isinstance(url, str) else None
    except (exc.ArgumentError, ValueError):
        parsed = None
    if parsed is None:
        raise InvalidInput(
            "memory URL must look like sqlite:///path/to/memory.db or "
            "postgresql+psycopg://user@host:5432/db"
        )
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:") or parsed.database.startswith("file:"):
            raise InvalidInput("SQLite memory needs a file path, e.g. sqlite:///.cairn/memory.db")
        # The store is built on the standard library driver and its pragmas.
        return _sqlite_engine(parsed.set(drivername="sqlite"), pool_size=pool_size)
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        # No pre-ping: it would cost a round trip per operation. A connection the server has
        # dropped fails on its first statement instead, and `memory.runner` retries that once;
        # recycling connections after half an hour keeps idle-timeout drops rare.
        return create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=0,
            pool_recycle=1800,
            pool_timeout=30,
            connect_args={"connect_timeout": 10},
        )
    raise InvalidInput(
        f"unsupported memory URL scheme {parsed.drivername!r}; use sqlite or postgresql"
    )


def _sqlite_engine(url: URL, *, pool_size: int | None, busy_ms: int = 30_000) -> Engine:
    """A SQLite engine with Cairn's pragmas; ``pool_size=None``: no pool, autocommit reads."""
    connect_args = {"check_same_thread": False, "timeout": busy_ms / 1000}
    if pool_size is None:
        engine = create_engine(
            url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=connect_args
        )
    else:
        engine = create_engine(url, pool_size=pool_size, max_overflow=0, connect_args=connect_args)
        event.listen(engine, "begin", _sqlite_begin)
    event.listen(engine, "connect", functools.partial(_sqlite_connect, busy_ms=busy_ms))
    return engine


def create_loop_engine(engine: Engine) -> Engine:
    """A pool-less engine on the same SQLite file, for single-statement reads on the loop.

    Its connections never wait for a lock (``busy_timeout=0``): a read that would have to
    wait fails at once with "database is locked", and `memory.runner` reruns it on a worker
    thread, so the event loop never sleeps in SQLite's busy handler. They run in autocommit
    mode, without BEGIN: one SELECT reads one snapshot on its own.
    """
    return _sqlite_engine(engine.url, pool_size=None, busy_ms=0)


def create_writer_engine(engine: Engine) -> Engine:
    """An engine of one connection on the same SQLite file, for all of a store's writes.

    SQLite has one writer at a time, so the store keeps one connection for writing (see
    `memory.runner`), apart from the pool its reads share.
    """
    return _sqlite_engine(engine.url, pool_size=1)


def unavailable(error: exc.DBAPIError, url: str) -> StoreUnavailable:
    """`StoreUnavailable` for a driver error, quoting the driver's message but no parameters."""
    # The driver's own message only: SQLAlchemy's str() would include parameters (user data).
    lines = str(error.orig).strip().splitlines() if error.orig is not None else []
    reason = lines[0] if lines else type(error.orig or error).__name__
    return StoreUnavailable(f"memory database {url} unavailable: {reason}")
