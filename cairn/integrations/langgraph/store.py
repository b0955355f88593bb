"""`CairnStore`: a LangGraph ``BaseStore`` on Cairn memory, exactly once inside activities.

Every LangGraph namespace lives under one Cairn root namespace (tenant first, e.g.
``("acme", "langgraph")``), its labels mapped reversibly (`cairn.integrations.langgraph.labels`).
An item is a Cairn entry: its value is the item's dict, and every put is a new version with
provenance, so items also carry ``version`` and ``commit_seq``, ``put`` takes an
``expected_version`` (compare-and-set) and ``get`` reads ``as_of`` a commit.

The puts and deletes of one ``batch`` are one Cairn commit. Inside a Temporal activity (a
node run by ``temporalio-langgraph``), that commit's idempotency key is derived from
``activity.info()`` and the number of commits the attempt made before it, so a retried or
crashed-and-retried node replays its earlier commits instead of writing twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, timedelta
from inspect import signature
from typing import Any

from langgraph.store.base import (
    NOT_PROVIDED,
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    NotProvided,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    validate_op_namespace,
)
from temporalio import activity

from activities.provenance import activity_commit_key, activity_provenance
from cairn.integrations.langgraph.bridge import LoopThread
from cairn.integrations.langgraph.labels import LabelMap
from cairn.integrations.langgraph.matching import (
    filter_matches,
    literal_prefix,
    namespace_matches,
)
from cairn.integrations.langgraph.scan import entries_under, namespaces_under
from memory import Commit, ConflictError, Entry, MemoryStore, NotFound, Provenance

# How many activity attempts' commit counters are remembered (one per node execution).
_COUNTERS = 10_000


class CairnItem(Item):
    """A LangGraph `Item` that also says which Cairn version of the entry it is."""

    __slots__ = ("commit_seq", "version")

    def __init__(self, entry: Entry, namespace: tuple[str, ...]) -> None:
        value = entry.value if isinstance(entry.value, dict) else {"value": entry.value}
        at = entry.created_at
        super().__init__(
            value=value, key=entry.key, namespace=namespace, created_at=at, updated_at=at
        )
        self.version = entry.version
        self.commit_seq = entry.commit_seq


class CairnSearchItem(SearchItem):
    """A LangGraph `SearchItem` with the entry's Cairn ``version`` and ``commit_seq``."""

    __slots__ = ("commit_seq", "version")

    def __init__(self, entry: Entry, namespace: tuple[str, ...], score: float | None) -> None:
        value = entry.value if isinstance(entry.value, dict) else {"value": entry.value}
        at = entry.created_at
        super().__init__(namespace, entry.key, value, at, at, score)
        self.version = entry.version
        self.commit_seq = entry.commit_seq


