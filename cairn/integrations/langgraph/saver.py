"""`CairnSaver`: a LangGraph checkpointer on Cairn memory, storing each message once.

Layout under the root namespace ``R`` (tenant first), per thread ``T`` (the thread id as a
label, or a hash of it when too long): ``R+T+("i",)`` holds the thread id, ``("c",)`` the
checkpoints (key ``<checkpoint_ns>#<id>``), ``("h",)`` the latest checkpoint id of each
checkpoint namespace, ``("b",)`` channel values by version (key ``<ns>#<channel>#<version>``)
and ``("w", <checkpoint id>)`` the pending writes of one checkpoint. Nothing is indexed for
search: the values are serialized bytes.

A checkpoint stores only the channels whose version changed, like LangGraph's SQL savers. A
list channel (a message history) goes further: when its new value extends a version this
saver wrote or read before, only the new items are stored, with a reference to that base
version, so a conversation's storage grows with its new messages, not with its length at
every step. One ``put`` (checkpoint, changed channels, head) is one commit.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from cairn.integrations.langgraph.bridge import LoopThread
from cairn.integrations.langgraph.channel_values import (
    EMPTY,
    Blob,
    Items,
    ListCache,
    base_of,
    deserialize,
    extends,
    list_delta,
    plain,
    rebuild,
    serialize,
    whole_list,
)
from cairn.integrations.langgraph.labels import encode_label
from cairn.integrations.langgraph.scan import entries_under, namespaces_under
from memory import ConflictError, Entry, MemoryStore, MemoryStoreError, NotFound, Provenance
from memory.namespace import MAX_SEGMENT, Namespace, check_namespace

_CACHE = 256
_HEAD_RETRIES = 8


def _segment(kind: str, text: str) -> str:
    """A Cairn segment for an id: ``kind`` + the encoded id, or + a hash when too long."""
    try:
        encoded = encode_label(text)
    except ValueError:
        encoded = ""
    if encoded and len(encoded) < MAX_SEGMENT:
        return kind + encoded
    return "h" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


class CairnSaver(BaseCheckpointSaver[str]):
    """LangGraph's ``BaseCheckpointSaver`` (sync and async) over a Cairn `MemoryStore`.

    Args:
        memory: The open memory store (SQLite or PostgreSQL).
        namespace: The Cairn root namespace (tenant first) for every thread's checkpoints;
            use one of its own, apart from a `CairnStore`'s.
        serde: LangGraph's serializer (``JsonPlusSerializer`` by default).
    """

    def __init__(
        self,
        memory: MemoryStore,
        *,
        namespace: Sequence[str],
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        self.memory = memory
        self.root: Namespace = check_namespace(tuple(namespace))
        if len(self.root) > 5:
            raise ValueError(f"root namespace {self.root!r} must be at most 5 segments deep")
        self._provenance = Provenance(tenant=self.root[0], agent="langgraph-checkpointer")
        self._bridge = LoopThread("cairn-langgraph-saver")
        self._lists = ListCache(_CACHE)
        # (thread, checkpoint ns) -> (checkpoint id, version) of the head entry this saver wrote.
        self._heads: dict[tuple[str, str], tuple[str, int]] = {}

    # -- layout -------------------------------------------------------------------------------

    def _thread(self, thread_id: str) -> Namespace:
        return (*self.root, _segment("t", str(thread_id)))

    @staticmethod
    def _ckpt_key(checkpoint_ns: str, checkpoint_id: str) -> str:
        return f"{checkpoint_ns}#{checkpoint_id}"

    @staticmethod
    def _blob_key(checkpoint_ns: str, channel: str, version: str) -> str:
        return f"{checkpoint_ns}#{channel}#{version}"

    def _writes_ns(self, thread_id: str, checkpoint_id: str) -> Namespace:
        return (*self._thread(thread_id), "w", _segment("c", checkpoint_id))

    # -- versions -----------------------------------------------------------------------------

    def get_next_version(self, current: str | None, channel: None) -> str:
        """``<counter>.<random>``, as LangGraph's savers do: increasing, unique per branch."""
        n = 0 if current is None else int(str(current).split(".")[0])
        return f"{n + 1:032}.{random.random():016}"

    # -- writes -------------------------------------------------------------------------------

    def _serialize(self, value: Any) -> list[str]:
        return serialize(self.serde, value)

    def _deserialize(self, pair: list[str]) -> Any:
        return deserialize(self.serde, pair)

    async def _blob(
        self, thread_id: str, checkpoint_ns: str, channel: str, values: dict[str, Any]
    ) -> tuple[Blob, Items | None]:
        """A changed channel's blob, and its items when it is a list."""
        if channel not in values:
            return EMPTY, None
        value = values[channel]
        if type(value) is not list:
            return plain(self.serde, value), None
        items = [self._serialize(v) for v in value]
        known = self._lists.get((thread_id, checkpoint_ns, channel))
        if known is not None and extends(items, known[1]):
            # The base may be gone (its thread deleted by another process): then store whole.
            ns = (*self._thread(thread_id), "b")
            try:
                await self.memory.get(ns, self._blob_key(checkpoint_ns, channel, known[0]))
            except NotFound:
                pass
            else:
                return list_delta(items, *known), items
        return whole_list(items), items

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and the channel values whose versions changed, in one commit."""
        conf = config["configurable"]
        thread_id, checkpoint_ns = str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))
        parent = conf.get("checkpoint_id")
        saved = checkpoint.copy()
        values: dict[str, Any] = saved.pop("channel_values")  # type: ignore[misc]
        thread = self._thread(thread_id)
        blobs: dict[str, tuple[str, Blob, list[list[str]] | None]] = {}
        for channel, version in new_versions.items():
            blob, items = await self._blob(thread_id, checkpoint_ns, channel, values)
            blobs[channel] = (str(version), blob, items)
        record = {
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint["id"],
            "parent_checkpoint_id": parent,
            "checkpoint": self._serialize(saved),
            "metadata": self._serialize(get_checkpoint_metadata(config, metadata)),
        }
        where = (thread_id, checkpoint_ns)
        for _ in range(_HEAD_RETRIES):
            # The head this saver last wrote saves a read; if another wrote since, the
            # compare-and-set fails and the head is read afresh.
            head = self._heads.get(where) or await self._head(thread, checkpoint_ns)
            try:
                async with self.memory.commit(provenance=self._provenance) as c:
                    if head is None:
                        c.put((*thread, "i"), "thread", {"thread_id": thread_id}, index=False)
                    for channel, (version, blob, _) in blobs.items():
                        key = self._blob_key(checkpoint_ns, channel, version)
                        c.put((*thread, "b"), key, blob, index=False)
                    key = self._ckpt_key(checkpoint_ns, checkpoint["id"])
                    c.put((*thread, "c"), key, record, index=False)
                    if head is None or checkpoint["id"] > head[0]:
                        c.put(
                            (*thread, "h"),
                            "ns:" + checkpoint_ns,
                            checkpoint["id"],
                            expected_version=0 if head is None else head[1],
                            index=False,
                        )
                for ref in c.writes:
                    if ref.namespace == (*thread, "h"):
                        if len(self._heads) >= _CACHE:
                            self._heads.clear()
                        self._heads[where] = (checkpoint["id"], ref.version)
                break
            except ConflictError:
                self._heads.pop(where, None)  # another put moved the head: read it again
        else:
            expected = 0 if head is None else head[1]
            raise ConflictError((*thread, "h"), "ns:" + checkpoint_ns, expected, None)
        for channel, (version, _, items) in blobs.items():
            if items is not None:
                self._lists.remember((thread_id, checkpoint_ns, channel), version, items)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes; regular writes already stored are kept, not replaced."""
        conf = config["configurable"]
        thread_id, checkpoint_ns = str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))
        ns = self._writes_ns(thread_id, str(conf["checkpoint_id"]))
        existing = {e.key for e in await entries_under(self.memory, ns)}
        async with self.memory.commit(provenance=self._provenance) as c:
            for idx, (channel, value) in enumerate(writes):
                widx = WRITES_IDX_MAP.get(channel, idx)
                key = f"{checkpoint_ns}#{task_id}#{widx}"
                if widx >= 0 and key in existing:
                    continue
                record = {
                    "checkpoint_ns": checkpoint_ns,
                    "task_id": task_id,
                    "task_path": task_path,
                    "idx": widx,
                    "channel": channel,
                    "value": self._serialize(value),
                }
                c.put(ns, key, record, index=False)

    # -- reads --------------------------------------------------------------------------------

    async def _head(self, thread: Namespace, checkpoint_ns: str) -> tuple[str, int] | None:
        """``(latest checkpoint id, version of the head entry)`` of one checkpoint namespace."""
        try:
            entry = await self.memory.get((*thread, "h"), "ns:" + checkpoint_ns)
        except NotFound:
            return None
        return str(entry.value), entry.version

    async def _channel(
        self, thread_id: str, checkpoint_ns: str, channel: str, version: str
    ) -> tuple[bool, Any]:
        """``(present, value)`` of one channel version; list deltas are followed to a base."""
        ns = (*self._thread(thread_id), "b")
        chain: list[Blob] = []
        at: str | None = version
        known = self._lists.get((thread_id, checkpoint_ns, channel))
        while at is not None:
            if known is not None and known[0] == at:
                chain.append(whole_list(known[1]))  # held already: the walk ends here
                break
            try:
                entry = await self.memory.get(ns, self._blob_key(checkpoint_ns, channel, at))
            except NotFound:
                return False, None
            chain.append(_record(entry))
            at = base_of(chain[-1])
        if chain[0]["t"] == "empty":
            return False, None
        if chain[0]["t"] != "list":
            return True, self._deserialize([chain[0]["t"], chain[0]["b"]])
        items = rebuild(chain)
        self._lists.remember((thread_id, checkpoint_ns, channel), version, items)
        return True, [self._deserialize(i) for i in items]

    async def _tuple(self, thread_id: str, record: dict[str, Any]) -> CheckpointTuple:
        checkpoint_ns, checkpoint_id = record["checkpoint_ns"], record["checkpoint_id"]
        checkpoint: Checkpoint = self._deserialize(record["checkpoint"])
        values: dict[str, Any] = {}
        for channel, version in checkpoint["channel_versions"].items():
            present, value = await self._channel(thread_id, checkpoint_ns, channel, str(version))
            if present:
                values[channel] = value
        writes = [
            _record(e)
            for e in await entries_under(self.memory, self._writes_ns(thread_id, checkpoint_id))
        ]
        writes = [w for w in writes if w["checkpoint_ns"] == checkpoint_ns]
        writes.sort(key=lambda w: (w["task_path"], w["task_id"], w["idx"]))
        parent = record["parent_checkpoint_id"]
        return CheckpointTuple(
            config=_config(thread_id, checkpoint_ns, checkpoint_id),
            checkpoint={**checkpoint, "channel_values": values},
            metadata=self._deserialize(record["metadata"]),
            parent_config=_config(thread_id, checkpoint_ns, parent) if parent else None,
            pending_writes=[
                (
                    w["task_id"],
                    w["channel"],
                    self._deserialize(w["value"]),
                )
                for w in writes
            ],
        )

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config``, or the thread's latest in its namespace."""
        conf = config["configurable"]
        thread_id, checkpoint_ns = str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))
        thread = self._thread(thread_id)
        checkpoint_id = get_checkpoint_id(config)
        if checkpoint_id is None:
            head = await self._head(thread, checkpoint_ns)
            if head is None:
                return None
            checkpoint_id = head[0]
        try:
            entry = await self.memory.get(
                (*thread, "c"), self._ckpt_key(checkpoint_ns, checkpoint_id)
            )
        except NotFound:
            return None
        return await self._tuple(thread_id, _record(entry))

    async def _threads(self) -> list[tuple[str, Namespace]]:
        found = []
        for ns in await namespaces_under(self.memory, self.root):
            if len(ns) == len(self.root) + 2 and ns[-1] == "i":
                entry = await self.memory.get(ns, "thread")
                found.append((str(_record(entry)["thread_id"]), ns[:-1]))
        return found

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first, of one thread (and namespace) or of all threads."""
        if config is not None:
            thread_id = str(config["configurable"]["thread_id"])
            threads = [(thread_id, self._thread(thread_id))]
            wanted_ns = config["configurable"].get("checkpoint_ns")
            wanted_id = get_checkpoint_id(config)
        else:
            threads, wanted_ns, wanted_id = await self._threads(), None, None
        before_id = get_checkpoint_id(before) if before else None
        for thread_id, thread in threads:
            records = await self._records(thread)
            records.sort(key=lambda r: str(r["checkpoint_id"]), reverse=True)
            for record in records:
                if wanted_ns is not None and record["checkpoint_ns"] != wanted_ns:
                    continue
                if wanted_id and record["checkpoint_id"] != wanted_id:
                    continue
                if before_id and record["checkpoint_id"] >= before_id:
                    continue
                if filter:
                    metadata = self._deserialize(record["metadata"])
                    if not all(metadata.get(k) == v for k, v in filter.items()):
                        continue
                if limit is not None and limit <= 0:
                    return
                if limit is not None:
                    limit -= 1
                yield await self._tuple(thread_id, record)

    # -- deletion and copies --------------------------------------------------------------------

    def _forget_thread(self, thread_id: str) -> None:
        self._lists.forget_thread(thread_id)
        for where in [k for k in self._heads if k[0] == thread_id]:
            del self._heads[where]

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete the thread's checkpoints, writes and values for good, history included."""
        self._forget_thread(str(thread_id))
        await self.memory.forget(self._thread(str(thread_id)), principal="langgraph-checkpointer")
        self._forget_thread(str(thread_id))

    async def _drop(self, thread_id: str, doomed: list[dict[str, Any]]) -> None:
        """Delete checkpoints (and their writes), then point each head at the newest left."""
        if not doomed:
            return
        self._forget_thread(thread_id)
        thread = self._thread(thread_id)
        for record in doomed:
            await self.memory.forget(self._writes_ns(thread_id, record["checkpoint_id"]))
        remaining: dict[str, str] = {}
        gone = {(r["checkpoint_ns"], r["checkpoint_id"]) for r in doomed}
        for record in await self._records(thread):
            ns, cid = record["checkpoint_ns"], record["checkpoint_id"]
            if (ns, cid) not in gone and cid > remaining.get(ns, ""):
                remaining[ns] = cid
        async with self.memory.commit(provenance=self._provenance) as c:
            for ns, cid in gone:
                c.delete((*thread, "c"), self._ckpt_key(ns, cid))
            for ns in {ns for ns, _ in gone}:
                if ns in remaining:
                    c.put((*thread, "h"), "ns:" + ns, remaining[ns], index=False)
                else:
                    c.delete((*thread, "h"), "ns:" + ns)

    async def _records(self, thread: Namespace) -> list[dict[str, Any]]:
        return [_record(e) for e in await entries_under(self.memory, (*thread, "c"))]

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete every checkpoint (and its writes) whose metadata names one of ``run_ids``."""
        runs = set(run_ids)
        if not runs:
            return
        for thread_id, thread in await self._threads():
            doomed = []
            for record in await self._records(thread):
                metadata = self._deserialize(record["metadata"])
                if metadata.get("run_id") in runs:
                    doomed.append(record)
            await self._drop(thread_id, doomed)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep each namespace's newest checkpoint; ``delete``: delete all.

        Channel values stay (a kept checkpoint's list values may be deltas on older ones).
        """
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: use keep_latest or delete")
        for thread_id in thread_ids:
            if strategy == "delete":
                await self.adelete_thread(thread_id)
                continue
            records = await self._records(self._thread(str(thread_id)))
            newest: dict[str, str] = {}
            for r in records:
                newest[r["checkpoint_ns"]] = max(
                    newest.get(r["checkpoint_ns"], ""), r["checkpoint_id"]
                )
            doomed = [r for r in records if r["checkpoint_id"] != newest[r["checkpoint_ns"]]]
            await self._drop(str(thread_id), doomed)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's checkpoints, writes and values to another thread id (a Cairn fork)."""
        source, target = self._thread(str(source_thread_id)), self._thread(str(target_thread_id))
        try:
            await self.memory.get((*source, "i"), "thread")
        except NotFound:
            return
        await self.memory.fork(source, target, provenance=self._provenance)
        async with self.memory.commit(provenance=self._provenance) as c:
            c.put((*target, "i"), "thread", {"thread_id": str(target_thread_id)}, index=False)

    # -- the synchronous API ---------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Sync `aget_tuple`."""
        return self._bridge.run(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Sync `alist` (read whole, then iterated)."""

        async def collect() -> list[CheckpointTuple]:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        yield from self._bridge.run(collect())

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Sync `aput`."""
        return self._bridge.run(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Sync `aput_writes`."""
        self._bridge.run(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Sync `adelete_thread`."""
        self._bridge.run(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Sync `adelete_for_runs`."""
        self._bridge.run(self.adelete_for_runs(run_ids))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Sync `aprune`."""
        self._bridge.run(self.aprune(thread_ids, strategy=strategy))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Sync `acopy_thread`."""
        self._bridge.run(self.acopy_thread(source_thread_id, target_thread_id))

    def close(self) -> None:
        """Stop the thread that runs sync calls (the memory store stays open)."""
        self._bridge.close()


def _record(entry: Entry) -> dict[str, Any]:
    """An entry's value as the dict this saver stored there."""
    if not isinstance(entry.value, dict):
        raise MemoryStoreError(
            f"{'/'.join(entry.namespace)!r} key {entry.key!r} holds no LangGraph checkpoint data"
        )
    return cast(dict[str, Any], entry.value)


def _config(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
        }
    }
