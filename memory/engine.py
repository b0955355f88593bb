"""The SQLAlchemy engine behind a `MemoryStore`: URL parsing, per-dialect connection setup.

This is the one place where SQLite and PostgreSQL connections differ: SQLite gets its pragmas
and takes the write lock up front; PostgreSQL gets psycopg 3, connection recycling and timeouts.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
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


# Set once per PostgreSQL connection, not per query (a round trip each): pgvector's iterative
# index scans keep walking the HNSW graph until enough rows pass a search's filters (pgvector
# 0.8). Without pgvector the setting is an unused placeholder.
PG_SESSION_SETTINGS = "SET hnsw.iterative_scan = relaxed_order"


def _postgres_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute(PG_SESSION_SETTINGS)
    # Committed: the pool's rollback on check-in would otherwise undo it.
    dbapi_conn.commit()


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
        engine = create_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=0,
            pool_recycle=1800,
            pool_timeout=30,
            connect_args={"connect_timeout": 10},
        )
        event.listen(engine, "connect", _postgres_connect)
        return engine
    raise InvalidInput(
        f"unsupported memory URL scheme {parsed.drivername!r}; use sqlite or postgresql"
    )


def _sqlite_engine(url: URL, *, pool_size: int, begin: str = "BEGIN") -> Engine:
    """A pooled SQLite engine with Cairn's pragmas whose transactions start with ``begin``."""
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        connect_args={"check_same_thread": False, "timeout": 30},
    )

    def start(conn: Connection) -> None:
        # SQLAlchemy's "begin" event: the driver's own implicit BEGIN could not take the write
        # lock up front. A transaction the runner began on the driver is joined as it is.
        driver: Any = conn.connection.driver_connection
        if not driver.in_transaction:
            driver.execute(begin)

    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", start)
    return engine


def sqlite_reader(path: str) -> sqlite3.Connection:
    """A plain driver connection to a SQLite file, for single-statement reads on the loop.

    It never waits for a lock (``busy_timeout=0``): a read that would have to wait fails at
    once with "database is locked", and `memory.runner` reruns it on a worker thread, so the
    event loop never sleeps in SQLite's busy handler. It runs in autocommit mode, without
    BEGIN: one SELECT reads one snapshot on its own.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
    _sqlite_connect(conn, None, busy_ms=0)
    return conn


def create_writer_engine(engine: Engine) -> Engine:
    """An engine of one connection on the same SQLite file, for all of a store's writes.

    SQLite has one writer at a time, so the store keeps one connection for writing (see
    `memory.runner`), apart from the pool its reads share. Its transactions take the write
    lock first (``BEGIN IMMEDIATE``): a read-then-write transaction can never find the
    database changed under it, so no update is lost.
    """
    return _sqlite_engine(engine.url, pool_size=1, begin="BEGIN IMMEDIATE")


def display_name(url: URL) -> str:
    """A database URL fit to show anyone: no user, password, driver or query parameters."""
    shown = URL.create(url.get_backend_name(), host=url.host, port=url.port, database=url.database)
    return shown.render_as_string()


def unavailable(error: BaseException, url: str) -> StoreUnavailable:
    """`StoreUnavailable` for a driver error, quoting the driver's message but no parameters."""
    # The driver's own message only: SQLAlchemy's str() would include parameters (user data).
    cause = error.orig if isinstance(error, exc.DBAPIError) and error.orig is not None else error
    lines = str(cause).strip().splitlines()
    reason = lines[0] if lines else type(cause).__name__
    return StoreUnavailable(f"memory database {url} unavailable: {reason}")
