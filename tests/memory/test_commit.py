"""Contract: commits, versions, history, time travel, compare-and-set, merges, idempotency."""

from __future__ import annotations

import pytest

from memory import ConflictError, InvalidInput, MemoryStore, NotFound, Provenance
from tests.memory.conftest import NS, put, row_counts

OTHER = ("acme", "session", "s-2")


async def test_put_then_get_returns_value_version_and_provenance(store: MemoryStore) -> None:
    prov = Provenance(tenant="acme", workflow_id="wf-1", run_id="r-1", agent="planner")
    async with store.commit(key="step-1", provenance=prov) as c:
        assert not c.replayed
        c.put(NS, "plan", {"steps": ["research", "write"]}, tags=["b", "a", "b"])
    entry = await store.get(NS, "plan")
    assert entry.value == {"steps": ["research", "write"]}
    assert entry.version == 1
    assert entry.commit_seq == c.seq
    assert entry.tags == ("a", "b")
    assert entry.provenance == prov
    assert entry.created_at.tzinfo is not None
    assert not entry.deleted
    assert c.writes == (entry.ref,)


async def test_every_write_is_a_new_version_and_as_of_reads_the_past(store: MemoryStore) -> None:
    seqs = [await put(store, NS, "k", {"n": n}) for n in range(3)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    history = await store.history(NS, "k")
    assert [(h.version, h.value, h.commit_seq) for h in history] == [
        (1, {"n": 0}, seqs[0]),
        (2, {"n": 1}, seqs[1]),
        (3, {"n": 2}, seqs[2]),
    ]
    assert (await store.get(NS, "k")).value == {"n": 2}
    for n, seq in enumerate(seqs):
        assert (await store.get(NS, "k", as_of=seq)).value == {"n": n}
    with pytest.raises(NotFound, match="as of commit"):
        await store.get(NS, "k", as_of=seqs[0] - 1)
    assert [h.version for h in await store.history(NS, "k", limit=2)] == [1, 2]


async def test_get_and_history_of_a_missing_key_raise_not_found(store: MemoryStore) -> None:
    with pytest.raises(NotFound) as info:
        await store.get(NS, "nope")
    assert isinstance(info.value, KeyError)
    with pytest.raises(NotFound):
        await store.history(NS, "nope")


async def test_delete_leaves_a_tombstone_in_history(store: MemoryStore) -> None:
    first = await put(store, NS, "k", "v1")
    async with store.commit() as c:
        c.delete(NS, "k")
    with pytest.raises(NotFound):
        await store.get(NS, "k")
    history = await store.history(NS, "k")
    assert [(h.version, h.value, h.deleted) for h in history] == [(1, "v1", False), (2, None, True)]
    assert history[1].commit_seq == c.seq
    assert (await store.get(NS, "k", as_of=first)).value == "v1"
    with pytest.raises(NotFound):
        await store.get(NS, "k", as_of=c.seq)
    assert (await store.list(NS)).entries == ()
    await put(store, NS, "k", "v3")
    assert (await store.get(NS, "k")).version == 3


async def test_expected_version_match_applies(store: MemoryStore) -> None:
    await put(store, NS, "k", 1)
    async with store.commit() as c:
        c.put(NS, "k", 2, expected_version=1)
    entry = await store.get(NS, "k")
    assert (entry.value, entry.version) == (2, 2)


async def test_expected_version_mismatch_applies_nothing_of_the_commit(store: MemoryStore) -> None:
    await put(store, NS, "k", 1)
    await put(store, NS, "k", 2)
    before = await row_counts(store)
    with pytest.raises(ConflictError) as info:
        async with store.commit(key="cas") as c:
            c.put(OTHER, "a-first", "other put")
            c.put(NS, "k", 3, expected_version=1)
            c.put(NS, "z-last", "another put")
            c.append(NS, "log", {"event": "x"})
            c.delete(OTHER, "gone")
    err = info.value
    assert (err.namespace, err.key, err.expected, err.actual) == (NS, "k", 1, 2)
    assert "nothing in this commit was applied" in str(err)
    assert await row_counts(store) == before
    assert (await store.get(NS, "k")).value == 2
    for ns, key in ((OTHER, "a-first"), (NS, "z-last")):
        with pytest.raises(NotFound):
            await store.get(ns, key)
    assert await store.tail(NS, "log") == []
    with pytest.raises(NotFound):
        await store.get_commit("cas")
    # Nothing was stored under the key, so the step can retry with it.
    async with store.commit(key="cas") as c:
        c.put(NS, "k", 3, expected_version=2)
    assert not c.replayed
    assert (await store.get(NS, "k")).version == 3


async def test_expected_version_zero_is_create_only(store: MemoryStore) -> None:
    async with store.commit() as c:
        c.put(NS, "k", "first", expected_version=0)
    with pytest.raises(ConflictError) as info:
        async with store.commit() as c:
            c.put(NS, "k", "second", expected_version=0)
    assert (info.value.expected, info.value.actual) == (0, 1)
    assert (await store.get(NS, "k")).value == "first"
    async with store.commit() as c:
        c.delete(NS, "k", expected_version=1)
    # A deleted key does not exist: create-only may write it again.
    async with store.commit() as c:
        c.put(NS, "k", "again", expected_version=0)
    assert (await store.get(NS, "k")).version == 3


async def test_expected_version_on_a_missing_or_deleted_key_conflicts(store: MemoryStore) -> None:
    with pytest.raises(ConflictError) as info:
        async with store.commit() as c:
            c.put(NS, "never", 1, expected_version=1)
    assert info.value.actual is None
    assert "found no entry" in str(info.value)
    await put(store, NS, "k", 1)
    async with store.commit() as c:
        c.delete(NS, "k")
    with pytest.raises(ConflictError):
        async with store.commit() as c:
            c.put(NS, "k", 2, expected_version=2)
    with pytest.raises(ConflictError):
        async with store.commit() as c:
            c.delete(NS, "k", expected_version=1)


async def test_merge_append_builds_a_list(store: MemoryStore) -> None:
    for item in ("a", "b"):
        await put(store, NS, "log", item, merge="append")
    async with store.commit() as c:
        c.put(NS, "log", "c", merge="append")
        c.put(NS, "log", "d", merge="append")
    entry = await store.get(NS, "log")
    assert entry.value == ["a", "b", "c", "d"]
    assert entry.version == 4


async def test_merge_append_onto_a_non_list_applies_nothing(store: MemoryStore) -> None:
    await put(store, NS, "k", {"not": "a list"})
    before = await row_counts(store)
    with pytest.raises(InvalidInput, match="append"):
        async with store.commit() as c:
            c.put(OTHER, "x", 1)
            c.put(NS, "k", "item", merge="append")
    assert await row_counts(store) == before


async def test_merge_reducer_combines_with_the_current_value(store: MemoryStore) -> None:
    def add(current: object, new: object) -> object:
        assert isinstance(new, int)
        return new if current is None else int(str(current)) + new

    for n in (5, 7):
        await put(store, NS, "total", n, merge=add)
    async with store.commit() as c:
        c.delete(NS, "other")
        c.put(NS, "total", 30, merge=add)
    assert (await store.get(NS, "total")).value == 42
    async with store.commit() as c:
        c.delete(NS, "total")
    await put(store, NS, "total", 1, merge=add)  # after a delete the reducer starts afresh
    assert (await store.get(NS, "total")).value == 1


async def test_replaying_a_commit_key_applies_nothing_and_returns_the_result(
    store: MemoryStore,
) -> None:
    async with store.commit(key="wf/run/1") as c:
        assert not c.replayed
        c.put(NS, "out", "first")
        c.append(NS, "log", "first")
        c.result = {"answer": 42}
    first_seq, first_writes = c.seq, c.writes
    assert c.result == {"answer": 42}
    before = await row_counts(store)
    async with store.commit(key="wf/run/1") as again:
        # Known on entry, so a retried step skips its work.
        assert again.replayed
        assert again.result == {"answer": 42}
        assert again.seq == first_seq
        again.put(NS, "out", "second")
        again.append(NS, "log", "second")
        again.result = {"answer": 0}
    assert again.replayed and again.seq == first_seq
    assert again.result == {"answer": 42}
    assert again.writes == first_writes
    assert await row_counts(store) == before
    assert (await store.get(NS, "out")).value == "first"
    assert [i.item for i in await store.tail(NS, "log")] == ["first"]


async def test_a_commit_whose_body_raises_stores_nothing(store: MemoryStore) -> None:
    before = await row_counts(store)
    with pytest.raises(RuntimeError):
        async with store.commit(key="boom") as c:
            c.put(NS, "k", 1)
            raise RuntimeError("step failed")
    assert await row_counts(store) == before
    async with store.commit(key="boom") as c:
        c.put(NS, "k", 1)
    assert not c.replayed


async def test_an_applied_commit_takes_no_more_writes(store: MemoryStore) -> None:
    async with store.commit() as c:
        c.put(NS, "k", 1)
    with pytest.raises(InvalidInput, match="already applied"):
        c.put(NS, "k", 2)
