"""How `MemoryStore` runs its transactions: each one short, almost all on a worker thread.

Every operation is one transaction on a synchronous SQLAlchemy Core connection from the pool,
run on the store's worker threads, so the event loop never waits for the database and an
operation costs one thread hop, not one per statement. The exceptions are SQLite point reads,
cheaper than the hop itself, which run on the loop thread (`_LoopReader`). SQLite writes queue
on an in-process lock per database file before taking the database's write lock; PostgreSQL
reads run in autocommit. A connection the server dropped is retried once where that is safe
(`Runner._reconnectable`). Driver errors that mean "could not reach or lock the database"
become `StoreUnavailable`, which callers may retry; everything else propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, exc

from memory.engine import create_loop_engine, unavailable
from memory.errors import MemoryStoreError, StoreUnavailable

T = TypeVar("T")

# PostgreSQL: deadlock and serialization failures abort a transaction that is safe to rerun
# (the idempotency key makes a rerun of an applied commit a replay).
_RETRY_SQLSTATES = {"40001", "40P01"}
_RETRIES = 5


class _FileLock:
    """A process-wide lock for one SQLite file (a class, so the registry can hold it weakly)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()


_file_locks: weakref.WeakValueDictionary[str, _FileLock] = weakref.WeakValueDictionary()
_file_locks_guard = threading.Lock()


def _sqlite_write_lock(engine: Engine) -> _FileLock | None:
    """The in-process write lock shared by every store of this SQLite file; None otherwise.

    SQLite has one writer at a time. Writers that find the write lock taken poll for it in
    SQLite's busy handler, sleeping up to 100 ms between tries, so under contention a commit
    that could run in 2 ms waits hundreds (p99 commit latency was 0.6-3.8 s with 8-32
    writers). Queueing on this lock first hands the database from one writer to the next at
    once. ``busy_timeout`` still arbitrates between processes.
    """
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return None
    path = os.path.realpath(engine.url.database)
    with _file_locks_guard:
        lock = _file_locks.get(path)
        if lock is None:
            lock = _file_locks[path] = _FileLock()
        return lock


