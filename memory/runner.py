"""How `MemoryStore` runs its transactions: each one short, most of them on a worker thread.

Every operation is one transaction on a synchronous SQLAlchemy Core connection, run on the
store's worker threads, so the event loop never waits for the database and an operation costs
one thread hop, not one per statement. Point reads (one key, or at most 100 versions or stream
items: one statement) are the exception: the hop costs more than the read, so SQLite runs them
on the loop thread (`_LoopReader`) and PostgreSQL on psycopg async connections (`_AsyncReader`).
SQLite writes queue on an in-process lock per database file, then use the store's one writing
connection; PostgreSQL reads run in autocommit. A connection the server dropped is retried once
where that is safe (`Runner._reconnectable`). Driver errors that mean "could not reach or lock
the database" become `StoreUnavailable`, which callers may retry; everything else propagates.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import queue
import sqlite3
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import Connection, Engine, exc, text

from memory.driver import Read, Statement
from memory.engine import PG_SESSION_SETTINGS, create_writer_engine, sqlite_reader, unavailable
from memory.errors import MemoryStoreError, StoreUnavailable

T = TypeVar("T")

# PostgreSQL: deadlock and serialization failures abort a transaction that is safe to rerun
# (the idempotency key makes a rerun of an applied commit a replay).
_RETRY_SQLSTATES = {"40001", "40P01"}
_RETRIES = 5


_BEGIN_IMMEDIATE = Statement(text("BEGIN IMMEDIATE"))
_COMMIT = Statement(text("COMMIT"))


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
    (`sqlite_reader`), so running such a read inline blocks the loop for less than the
    hop would have cost. Reads that can grow large or take several statements (lists, search,
    long histories, stream ranges, commits with their writes) and all writes stay on the
    worker threads.
    """

    def __init__(self, engine: Engine) -> None:
        self._dialect = engine.dialect
        self._path = engine.url.database or ""
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    def run(self, read: Read[T]) -> T | _Deferred:
        """``read`` on this thread's connection, or `DEFERRED`.

        `DEFERRED` means the database was busy or the driver failed: the worker-thread path
        then reruns the read, waiting for locks and reporting errors the usual way.
        """
        try:
            conn = self._local.conn
        except AttributeError:
            conn = None
        try:
            if conn is None:
                conn = self._local.conn = sqlite_reader(self._path)
                with self._guard:
                    self._connections.append(conn)
            # Autocommit: one SELECT reads one snapshot on its own.
            return read.build(read.statement.fetch(conn, self._dialect, read.values))
        except sqlite3.Error:
            return DEFERRED

    def close(self) -> None:
        with self._guard:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()


