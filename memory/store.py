"""`MemoryStore`: the async facade over one SQL implementation for SQLite and PostgreSQL.

Every operation runs as one short transaction on a worker thread (a synchronous SQLAlchemy Core
connection from the pool), so the event loop never blocks and a commit costs one thread hop,
not one per statement. Driver errors that mean "could not reach or lock the database" become
`StoreUnavailable`, which callers may retry; everything else is a caller mistake.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine, exc

from memory import migrations, reader, telemetry, writer
from memory.commit import Applied, Commit, Op, check_provenance, check_text, dumps
from memory.engine import create_store_engine, unavailable
from memory.errors import ConflictError, InvalidInput, MemoryStoreError, StoreUnavailable
from memory.models import (
    AuditRecord,
    CommitRecord,
    Entry,
    Page,
    Provenance,
    SearchHit,
    StreamItem,
)
from memory.namespace import (
    check_commit_key,
    check_key,
    check_namespace,
    check_segment,
    check_tags,
)

if TYPE_CHECKING:
    from memory.policy import Grants, ScopedStore

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

DEFAULT_MAX_VALUE_BYTES = 1024 * 1024
# PostgreSQL: deadlock and serialization failures abort a transaction that is safe to rerun
# (the idempotency key makes a rerun of an applied commit a replay).
_RETRY_SQLSTATES = {"40001", "40P01"}
_RETRIES = 5


# The width of the audit log's principal column.
MAX_PRINCIPAL = 200


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MemoryStore:
    """Versioned, searchable, exactly-once shared memory. Build one with `MemoryStore.open`."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if (
            isinstance(max_value_bytes, bool)
            or not isinstance(max_value_bytes, int)
            or max_value_bytes < 1
        ):
            raise InvalidInput(f"max_value_bytes must be a positive int, got {max_value_bytes!r}")
        self.engine = engine
        self.max_value_bytes = max_value_bytes
        self._clock = clock or _utcnow
        self._closed = False
        self.dialect = engine.dialect.name
        self._url = engine.url.render_as_string(hide_password=True)
        self._executor = ThreadPoolExecutor(
            max_workers=engine.pool.size(),  # type: ignore[attr-defined]
            thread_name_prefix="cairn-memory",
        )

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        pool_size: int = 8,
        migrate: bool = True,
        clock: Callable[[], datetime] | None = None,
    ) -> MemoryStore:
        """Connect to the memory database at ``url`` and (by default) apply pending migrations.

        Args:
            url: ``sqlite:///path`` (embedded) or ``postgresql+psycopg://...`` (production).
            max_value_bytes: The size cap on one value's JSON encoding.
            pool_size: Connections (and worker threads) the store may use at once.
            migrate: Apply pending schema migrations; with False, an out-of-date schema is an
                error telling the operator to run ``cairn memory migrate``.
            clock: The source of "now" (timezone-aware UTC) for timestamps and expiry; the
                system clock by default.

        Raises:
            InvalidInput: The URL is malformed or of an unsupported kind.
            StoreUnavailable: The database cannot be reached.
        """
        engine = create_store_engine(url, pool_size=pool_size)
        try:
            store = cls(engine, max_value_bytes=max_value_bytes, clock=clock)
        except BaseException:
            engine.dispose()
            raise
        try:
            if migrate:
                await store.setup()
            else:
                version = await store._run(migrations.current_version)
                if version != migrations.SCHEMA_VERSION:
                    raise MemoryStoreError(
                        f"memory schema is at version {version}, Cairn needs "
                        f"{migrations.SCHEMA_VERSION}: run `cairn memory migrate`"
                    )
        except BaseException:
            await store.close()
            raise
        return store

    async def setup(self) -> tuple[int, int]:
        """Apply pending schema migrations; safe to run from many processes at once."""
        return await self._run(migrations.migrate, write=True)

    async def close(self) -> None:
        """Release the connection pool and worker threads."""
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self.engine.dispose)
        self._executor.shutdown(wait=False)

    async def __aenter__(self) -> MemoryStore:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- plumbing ---------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any, write: bool = False) -> T:
        if self._closed:
            raise MemoryStoreError("this memory store is closed")
        call = functools.partial(self._transaction, fn, args, write)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _transaction(self, fn: Callable[..., T], args: tuple[Any, ...], write: bool) -> T:
        for attempt in range(_RETRIES):
            try:
                with self.engine.connect() as conn:
                    if write:
                        conn.execution_options(cairn_write=True)
                    with conn.begin():
                        return fn(conn, *args)
            except exc.DBAPIError as error:
                code = getattr(error.orig, "sqlstate", None)
                if code in _RETRY_SQLSTATES and attempt < _RETRIES - 1:
                    continue
                if isinstance(error, (exc.OperationalError, exc.InterfaceError)) or (
                    error.connection_invalidated
                ):
                    raise unavailable(error, self._url) from error
                raise
            except exc.TimeoutError as error:
                raise StoreUnavailable(
                    f"memory database {self._url}: no free connection"
                ) from error
        raise AssertionError("unreachable")

    def _now(self) -> datetime:
        return self._clock()

    async def _find_commit(self, key: str) -> Applied | None:
        found = await self._run(writer.find_commit, key)
        if found is not None:
            telemetry.commit_replays.add(1)
        return found

    async def _apply(self, key: str, provenance: Provenance, ops: list[Op], result: str) -> Applied:
        attributes: dict[str, str | int] = {"cairn.memory.entry_count": len(ops)}
        if provenance.tenant:
            attributes["cairn.tenant"] = provenance.tenant
        started = time.perf_counter()
        with telemetry.tracer.start_as_current_span(
            "cairn.memory.commit", attributes=attributes
        ) as span:
            try:
                applied = await self._run(
                    writer.apply_commit,
                    key,
                    provenance,
                    ops,
                    result,
                    self._now(),
                    self.max_value_bytes,
                    write=True,
                )
            except ConflictError:
                telemetry.commit_conflicts.add(1)
                raise
            span.set_attribute("cairn.memory.commit_seq", applied.seq)
            span.set_attribute("cairn.memory.replayed", applied.replayed)
        if applied.replayed:
            telemetry.commit_replays.add(1)
        telemetry.operation_duration.record(time.perf_counter() - started, {"operation": "commit"})
        return applied

    # -- writes -----------------------------------------------------------------------------

    def commit(self, *, key: str | None = None, provenance: Provenance | None = None) -> Commit:
        """Open a commit: ``async with store.commit(key=..., provenance=...) as c: c.put(...)``.

        Args:
            key: The idempotency key. A commit whose key was applied before applies nothing and
                reports ``replayed`` with the stored result. Omit it for a one-off write.
            provenance: Who is writing (tenant, workflow, run, activity, attempt, agent, trace).
        """
        key = check_commit_key(key) if key is not None else f"adhoc:{uuid.uuid4()}"
        return Commit(self, key, check_provenance(provenance))

    @telemetry.instrumented("fork")
    async def fork(
        self,
        src: Sequence[str],
        dst: Sequence[str],
        *,
        as_of: int | None = None,
        key: str | None = None,
        provenance: Provenance | None = None,
    ) -> CommitRecord:
        """Copy ``src``'s entries and streams as of commit ``as_of`` into the empty ``dst``.

        The copy is one new commit; its records keep nothing but values and tags.

        Raises:
            InvalidInput: ``dst`` already holds data, or overlaps ``src``.
        """
        src_ns, dst_ns = check_namespace(src), check_namespace(dst)
        if src_ns == dst_ns[: len(src_ns)] or dst_ns == src_ns[: len(dst_ns)]:
            raise InvalidInput("fork source and destination must not contain each other")
        self._check_as_of(as_of)
        key = check_commit_key(key) if key is not None else f"fork:{uuid.uuid4()}"
        prov = check_provenance(provenance or Provenance(tenant=dst_ns[0]))

        def run(conn: Connection) -> Applied:
            writer.lock_tenant_forks(conn, dst_ns[0])
            if not writer.is_empty(conn, dst_ns):
                previous = writer.find_commit(conn, key)
                if previous is not None:
                    return previous
                raise InvalidInput(f"fork destination {'/'.join(dst_ns)!r} is not empty")
            now = self._now()
            ops = writer.snapshot_ops(conn, src_ns, dst_ns, as_of, now)
            done = {"source": "/".join(src_ns), "as_of": as_of}
            return writer.apply_commit(conn, key, prov, ops, dumps(done), now, self.max_value_bytes)

        await self._run(run, write=True)
        return await self.get_commit(key)

    @telemetry.instrumented("forget")
    async def forget(
        self, prefix: Sequence[str], *, principal: str | None = None
    ) -> dict[str, int]:
        """Delete all data at or under ``prefix``, history included; record that it happened.

        Commits that wrote there keep their provenance but lose their results (which may quote
        the data). The audit record holds counts only, never content.
        """
        ns = check_namespace(prefix)
        if principal is not None:
            check_text(principal, "principal", MAX_PRINCIPAL)
        return await self._run(writer.forget, ns, principal, self._now(), write=True)

    @telemetry.instrumented("purge_expired")
    async def purge_expired(self) -> dict[str, int]:
        """Delete expired entries for good (they are hidden from reads as soon as they expire)."""
        return await self._run(writer.purge_expired, self._now(), write=True)

    # -- reads ------------------------------------------------------------------------------

    @overload
    async def get(
        self, namespace: Sequence[str], key: str, *, as_of: int | None = None
    ) -> Entry: ...

    @overload
    async def get(
        self, namespace: Sequence[str], key: str, *, as_of: int | None = None, model: type[M]
    ) -> M: ...

    @telemetry.instrumented("get")
    async def get(
        self,
        namespace: Sequence[str],
        key: str,
        *,
        as_of: int | None = None,
        model: type[M] | None = None,
    ) -> Entry | M:
        """The current version of ``(namespace, key)``, or the one visible at commit ``as_of``.

        With ``model``, the value validated as that pydantic model is returned instead.

        Raises:
            NotFound: No live version (never written, deleted, expired or forgotten).
            InvalidInput: A malformed argument, or a stored value that does not fit ``model``.
        """
        ns, key = check_namespace(namespace), check_key(key)
        self._check_as_of(as_of)
        if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise InvalidInput(f"model must be a pydantic model class, got {model!r}")
        entry = await self._run(reader.get, ns, key, as_of, self._now())
        if model is None:
            return entry
        try:
            return model.model_validate(entry.value)
        except ValidationError as error:
            raise InvalidInput(
                f"{'/'.join(ns)!r} key {key!r} v{entry.version} is not a {model.__name__}: "
                f"{error.error_count()} validation errors"
            ) from error

    @telemetry.instrumented("history")
    async def history(
        self, namespace: Sequence[str], key: str, *, limit: int | None = None
    ) -> builtins.list[Entry]:
        """All versions of a key, oldest first, deletions included, each with its provenance."""
        ns, key = check_namespace(namespace), check_key(key)
        cap = None if limit is None else self._limit(limit, 100_000)
        return await self._run(reader.history, ns, key, cap, self._now())

    @telemetry.instrumented("list")
    async def list(
        self,
        prefix: Sequence[str],
        *,
        limit: int = 100,
        cursor: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> Page:
        """Current entries at or under ``prefix``, ordered by namespace and key, paginated."""
        ns = check_namespace(prefix)
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidInput(f"cursor must be a string from Page.next_cursor, got {cursor!r}")
        return await self._run(
            reader.list_entries, ns, self._limit(limit, 1000), cursor, check_tags(tags), self._now()
        )

    @telemetry.instrumented("tail")
    async def tail(
        self, namespace: Sequence[str], stream: str, n: int = 20
    ) -> builtins.list[StreamItem]:
        """The last ``n`` items of a stream, oldest first."""
        ns, stream = check_namespace(namespace), check_segment(stream, "stream name")
        return await self._run(
            functools.partial(reader.stream_items, last=self._limit(n, 10_000)), ns, stream
        )

    @telemetry.instrumented("read_stream")
    async def read_stream(
        self,
        namespace: Sequence[str],
        stream: str,
        *,
        start: int = 1,
        end: int | None = None,
        limit: int = 1000,
    ) -> builtins.list[StreamItem]:
        """Stream items with ``start <= seq < end``, oldest first, at most ``limit``."""
        ns, stream = check_namespace(namespace), check_segment(stream, "stream name")
        self._seq(start, "start")
        if end is not None:
            self._seq(end, "end")
        call = functools.partial(
            reader.stream_items, start=start, end=end, limit=self._limit(limit, 10_000)
        )
        return await self._run(call, ns, stream)

    @telemetry.instrumented("search")
    async def search(
        self,
        prefix: Sequence[str],
        text: str,
        *,
        limit: int = 10,
        tags: Sequence[str] | None = None,
    ) -> builtins.list[SearchHit]:
        """Keyword search over current entries and stream items at or under ``prefix``."""
        ns = check_namespace(prefix)
        if not isinstance(text, str):
            raise InvalidInput(f"search text must be a string, got {type(text).__name__}")
        return await self._run(
            reader.search_hits, ns, text, self._limit(limit, 100), check_tags(tags), self._now()
        )

    @telemetry.instrumented("get_commit")
    async def get_commit(self, key: str) -> CommitRecord:
        """The commit stored under an idempotency key, with provenance, result and writes."""
        return await self._run(reader.get_commit, check_commit_key(key))

    @telemetry.instrumented("list_commits")
    async def list_commits(
        self,
        *,
        workflow_id: str | None = None,
        tenant: str | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> builtins.list[CommitRecord]:
        """Commits in sequence order, optionally of one workflow or tenant."""
        if workflow_id is not None:
            check_text(workflow_id, "workflow_id", 1000)
        if tenant is not None:
            check_segment(tenant, "tenant")
        self._seq(after_seq, "after_seq")
        return await self._run(
            reader.list_commits, workflow_id, tenant, after_seq, self._limit(limit, 1000)
        )

    @telemetry.instrumented("audit_log")
    async def audit_log(self, *, limit: int = 100) -> builtins.list[AuditRecord]:
        """Records of forget and purge operations, newest first."""
        return await self._run(reader.audit_log, self._limit(limit, 1000))

    def scoped(self, principal: str, grants: Grants) -> ScopedStore:
        """A handle limited to ``grants`` for ``principal``; see `memory.policy.ScopedStore`."""
        from memory.policy import ScopedStore

        check_text(principal, "principal", MAX_PRINCIPAL)
        return ScopedStore(self, principal, grants)

    @staticmethod
    def _limit(value: int, ceiling: int, what: str = "limit") -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= ceiling:
            raise InvalidInput(f"{what} must be an int from 1 to {ceiling}, got {value!r}")
        return value

    @staticmethod
    def _seq(value: int, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            raise InvalidInput(f"{what} must be an int >= 0, got {value!r}")
        return value

    @staticmethod
    def _check_as_of(as_of: int | None) -> None:
        if as_of is not None:
            MemoryStore._seq(as_of, "as_of (a commit sequence number)")
