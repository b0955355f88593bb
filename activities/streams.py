"""A stream read as a list that can shrink: append, read the live items, pop the newest, clear.

Streams are append-only, so a *stream log* is the stream plus one entry beside it,
``<stream>.live``, holding ``{"after": n, "popped": [seq, ...]}``: the live items are those
with ``seq > after`` whose seq is not in ``popped``. Appends never touch that entry, so
writers never conflict; a pop or a clear rewrites it with ``expected_version`` (compare-and-set),
so a pop removes exactly the item it read and never a newer one, and two concurrent pops
never return the same item. Popped and cleared items stay in the stream (for `cairn memory`,
search and audit), hidden from the log.

Every write takes an idempotency key: inside an activity it comes from ``activity.info()``, so a
retried or crashed-and-retried activity applies its append, pop or clear once, and a replayed
pop returns the item the first attempt popped. `StreamActivities` exposes these to workflows
(see `cairn.integrations`); the module-level functions serve callers outside a workflow.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, JsonValue
from temporalio import activity

from activities.failures import temporal_failures
from activities.provenance import activity_commit_key, activity_provenance
from memory.commit import Commit
from memory.errors import ConflictError, NotFound
from memory.namespace import check_namespace, check_segment
from memory.records import Provenance

if TYPE_CHECKING:
    from memory.store import MemoryStore

APPEND_STREAM_ITEMS = "append_stream_items"
READ_STREAM_ITEMS = "read_stream_items"
POP_STREAM_ITEM = "pop_stream_item"
CLEAR_STREAM = "clear_stream"

_PAGE = 10_000
"""The most stream items one read returns (the store's own ceiling)."""
_CAS_ATTEMPTS = 20
"""How often a pop or clear rereads and retries after losing a compare-and-set race."""


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StreamLogRef(_Contract):
    """Which log: a stream in a tenant-first namespace."""

    namespace: tuple[str, ...]
    stream: str
    agent: str = "integration"
    """Recorded as the writer in provenance."""


class AppendItems(_Contract):
    """Append ``items`` to a log, in order, in one commit."""

    log: StreamLogRef
    items: list[JsonValue]


class AppendedItems(_Contract):
    """What an append wrote: its commit and the seqs of its items (empty for no items)."""

    commit_seq: int | None
    seqs: list[int]


class ReadItems(_Contract):
    """Read a log's live items, the last ``limit`` of them (all for None), oldest first."""

    log: StreamLogRef
    limit: int | None = None


class LogItems(_Contract):
    """Live items, oldest first, with their stream seqs."""

    items: list[JsonValue]
    seqs: list[int]


class LogChange(_Contract):
    """Pop or clear a log."""

    log: StreamLogRef


class PoppedItem(_Contract):
    """The item a pop removed (None when the log was empty) and its seq."""

    item: JsonValue = None
    seq: int | None = None


class _Live(BaseModel):
    after: int = 0
    popped: list[int] = []


def _head_key(stream: str) -> str:
    return f"{stream}.live"


def check_log(log: StreamLogRef) -> tuple[tuple[str, ...], str]:
    """The log's validated namespace and stream name; `InvalidInput` naming what is wrong."""
    return check_namespace(log.namespace), check_segment(log.stream, "stream name")


async def _live(store: MemoryStore, ns: tuple[str, ...], stream: str) -> tuple[_Live, int]:
    try:
        entry = await store.get(ns, _head_key(stream))
    except NotFound:
        return _Live(), 0
    return _Live.model_validate(entry.value), entry.version


async def read_log(store: MemoryStore, log: StreamLogRef, limit: int | None = None) -> LogItems:
    """The log's live items (the last ``limit``, or all), oldest first."""
    ns, stream = check_log(log)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")
    if limit == 0:
        return LogItems(items=[], seqs=[])
    live, _ = await _live(store, ns, stream)
    return await _live_items(store, ns, stream, live, limit)


async def _live_items(
    store: MemoryStore, ns: tuple[str, ...], stream: str, live: _Live, limit: int | None
) -> LogItems:
    """The items ``live`` leaves visible (the last ``limit``, or all), oldest first."""
    hidden = set(live.popped)
    if limit is not None and limit + len(hidden) <= _PAGE:
        rows = await store.tail(ns, stream, limit + len(hidden))
        kept = [r for r in rows if r.seq > live.after and r.seq not in hidden][-limit:]
    else:
        kept, start = [], live.after + 1
        while True:
            rows = await store.read_stream(ns, stream, start=start, limit=_PAGE)
            kept.extend(r for r in rows if r.seq not in hidden)
            if len(rows) < _PAGE:
                break
            start = rows[-1].seq + 1
        if limit is not None:
            kept = kept[-limit:]
    return LogItems(items=[r.item for r in kept], seqs=[r.seq for r in kept])


async def append_log(
    store: MemoryStore,
    inp: AppendItems,
    *,
    key: str | None = None,
    provenance: Provenance | None = None,
) -> AppendedItems:
    """Append ``inp.items`` in one commit (once per ``key``); nothing is written on bad input."""
    ns, stream = check_log(inp.log)
    if not inp.items:
        return AppendedItems(commit_seq=None, seqs=[])
    async with store.commit(key=key, provenance=provenance) as commit:
        for item in inp.items:
            commit.append(ns, stream, item)
    assert commit.seq is not None
    seqs = sorted(ref.version for ref in commit.writes if ref.kind == "stream")
    return AppendedItems(commit_seq=commit.seq, seqs=seqs)


async def _cas_commit(
    store: MemoryStore,
    key: str | None,
    provenance: Provenance | None,
    write: Callable[[Commit], Awaitable[None]],
) -> Commit:
    """Run ``write`` in a commit, rereading and retrying when its compare-and-set loses."""
    for attempt in range(_CAS_ATTEMPTS):
        try:
            # A lost compare-and-set applied nothing, so the retry reuses the same key.
            async with store.commit(key=key, provenance=provenance) as commit:
                if not commit.replayed:
                    await write(commit)
            return commit
        except ConflictError:
            if attempt == _CAS_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def pop_log(
    store: MemoryStore,
    log: StreamLogRef,
    *,
    key: str | None = None,
    provenance: Provenance | None = None,
) -> PoppedItem:
    """Hide the newest live item and return it; a replay of ``key`` returns the same item."""
    ns, stream = check_log(log)

    async def claim_newest(commit: Commit) -> None:
        live, version = await _live(store, ns, stream)
        # Filter with the head just read: read_log would fetch it a second time.
        newest = await _live_items(store, ns, stream, live, 1)
        if newest.seqs:
            seq = newest.seqs[0]
            popped = [s for s in live.popped if s > live.after]
            commit.put(
                ns,
                _head_key(stream),
                {"after": live.after, "popped": [*popped, seq]},
                expected_version=version,
            )
            commit.result = {"seq": seq}

    result = (await _cas_commit(store, key, provenance, claim_newest)).result
    claimed = result.get("seq") if isinstance(result, dict) else None
    if not isinstance(claimed, int):
        return PoppedItem()
    rows = await store.read_stream(ns, stream, start=claimed, end=claimed + 1, limit=1)
    return PoppedItem(item=rows[0].item if rows else None, seq=claimed)


async def clear_log(
    store: MemoryStore,
    log: StreamLogRef,
    *,
    key: str | None = None,
    provenance: Provenance | None = None,
) -> None:
    """Hide every item appended so far (items appended later stay live)."""
    ns, stream = check_log(log)

    async def hide_all(commit: Commit) -> None:
        _, version = await _live(store, ns, stream)
        last = await store.tail(ns, stream, 1)
        after = last[-1].seq if last else 0
        head = {"after": after, "popped": []}
        commit.put(ns, _head_key(stream), head, expected_version=version)

    await _cas_commit(store, key, provenance, hide_all)


class StreamActivities:
    """Stream-log activities for integrations that keep their state in Cairn (see module doc)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    @activity.defn(name=APPEND_STREAM_ITEMS)
    async def append_stream_items(self, inp: AppendItems) -> AppendedItems:
        """Append items to a log, exactly once per activity execution."""
        with temporal_failures():
            tenant = check_log(inp.log)[0][0]
            return await append_log(
                self.store,
                inp,
                key=activity_commit_key("stream-append"),
                provenance=activity_provenance(tenant, inp.log.agent),
            )

    @activity.defn(name=READ_STREAM_ITEMS)
    async def read_stream_items(self, inp: ReadItems) -> LogItems:
        """A log's live items."""
        with temporal_failures():
            return await read_log(self.store, inp.log, inp.limit)

    @activity.defn(name=POP_STREAM_ITEM)
    async def pop_stream_item(self, inp: LogChange) -> PoppedItem:
        """Pop a log's newest item, exactly once per activity execution."""
        with temporal_failures():
            tenant = check_log(inp.log)[0][0]
            return await pop_log(
                self.store,
                inp.log,
                key=activity_commit_key("stream-pop"),
                provenance=activity_provenance(tenant, inp.log.agent),
            )

    @activity.defn(name=CLEAR_STREAM)
    async def clear_stream(self, inp: LogChange) -> None:
        """Clear a log, exactly once per activity execution."""
        with temporal_failures():
            tenant = check_log(inp.log)[0][0]
            await clear_log(
                self.store,
                inp.log,
                key=activity_commit_key("stream-clear"),
                provenance=activity_provenance(tenant, inp.log.agent),
            )