class CairnStore(BaseStore):
    """LangGraph's ``BaseStore`` (sync and async) over a Cairn `MemoryStore`.

    Args:
        memory: The open memory store.
        namespace: The Cairn root namespace (tenant first) that holds every LangGraph
            namespace; it leaves ``8 - len(namespace)`` levels for LangGraph labels.
        ttl: LangGraph's ``TTLConfig`` (``default_ttl`` in minutes, ``refresh_on_read``).
            Expired items are hidden from reads at once (``omit_expired`` always holds);
            ``sweep_expired`` deletes them for good.
        search_mode: Passed to ``MemoryStore.search(mode=...)`` for queries when the store
            supports modes (e.g. ``"hybrid"`` with an embedder configured); keyword otherwise.
        agent: The agent name recorded in each commit's provenance.
    """

    supports_ttl = True

    def __init__(
        self,
        memory: MemoryStore,
        *,
        namespace: Sequence[str],
        ttl: TTLConfig | None = None,
        search_mode: str | None = None,
        agent: str = "langgraph",
    ) -> None:
        self.memory = memory
        self.labels = LabelMap(namespace)
        self.ttl_config = ttl
        self.search_mode = search_mode
        self.agent = agent
        self._bridge = LoopThread("cairn-langgraph-store")
        self._counters: collections.OrderedDict[tuple[str, ...], int] = collections.OrderedDict()

    # -- BaseStore --------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` synchronously (from any thread); see `abatch`."""
        return self._bridge.run(self.abatch(list(ops)))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops``: reads see the state before this batch; its writes are one commit."""
        ops = list(ops)
        for op in ops:
            validate_op_namespace(op)
        writes: dict[tuple[tuple[str, ...], str], PutOp] = {}
        reads: dict[int, Any] = {}
        for i, op in enumerate(ops):
            if isinstance(op, GetOp):
                reads[i] = self._get(op)
            elif isinstance(op, SearchOp):
                reads[i] = self._search(op)
            elif isinstance(op, ListNamespacesOp):
                reads[i] = self._list_namespaces(op)
            elif isinstance(op, PutOp):
                writes[(tuple(op.namespace), op.key)] = op
            else:
                raise ValueError(f"unknown LangGraph store operation {type(op).__name__}")
        done = await asyncio.gather(*reads.values())
        results: list[Result] = [None] * len(ops)
        refresh: list[Entry] = []
        for i, (result, stale) in zip(reads, done, strict=True):
            results[i] = result
            refresh.extend(stale)
        if refresh:
            refreshed = await self._refresh(refresh)
            for result in results:
                for item in result if isinstance(result, list) else [result]:
                    if isinstance(item, (CairnItem, CairnSearchItem)):
                        where = (self.labels.to_cairn(item.namespace), item.key)
                        item.version, item.commit_seq = refreshed.get(
                            where, (item.version, item.commit_seq)
                        )
        if writes:
            await self._write(list(writes.values()))
        return results

    # -- additions beyond BaseStore -----------------------------------------------------------

    def put(  # type: ignore[override]
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        index: Any = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
        expected_version: int | None = None,
    ) -> None:
        """LangGraph's ``put``; with ``expected_version``, a compare-and-set (0: must not exist).

        Raises:
            ConflictError: The current version is not ``expected_version``; nothing is written.
        """
        self._bridge.run(
            self.aput(namespace, key, value, index, ttl=ttl, expected_version=expected_version)
        )

    async def aput(  # type: ignore[override]
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        index: Any = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
        expected_version: int | None = None,
    ) -> None:
        """Async `put`."""
        if expected_version is None:
            await super().aput(namespace, key, value, index, ttl=ttl)
            return
        if isinstance(ttl, NotProvided):
            ttl = (self.ttl_config or {}).get("default_ttl")
        op = PutOp(tuple(namespace), str(key), value, index, ttl)
        validate_op_namespace(op)
        await self._write([op], expected_version=expected_version)

    def get(
        self,
        namespace: tuple[str, ...],
        key: str,
        *,
        refresh_ttl: bool | None = None,
        as_of: int | None = None,
    ) -> CairnItem | None:
        """LangGraph's ``get``; with ``as_of``, the item as it was at that commit."""
        return self._bridge.run(self.aget(namespace, key, refresh_ttl=refresh_ttl, as_of=as_of))

    async def aget(
        self,
        namespace: tuple[str, ...],
        key: str,
        *,
        refresh_ttl: bool | None = None,
        as_of: int | None = None,
    ) -> CairnItem | None:
        """Async `get`."""
        if as_of is None:
            item = await super().aget(namespace, key, refresh_ttl=refresh_ttl)
            assert item is None or isinstance(item, CairnItem)
            return item
        validate_op_namespace(GetOp(tuple(namespace), key))
        try:
            entry = await self.memory.get(self.labels.to_cairn(namespace), key, as_of=as_of)
        except NotFound:
            return None
        return CairnItem(entry, tuple(namespace))

    async def sweep_expired(self) -> int:
        """Delete expired entries for good (they are hidden as soon as they expire)."""
        counts = await self.memory.purge_expired()
        return sum(counts.values())

    def close(self) -> None:
        """Stop the thread that runs sync calls (the memory store stays open)."""
        self._bridge.close()

    # -- operations ---------------------------------------------------------------------------

    async def _get(self, op: GetOp) -> tuple[CairnItem | None, list[Entry]]:
        try:
            entry = await self.memory.get(self.labels.to_cairn(op.namespace), op.key)
        except NotFound:
            return None, []
        stale = [entry] if op.refresh_ttl and entry.expires_at is not None else []
        return CairnItem(entry, tuple(op.namespace)), stale

    async def _search(self, op: SearchOp) -> tuple[list[SearchItem], list[Entry]]:
        prefix = self.labels.to_cairn(op.namespace_prefix)
        scored: list[tuple[Entry, float | None]]
        if op.query:
            scored = await self._query(prefix, op.query)
        else:
            entries = await entries_under(self.memory, prefix)
            # Most recently updated first, as LangGraph's SQL stores order a plain search.
            entries.sort(key=lambda e: e.commit_seq, reverse=True)
            scored = [(e, None) for e in entries]
        kept = [
            (e, s)
            for e, s in scored
            if isinstance(e.value, dict) and filter_matches(e.value, op.filter)
        ]
        page = kept[op.offset : op.offset + op.limit]
        items: list[SearchItem] = [
            CairnSearchItem(e, self.labels.to_langgraph(e.namespace), s) for e, s in page
        ]
        stale = [e for e, _ in page if op.refresh_ttl and e.expires_at is not None]
        return items, stale

    async def _query(self, prefix: tuple[str, ...], query: str) -> list[tuple[Entry, float | None]]:
        kwargs: dict[str, Any] = {}
        # Search modes (keyword, vector, hybrid) come with semantic memory; a store without
        # them searches by keyword.
        if self.search_mode is not None and "mode" in signature(self.memory.search).parameters:
            kwargs["mode"] = self.search_mode
        hits = await self.memory.search(prefix, query, limit=100, **kwargs)
        hits = [h for h in hits if h.kind == "entry"]

        async def entry(namespace: tuple[str, ...], key: str) -> Entry | None:
            try:
                return await self.memory.get(namespace, key)
            except NotFound:  # deleted since the search
                return None

        entries = await asyncio.gather(*(entry(h.namespace, h.key) for h in hits))
        return [(e, h.score) for e, h in zip(entries, hits, strict=True) if e is not None]

    async def _list_namespaces(
        self, op: ListNamespacesOp
    ) -> tuple[list[tuple[str, ...]], list[Entry]]:
        prefix = self.labels.to_cairn(literal_prefix(op.match_conditions))
        found = [self.labels.to_langgraph(ns) for ns in await namespaces_under(self.memory, prefix)]
        found = [
            ns for ns in found if all(namespace_matches(c, ns) for c in op.match_conditions or ())
        ]
        if op.max_depth is not None:
            found = list({ns[: op.max_depth] for ns in found})
        return sorted(found)[op.offset : op.offset + op.limit], []

    # -- writes -------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _commit(self) -> AsyncIterator[Commit]:
        """A commit; inside an activity, keyed by the attempt's count of commits so far."""
        if not activity.in_activity():
            provenance = Provenance(tenant=self.labels.root[0], agent=self.agent)
            async with self.memory.commit(provenance=provenance) as c:
                yield c
            return
        info = activity.info()
        attempt = (
            info.workflow_id or "",
            info.workflow_run_id or "",
            info.activity_id,
            str(info.attempt),
        )
        n = self._counters.get(attempt, 0)
        key = activity_commit_key(f"langgraph-store:{'/'.join(self.labels.root)}:{n}")
        provenance = activity_provenance(self.labels.root[0], self.agent)
        async with self.memory.commit(key=key, provenance=provenance) as c:
            yield c
        # Only a commit that applied (or replayed) uses up its number: one that failed (a
        # conflict the node retries) is retried under the same key, so every attempt of the
        # node makes the same sequence of keys and a retry replays what landed before.
        self._counters.pop(attempt, None)
        self._counters[attempt] = n + 1
        while len(self._counters) > _COUNTERS:
            self._counters.popitem(last=False)

    async def _write(self, ops: list[PutOp], *, expected_version: int | None = None) -> None:
        async with self._commit() as c:
            for op in ops:
                ns = self.labels.to_cairn(op.namespace)
                if op.value is None:
                    c.delete(ns, op.key, expected_version=expected_version)
                else:
                    ttl = None if op.ttl is None else timedelta(minutes=op.ttl)
                    c.put(
                        ns,
                        op.key,
                        op.value,
                        ttl=ttl,
                        expected_version=expected_version,
                        index=op.index is not False,
                    )

    async def _refresh(
        self, entries: list[Entry]
    ) -> dict[tuple[tuple[str, ...], str], tuple[int, int]]:
        """Restart the TTL of items just read: a new version with the same value and TTL.

        Returns each refreshed item's new ``(version, commit_seq)``, which the items read
        report, so a compare-and-set after a refreshing read expects the right version.
        """
        unique = {(e.namespace, e.key): e for e in entries}
        refreshed: dict[tuple[tuple[str, ...], str], tuple[int, int]] = {}
        for entry in unique.values():
            assert entry.expires_at is not None
            ttl = _ttl_of(entry.created_at, entry.expires_at)
            try:
                async with self._commit() as c:
                    c.put(
                        entry.namespace,
                        entry.key,
                        entry.value,
                        ttl=ttl,
                        expected_version=entry.version,
                    )
            except ConflictError:
                continue  # written since the read: that write set a fresh TTL of its own
            refreshed.update({(w.namespace, w.key): (w.version, w.commit_seq) for w in c.writes})
        return refreshed


def _ttl_of(created_at: datetime, expires_at: datetime) -> timedelta:
    return max(expires_at - created_at, timedelta(seconds=1))
