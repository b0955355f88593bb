"""`MemoryStore`: the async facade over one SQL implementation for SQLite and PostgreSQL.

It validates arguments, then runs each operation as one short transaction through
`memory.runner.Runner`: reads in `memory.reader`, commits in `memory.writer`, forks in
`memory.forks`, forget and expiry in `memory.retention`, purging a run in `memory.purge`.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar, overload

from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine

from memory import (
    backfill,
    forks,
    keys,
    migrations,
    purge,
    reader,
    retention,
    telemetry,
    vectors,
    writer,
)
from memory.commit import Applied, Commit, Op, check_provenance, check_text
from memory.embedding.config import EmbeddingConfig
from memory.engine import create_store_engine, display_name
from memory.errors import InvalidInput, MemoryStoreError, StoreUnavailable
from memory.namespace import (
    Namespace,
    check_commit_key,
    check_key,
    check_namespace,
    check_segment,
    check_tags,
)
from memory.policy import Grants, ScopedStore
from memory.records import (
    AuditRecord,
    CommitRecord,
    Entry,
    Page,
    Provenance,
    PurgeReport,
    SearchHit,
    StoreIdentity,
    StreamItem,
)
from memory.runner import Runner
from memory.semantic import (
    MODES,
    Mode,
    Model,
    Semantic,
    check_filter,
    check_query,
    fuse,
    make_check,
)
from memory.vector_index import nearest, nearest_hnsw

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

DEFAULT_MAX_VALUE_BYTES = 1024 * 1024
# A tail or history this short is a point read (see memory.runner): bounded and cheap.
_POINT_ROWS = 100
# How many times a commit whose merged values need vectors is embedded and rerun.
_EMBED_ROUNDS = 4


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
        embedders: Sequence[EmbeddingConfig] | None = None,
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
        self.dialect = engine.dialect.name
        self._runner = Runner(engine)
        self.semantic = Semantic(embedders or ())
        self._identity: StoreIdentity | None = None

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        pool_size: int = 8,
        migrate: bool = True,
        clock: Callable[[], datetime] | None = None,
        embedders: Sequence[EmbeddingConfig] | None = None,
    ) -> MemoryStore:
        """Connect to the memory database at ``url`` and (by default) apply pending migrations.

        Args:
            url: ``sqlite:///path`` (embedded) or ``postgresql+psycopg://...`` (production).
            max_value_bytes: The size cap on one value's JSON encoding.
            pool_size: Worker threads, and pooled connections for their transactions. On
                PostgreSQL, point reads on the event loop have a pool of their own of up to
                as many connections (so up to twice ``pool_size`` in all); SQLite adds one
                connection for writing.
            migrate: Apply pending schema migrations; with False, an out-of-date schema is an
                error telling the operator to run ``cairn memory migrate``.
            clock: The source of "now" (timezone-aware UTC) for timestamps and expiry; the
                system clock by default.
            embedders: Which embedder serves which namespaces (`EmbeddingConfig`): entries
                written there get vectors in their commit, and searching there defaults to
                hybrid (keyword and vector, fused by reciprocal rank).

        Raises:
            InvalidInput: The URL is malformed or of an unsupported kind.
            StoreUnavailable: The database cannot be reached.
        """
        engine = create_store_engine(url, pool_size=pool_size)
        try:
            store = cls(engine, max_value_bytes=max_value_bytes, clock=clock, embedders=embedders)
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
                await store._load_identity()
            if store.semantic.dims:
                await store._run(vectors.ensure_hnsw, store.semantic.dims, write=True)
        except BaseException:
            await store.close()
            raise
        return store

    async def setup(self) -> tuple[int, int]:
        """Apply pending schema migrations; safe to run from many processes at once."""
        versions = await self._run(migrations.migrate, write=True, idempotent=True)
        await self._load_identity()
        return versions

    async def _load_identity(self) -> None:
        store_id = await self._run(migrations.store_id)
        self._identity = StoreIdentity(id=store_id, name=display_name(self.engine.url))

    @property
    def identity(self) -> StoreIdentity:
        """Which store this is (`StoreIdentity`): its id is the same from every process.

        Raises:
            MemoryStoreError: The store was built without `open` and `setup` has not run.
        """
        if self._identity is None:
            raise MemoryStoreError("the store's identity is read by setup(); call it first")
        return self._identity

    @property
    def store_id(self) -> str:
        """The store's id (``identity.id``)."""
        return self.identity.id

    async def close(self) -> None:
        """Release the connection pool and worker threads."""
        await self._runner.close()

    async def __aenter__(self) -> MemoryStore:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- plumbing ---------------------------------------------------------------------------

    async def _run(
        self, fn: Callable[..., T], *args: Any, write: bool = False, idempotent: bool = False
    ) -> T:
        return await self._runner.run(fn, *args, write=write, idempotent=idempotent)

    def _now(self) -> datetime:
        return self._clock()

    async def _find_commit(self, key: str) -> Applied | None:
        found = await self._run(writer.find_commit, key)
        if found is not None:
            telemetry.commit_replays.add(1)
        return found

    async def _apply(self, key: str, provenance: Provenance, ops: list[Op], result: str) -> Applied:
        return await telemetry.traced_commit(
            self._apply_embedded(key, provenance, ops, result), len(ops), provenance.tenant
        )

    async def _apply_embedded(
        self, key: str, provenance: Provenance, ops: list[Op], result: str
    ) -> Applied:
        # Vectors are computed before the transaction (an embedder may be a remote call) and
        # written in it; a merged value's text is known only inside, so the transaction then
        # rolls back, its texts are embedded, and it runs again.
        plan = await self.semantic.plan(ops)
        for _ in range(_EMBED_ROUNDS):
            now, cap = self._now(), self.max_value_bytes
            call = (writer.apply_commit, key, provenance, ops, result, now, cap, plan)
            try:
                # Idempotent: rerunning a commit whose first run landed replays it (same key).
                return await self._run(*call, write=True, idempotent=True)
            except vectors.MissingVectors as missing:
                assert plan is not None
                await self.semantic.embed(plan, missing.wanted)
        raise StoreUnavailable(
            f"commit {key!r}: merged values kept changing under concurrent writers; retry it"
        )

    # -- writes -----------------------------------------------------------------------------

    def commit(self, *, key: str | None = None, provenance: Provenance | None = None) -> Commit:
        """Open a commit: ``async with store.commit(key=..., provenance=...) as c: c.put(...)``.

        Args:
            key: The idempotency key. A commit whose key was applied before applies nothing and
                reports ``replayed`` with the stored result. Omit it for a one-off write.
            provenance: Who is writing (tenant, workflow, run, activity, attempt, agent, trace).
        """
        prov, cap = check_provenance(provenance), self.max_value_bytes
        if key is None:
            adhoc = f"adhoc:{uuid.uuid4()}"
            return Commit(adhoc, prov, apply=self._apply, find=None, max_value_bytes=cap)
        key = check_commit_key(key)
        return Commit(key, prov, apply=self._apply, find=self._find_commit, max_value_bytes=cap)

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

        # Idempotent: a rerun finds the destination filled under this key and replays.
        call = (forks.fork, src_ns, dst_ns, as_of, key, prov, self._now, self.max_value_bytes)
        await self._run(*call, write=True, idempotent=True)
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
        try:
            return await self._run(retention.forget, ns, principal, self._now(), write=True)
        finally:
            # Not even this process's copy of the vectors may outlive the data.
            self.semantic.reset()

    async def data_key(self, subject: Sequence[str]) -> keys.WrappedKey | None:
        """``subject``'s wrapped data key, its tombstone once forgotten, or None if it has none."""
        return await self._run(keys.fetch, check_namespace(subject))

    async def create_data_key(
        self, subject: Sequence[str], master_key_id: str, wrapped: bytes
    ) -> keys.WrappedKey:
        """Store ``subject``'s wrapped data key unless it has one; return the stored one."""
        ns = check_namespace(subject)
        return await self._run(keys.create, ns, master_key_id, wrapped, self._now(), write=True)

    async def bind_data_key_owner(self, subject: Sequence[str], owner: Sequence[str]) -> bool:
        """Make forgetting ``owner`` destroy ``subject``'s data key too (see `memory.keys`)."""
        ns, owner_ns = check_namespace(subject), check_namespace(owner)
        return await self._run(keys.bind_owner, ns, owner_ns, write=True)

    @telemetry.instrumented("purge_run")
    async def purge_run(self, workflow_id: str, *, principal: str | None = None) -> PurgeReport:
        """Purge every commit of ``workflow_id`` and every commit derived from them; audit it.

        See `memory.purge`: what a purged commit wrote goes, history included, and every key
        whose current version went is put back to its latest surviving version.

        Raises:
            InvalidInput: A malformed workflow id or principal.
            NotFound: The workflow made no commits.
        """
        check_text(workflow_id, "workflow_id", 1000)
        if principal is not None:
            check_text(principal, "principal", MAX_PRINCIPAL)
        call = (purge.purge, workflow_id, principal, self._now(), self.max_value_bytes)
        try:
            return await self._run(*call, write=True)
        finally:
            self.semantic.reset()

    @telemetry.instrumented("purge_expired")
    async def purge_expired(self) -> dict[str, int]:
        """Delete expired entries for good (they are hidden from reads as soon as they expire)."""
        return await self._run(retention.purge_expired, self._now(), write=True)

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
        entry = await self._runner.read(reader.get(ns, key, as_of, self._clock), point=True)
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
        point = cap is not None and cap <= _POINT_ROWS
        return await self._runner.read(reader.history(ns, key, cap, self._now()), point=point)

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

    @telemetry.instrumented("namespaces")
    async def namespaces(
        self, prefix: Sequence[str] = (), *, limit: int = 1000
    ) -> builtins.list[tuple[Namespace, int]]:
        """Namespaces at or under ``prefix`` (all when empty) that hold live entries.

        Each comes with its count of current entries, in namespace order, at most ``limit``
        (like langgraph's ``BaseStore.list_namespaces``, for browsing a store).
        """
        ns = check_namespace(prefix, allow_empty=True)
        return await self._run(
            reader.namespace_counts, ns, self._limit(limit, 100_000), self._now()
        )

    @telemetry.instrumented("tail")
    async def tail(
        self, namespace: Sequence[str], stream: str, n: int = 20
    ) -> builtins.list[StreamItem]:
        """The last ``n`` items of a stream, oldest first."""
        ns, stream = check_namespace(namespace), check_segment(stream, "stream name")
        last = self._limit(n, 10_000)
        read = reader.stream_items(ns, stream, last=last)
        return await self._runner.read(read, point=last <= _POINT_ROWS)

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
        read = reader.stream_items(
            ns, stream, start=start, end=end, limit=self._limit(limit, 10_000)
        )
        return await self._runner.read(read, point=False)

    @telemetry.instrumented("search")
    async def search(
        self,
        prefix: Sequence[str],
        text: str,
        *,
        limit: int = 10,
        tags: Sequence[str] | None = None,
        mode: Mode | None = None,
        filter: dict[str, Any] | None = None,
    ) -> builtins.list[SearchHit]:
        """Search current entries and stream items at or under ``prefix``, best first.

        Args:
            prefix: The namespace to search at or under.
            text: The query (at most 16,000 characters).
            limit: At most this many hits (1-100).
            tags: Only hits carrying all of these tags.
            mode: ``"keyword"`` (full-text), ``"vector"`` (nearest by the configured embedders;
                entries only) or ``"hybrid"`` (both, fused by reciprocal rank, k = 60). The
                default is hybrid where an embedder is configured for the prefix, else keyword.
            filter: Equality on fields: ``{"value.status": "open"}`` (a field of the value,
                dotted for nested ones), ``key`` or ``kind``; a list means any of them.

        Raises:
            InvalidInput: An unknown mode or filter field, an empty or oversized query, or
                vector/hybrid search where no embedder is configured.
        """
        ns = check_namespace(prefix)
        models = self.semantic.models(ns)
        chosen: Mode = mode if mode is not None else ("hybrid" if models else "keyword")
        if chosen not in MODES:
            raise InvalidInput(f"search mode must be one of {', '.join(MODES)}, got {mode!r}")
        text = check_query(text, chosen)
        if chosen != "keyword" and not models:
            raise InvalidInput(
                f"{chosen} search of {'/'.join(ns)!r} needs an embedder, and no embedding "
                "pattern covers it: configure MemoryStore.open(url, embedders=["
                "EmbeddingConfig(pattern=..., embedder=...)]) or CAIRN_EMBEDDER"
            )
        limit, tag_list, where = self._limit(limit, 100), check_tags(tags), check_filter(filter)
        now = self._now()
        if chosen == "keyword" and not where:
            return await self._run(reader.search_hits, ns, text, limit, tag_list, now)
        # Each ranking fuses its top `limit` (Elasticsearch's default rank window): deeper
        # windows let a keyword ranking that matched only a name (every fact about Ada) outvote
        # the vector ranking (recall@5 on the paraphrase set: 0.49 at 10, 0.38 at 20).
        keep = make_check(where, "entry", tag_list)

        async def keyword() -> builtins.list[SearchHit]:
            # A filter applies before the window: it searches deeper, then filters.
            depth = 100 if where else limit
            hits = await self._run(reader.search_hits, ns, text, depth, tag_list, now)
            if where:
                # Keyword search has applied the tags already.
                hits = [h for h in hits if make_check(where, h.kind, ())(h.key, h.value, ())]
            return hits[:limit]

        async def vector(model: Model) -> builtins.list[SearchHit]:
            query = await self.semantic.query_vector(model.embedder, text)
            pgvector = vectors.pgvector_known(self._runner.engine)
            if pgvector is None:
                pgvector = await self._run(vectors.has_pgvector)
            if pgvector:
                read = functools.partial(self._runner.read, point=True)
                return await nearest_hnsw(read, model.index.model, query, ns, keep, limit, now)
            return await self._run(nearest, model.index, query, ns, keep, limit, now)

        # The rankings are independent: run them side by side on the worker threads.
        legs = [vector(m) for m in models]
        rankings = await asyncio.gather(*([keyword()] if chosen != "vector" else []), *legs)
        if chosen == "vector" and len(rankings) == 1:
            return rankings[0]
        return fuse(rankings, limit)

    async def reindex(
        self,
        prefix: Sequence[str],
        *,
        batch_size: int = 256,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, int]:
        """Embed the current entries under ``prefix`` that have no vector of their embedder.

        For entries written before their namespace had an embedder (or under another model).
        Idempotent and resumable: a rerun embeds only what is still missing. Safe while
        workers write: each batch is one short transaction that stores a vector only while its
        entry version exists.

        Args:
            prefix: Where to backfill; ``()`` for the whole store.
            batch_size: Entries embedded per batch (and per transaction), 1-10,000.
            progress: Called as ``progress(done, total)`` after each batch.

        Returns:
            ``{"embedded": n, "skipped": m}``: vectors stored, and entries left without one
            (no text to embed, or in a namespace no pattern covers).

        Raises:
            InvalidInput: No embedder is configured for any namespace under ``prefix``.
        """
        ns = check_namespace(prefix, allow_empty=True)
        size = self._limit(batch_size, 10_000, "batch_size")
        models = [m.embedder.model for m in self.semantic.models(ns)]
        if not models:
            raise InvalidInput(
                f"reindex of {'/'.join(ns)!r}: no embedding pattern covers it; configure "
                "embedders (MemoryStore.open(url, embedders=[...]) or CAIRN_EMBEDDER)"
            )
        total = await self._run(backfill.count_missing, ns, models, self._now())
        done, after = {"embedded": 0, "skipped": 0}, ("", "")
        while True:
            rows = await self._run(backfill.missing, ns, models, after, size, self._now())
            if not rows:
                return done
            after = (rows[-1].ns, rows[-1].key)
            found = await self.semantic.embed_rows(rows)
            done["skipped"] += len(rows) - len(found)
            done["embedded"] += await self._run(backfill.store, found, write=True)
            if progress is not None:
                progress(min(done["embedded"] + done["skipped"], total), total)

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