class _LoopReader:
    """SQLite point reads run on the calling thread (the event loop's), one connection each.

    A point read (one key, or at most 100 versions or stream items: one SELECT) costs 30-60 us
    in SQLite, and handing it to a worker thread and back costs 50-250 us more, several times
    the read (measured on 10k entries: `store.get` p50 266 us on the pool, 77 us inline). In
    WAL mode a reader never waits for a writer, and these connections never wait at all
    (`create_loop_engine`), so running such a read inline blocks the loop for less than the
    hop would have cost. Reads that can grow large or take several statements (lists, search,
    long histories, stream ranges, commits with their writes) and all writes stay on the
    worker threads.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = create_loop_engine(engine)
        self._local = threading.local()
        self._connections: list[Connection] = []
        self._guard = threading.Lock()

    def run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T | _Deferred:
        """``fn(conn, *args)`` in a read transaction on this thread, or `DEFERRED`.

        `DEFERRED` means the database was busy or the driver failed: the worker-thread path
        then reruns the read, waiting for locks and reporting errors the usual way.
        """
        conn: Connection | None = getattr(self._local, "conn", None)
        try:
            if conn is None or conn.invalidated or conn.closed:
                conn = self._engine.connect()
                self._local.conn = conn
                with self._guard:
                    self._connections.append(conn)
            with conn.begin():
                return fn(conn, *args)
        except exc.DBAPIError:
            return DEFERRED

    def close(self) -> None:
        with self._guard:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._engine.dispose()


class _Deferred:
    """The marker of a point read that must run on a worker thread after all."""


DEFERRED = _Deferred()


class Runner:
    """Runs ``fn(conn, *args)`` in one transaction on a worker thread of its own pool."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.closed = False
        self._url = engine.url.render_as_string(hide_password=True)
        self._autocommit_reads = engine.dialect.name == "postgresql"
        self._write_lock = _sqlite_write_lock(engine)
        self._loop_reader = _LoopReader(engine) if engine.dialect.name == "sqlite" else None
        self._executor = ThreadPoolExecutor(
            max_workers=engine.pool.size(),  # type: ignore[attr-defined]
            thread_name_prefix="cairn-memory",
        )

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        write: bool = False,
        idempotent: bool = False,
        point: bool = False,
    ) -> T:
        """Run ``fn(conn, *args)`` in one transaction (a write transaction if ``write``).

        ``idempotent`` says that running a write twice does what running it once does (a
        commit, by its key), so it may be retried even when its outcome is unknown. ``point``
        marks a small, bounded read, which SQLite runs on the calling thread (`_LoopReader`).
        """
        if self.closed:
            raise MemoryStoreError("this memory store is closed")
        if point and self._loop_reader is not None and not write:
            result = self._loop_reader.run(fn, args)
            if not isinstance(result, _Deferred):
                return result
        call = functools.partial(self._transaction, fn, args, write, idempotent)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def close(self) -> None:
        """Release the connection pool and the worker threads."""
        self.closed = True
        if self._loop_reader is not None:
            self._loop_reader.close()
        await asyncio.get_running_loop().run_in_executor(None, self.engine.dispose)
        self._executor.shutdown(wait=False)

    def _transaction(
        self, fn: Callable[..., T], args: tuple[Any, ...], write: bool, idempotent: bool
    ) -> T:
        reconnected = False
        for attempt in range(_RETRIES):
            committing = False
            queue = (
                self._write_lock.lock if write and self._write_lock else contextlib.nullcontext()
            )
            try:
                with queue, self.engine.connect() as conn:
                    if write:
                        conn.execution_options(cairn_write=True)
                    elif self._autocommit_reads:
                        # PostgreSQL reads at READ COMMITTED see a new snapshot per statement
                        # whether or not they are in a transaction, so BEGIN and COMMIT would
                        # only add two round trips.
                        conn.execution_options(isolation_level="AUTOCOMMIT")
                        return fn(conn, *args)
                    with conn.begin():
                        result = fn(conn, *args)
                        committing = True
                    return result
            except exc.DBAPIError as error:
                code = getattr(error.orig, "sqlstate", None)
                if code in _RETRY_SQLSTATES and attempt < _RETRIES - 1:
                    continue
                if not reconnected and self._reconnectable(error, write, committing, idempotent):
                    reconnected = True
                    continue
                if isinstance(error, (exc.OperationalError, exc.InterfaceError)) or (
                    error.connection_invalidated
                ):
                    # Not chained: SQLAlchemy's rendering of the cause lists the statement's
                    # parameters (memory values), and a chained cause travels into Temporal
                    # failures and logs. The driver's own message is in ours.
                    raise unavailable(error, self._url) from None
                raise
            except exc.TimeoutError as error:
                raise StoreUnavailable(
                    f"memory database {self._url}: no free connection"
                ) from error
        raise AssertionError("unreachable")

    def _reconnectable(
        self, error: exc.DBAPIError, write: bool, committing: bool, idempotent: bool
    ) -> bool:
        """Whether a failed transaction may run once more, on a fresh connection.

        This is what pool pre-ping would otherwise buy with a round trip per operation: a
        pooled connection the server dropped (a restart, an idle timeout) fails on first use,
        SQLAlchemy invalidates the pool, and the rerun gets a new connection. A read may always
        rerun. A write may rerun when it failed before its COMMIT was sent (the server rolls
        back a transaction whose connection is gone), or when it is idempotent; otherwise its
        outcome is unknown and the caller hears `StoreUnavailable`.
        """
        if write:
            return error.connection_invalidated and (idempotent or not committing)
        if self.engine.dialect.name == "postgresql":
            return error.connection_invalidated or isinstance(error, exc.OperationalError)
        return error.connection_invalidated