class _AsyncReader:
    """PostgreSQL point reads run on the event loop, on psycopg async connections.

    A point read is one round trip to the server; handing it to a worker thread and back
    costs more than that on a busy machine (measured: 150 us sync, 160 us async, 360-480 us
    through a thread on 2 cores). So the store keeps a small psycopg pool of autocommit async
    connections, opened on first use in the loop that uses them and never shared with another
    loop (a read from another loop takes the worker-thread path). A connection the server
    dropped fails once and is replaced; the read reruns on a fresh one.
    """

    def __init__(self, engine: Engine, url: str) -> None:
        _args, kwargs = engine.dialect.create_connect_args(engine.url)
        self._dialect = engine.dialect
        self._url = url
        self._pool = AsyncConnectionPool(
            kwargs={**kwargs, "autocommit": True, "connect_timeout": 10},
            min_size=0,
            max_size=engine.pool.size(),  # type: ignore[attr-defined]
            open=False,
            name="cairn-memory-reads",
            configure=_configure,
        )
        self._loop: asyncio.AbstractEventLoop | None = None

    def usable(self) -> bool:
        """Whether this loop may use the pool (it opens it in the first loop that asks)."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        return self._loop is loop

    async def run(self, read: Read[T]) -> T:
        if self._pool.closed:
            await self._pool.open()
        for attempt in (1, 2):
            try:
                async with self._pool.connection() as conn:
                    rows = await read.statement.run_async(conn, self._dialect, read.values)
                return read.build(rows)
            except PoolTimeout as error:
                raise StoreUnavailable(
                    f"memory database {self._url}: no free connection"
                ) from error
            except psycopg.OperationalError as error:
                if attempt == 1:
                    continue  # the pool discards a broken connection on return
                raise unavailable(error, self._url) from None
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._loop is not None and self._loop is asyncio.get_running_loop():
            await self._pool.close()


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """What `memory.engine` sets on every PostgreSQL connection, on a new pooled one."""
    await conn.execute(PG_SESSION_SETTINGS)


class _Deferred:
    """The marker of a point read that must run on a worker thread after all."""


DEFERRED = _Deferred()


class _Workers:
    """The store's worker threads: each runs one transaction at a time, for any event loop.

    What ``loop.run_in_executor`` does, minus its two chained futures (a concurrent one with
    its own condition variable, and the asyncio one wrapping it): a queue of work and a
    threadsafe callback that sets the awaiting future's result. Measured on a SQLite commit,
    that is 40 us less of the event loop's time per operation. Threads start as work arrives,
    up to ``size``.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], asyncio.Future[Any]] | None]
        self._queue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._guard = threading.Lock()

    def run(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``call()`` on a worker thread; the returned future (of this loop) gets its result."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((call, future))
        with self._guard:
            if self._queue.qsize() > self._idle and len(self._threads) < self._size:
                thread = threading.Thread(
                    target=self._work, name=f"cairn-memory-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                self._idle += 1
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            with self._guard:
                self._idle -= 1
            if item is None:
                return
            call, future = item
            try:
                result, error = call(), None
            except BaseException as caught:  # delivered to the awaiting task
                result, error = None, caught
            with self._guard:
                # Idle before the loop hears of it: work submitted once the loop wakes up
                # waits for this thread rather than starting another.
                self._idle += 1
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                future.get_loop().call_soon_threadsafe(_settle, future, result, error)
            del item, call, future, result, error

    def shutdown(self) -> None:
        """Stop the threads once the work queued so far is done."""
        for _ in self._threads:
            self._queue.put(None)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class Runner:
    """Runs ``fn(conn, *args)`` in one transaction on a worker thread of its own pool."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.closed = False
        self._url = engine.url.render_as_string(hide_password=True)
        self._autocommit_reads = engine.dialect.name == "postgresql"
        self._write_lock = _sqlite_write_lock(engine)
        self._writer_engine = create_writer_engine(engine) if self._write_lock else None
        self._writer: Connection | None = None
        sqlite = engine.dialect.name == "sqlite"
        self._loop_reader = _LoopReader(engine) if sqlite else None
        self._async_reader = None if sqlite else _AsyncReader(engine, self._url)
        self._workers = _Workers(engine.pool.size())  # type: ignore[attr-defined]

    async def run(
        self, fn: Callable[..., T], *args: Any, write: bool = False, idempotent: bool = False
    ) -> T:
        """Run ``fn(conn, *args)`` in one transaction (a write transaction if ``write``).

        ``idempotent`` says that running a write twice does what running it once does (a
        commit, by its key), so it may be retried even when its outcome is unknown.
        """
        if self.closed:
            raise MemoryStoreError("this memory store is closed")
        return await self._workers.run(
            functools.partial(self._transaction, fn, args, write, idempotent)
        )

    async def read(self, read: Read[T], *, point: bool) -> T:
        """Run one read; a ``point`` read (small, bounded) stays on the event loop."""
        if self.closed:
            raise MemoryStoreError("this memory store is closed")
        if point and self._loop_reader is not None:
            result = self._loop_reader.run(read)
            if not isinstance(result, _Deferred):
                return result
        elif point and self._async_reader is not None and self._async_reader.usable():
            return await self._async_reader.run(read)
        return await self.run(read)

    async def close(self) -> None:
        """Release the connection pool and the worker threads."""
        self.closed = True
        if self._loop_reader is not None:
            self._loop_reader.close()
        if self._async_reader is not None:
            await self._async_reader.close()
        if self._writer_engine is not None and self._write_lock is not None:
            with self._write_lock.lock:
                if self._writer is not None:
                    self._writer.close()
                self._writer_engine.dispose()
        await asyncio.get_running_loop().run_in_executor(None, self.engine.dispose)
        self._workers.shutdown()

    def _transaction(
        self, fn: Callable[..., T], args: tuple[Any, ...], write: bool, idempotent: bool
    ) -> T:
        reconnected = False
        for attempt in range(_RETRIES):
            committing = False
            try:
                if write and self._write_lock is not None:
                    return self._sqlite_write(fn, args)
                with self.engine.connect() as conn:
                    if not write and self._autocommit_reads:
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

    def _sqlite_write(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """``fn(conn, *args)`` in a SQLite write transaction on the store's writing connection.

        SQLite has one writer at a time, so a store keeps one connection for its writes and
        uses it under the file's write lock, saving a pool checkout and reset per commit. The
        transaction is begun and ended on the driver: SQLAlchemy's bookkeeping (events,
        nesting, reset) cost 40-90 us of a commit that takes 400; statements that go through
        SQLAlchemy still join this transaction (its "begin" hook sees the driver already in
        one).
        """
        assert self._write_lock is not None and self._writer_engine is not None
        with self._write_lock.lock:
            conn = self._writer
            if conn is None or conn.invalidated or conn.closed:
                if conn is not None:
                    conn.close()
                conn = self._writer = self._writer_engine.connect()
            _BEGIN_IMMEDIATE.run(conn, {})
            try:
                result = fn(conn, *args)
            except BaseException:
                if conn.in_transaction():
                    conn.rollback()
                else:
                    conn.connection.driver_connection.rollback()  # type: ignore[union-attr]
                raise
            if conn.in_transaction():
                conn.commit()
            else:
                _COMMIT.run(conn, {})
            return result

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
