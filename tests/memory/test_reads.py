"""Contract: stored commits, paginated listing, streams and typed reads."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from memory import InvalidInput, MemoryRef, MemoryStore, NotFound, Provenance
from tests.memory.conftest import NS, put


class Plan(BaseModel):
    steps: list[str]
    owner: str | None = None


async def test_get_commit_has_provenance_result_and_writes(store: MemoryStore) -> None:
    prov = Provenance(
        tenant="acme",
        workflow_id="wf-9",
        run_id="run-1",
        activity_id="3",
        attempt=2,
        agent="writer",
        trace_id="0af7651916cd43dd8448eb211c80319c",
    )
    async with store.commit(key="wf-9/run-1/3", provenance=prov) as c:
        c.put(NS, "draft", "hello")
        c.append(NS, "transcript", {"role": "assistant", "text": "hi"})
        c.put(("acme", "run", "wf-9"), "status", "done")
        c.result = {"preview": "hello"}
    record = await store.get_commit("wf-9/run-1/3")
    assert record.seq == c.seq
    assert record.key == "wf-9/run-1/3"
    assert record.provenance == prov
    assert record.result == {"preview": "hello"}
    assert not record.forgotten
    assert record.created_at.tzinfo is not None
    assert set(record.writes) == {
        MemoryRef(namespace=NS, key="draft", version=1, commit_seq=c.seq),
        MemoryRef(namespace=("acme", "run", "wf-9"), key="status", version=1, commit_seq=c.seq),
        MemoryRef(namespace=NS, key="transcript", version=1, commit_seq=c.seq, kind="stream"),
    }
    assert set(record.writes) == set(c.writes)
    commits = await store.list_commits(workflow_id="wf-9")
    assert [r.key for r in commits] == ["wf-9/run-1/3"]
    assert await store.list_commits(tenant="globex") == []
    with pytest.raises(NotFound, match="commit 'missing'"):
        await store.get_commit("missing")


async def test_list_pages_are_complete_ordered_and_without_duplicates(store: MemoryStore) -> None:
    expected = []
    async with store.commit() as c:
        for ns in (("acme", "a"), ("acme", "a", "sub"), ("acme", "a", "sub", "deep")):
            for i in range(9):
                c.put(ns, f"k{i:02}", i, tags=["even"] if i % 2 == 0 else [])
                expected.append((ns, f"k{i:02}"))
        # Outside the prefix: a sibling whose name starts with it, another branch, another tenant.
        c.put(("acme", "ab"), "k00", 0)
        c.put(("acme", "b"), "k00", 0)
        c.put(("globex", "a"), "k00", 0)
        c.put(("acme", "a"), "deleted", 0)
    async with store.commit() as c:
        c.delete(("acme", "a"), "deleted")
    seen = []
    cursor = None
    pages = 0
    while True:
        page = await store.list(("acme", "a"), limit=4, cursor=cursor)
        pages += 1
        assert len(page.entries) <= 4
        seen += [(e.namespace, e.key) for e in page.entries]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(expected)
    assert len(set(seen)) == len(seen) == 27
    assert pages == 7
    tagged = await store.list(("acme", "a"), tags=["even"], limit=100)
    assert {(e.namespace, e.key) for e in tagged.entries} == {
        (ns, k) for ns, k in expected if int(k[1:]) % 2 == 0
    }
    assert tagged.next_cursor is None
    assert [e.key for e in (await store.list(("acme", "ab"))).entries] == ["k00"]


async def test_list_cursor_survives_writes_between_pages(store: MemoryStore) -> None:
    for i in range(6):
        await put(store, NS, f"k{i}", i)
    first = await store.list(NS, limit=3)
    await put(store, NS, "k0", "rewritten")  # before the cursor: not seen again
    await put(store, NS, "k9", 9)  # after it: seen
    rest = await store.list(NS, limit=10, cursor=first.next_cursor)
    assert [e.key for e in first.entries] == ["k0", "k1", "k2"]
    assert [e.key for e in rest.entries] == ["k3", "k4", "k5", "k9"]


async def test_list_rejects_a_forged_cursor(store: MemoryStore) -> None:
    for cursor in ("not-base64!", "bnVsbA==", "W10="):
        with pytest.raises(InvalidInput, match="cursor"):
            await store.list(NS, cursor=cursor)


async def test_tail_and_read_stream_ranges(store: MemoryStore) -> None:
    seqs = []
    for i in range(1, 11):
        async with store.commit() as c:
            c.append(NS, "log", {"i": i})
        seqs.append(c.seq)
    tail = await store.tail(NS, "log", 3)
    assert [(t.seq, t.item) for t in tail] == [(8, {"i": 8}), (9, {"i": 9}), (10, {"i": 10})]
    assert [t.commit_seq for t in tail] == seqs[7:]
    assert all(t.namespace == NS and t.stream == "log" for t in tail)
    assert [t.seq for t in await store.tail(NS, "log", 100)] == list(range(1, 11))
    assert [t.seq for t in await store.read_stream(NS, "log", start=3, end=6)] == [3, 4, 5]
    assert [t.seq for t in await store.read_stream(NS, "log", start=4, limit=2)] == [4, 5]
    assert [t.seq for t in await store.read_stream(NS, "log", start=10)] == [10]
    assert await store.read_stream(NS, "log", start=11) == []
    assert await store.read_stream(NS, "log", start=5, end=5) == []
    assert await store.tail(NS, "other") == []
    assert await store.tail(("acme", "session"), "log") == []


async def test_one_commit_appends_in_order(store: MemoryStore) -> None:
    async with store.commit() as c:
        for i in range(5):
            c.append(NS, "log", i)
    assert [(t.seq, t.item) for t in await store.tail(NS, "log")] == [(i + 1, i) for i in range(5)]
    assert {t.commit_seq for t in await store.tail(NS, "log")} == {c.seq}


async def test_typed_reads_return_the_model(store: MemoryStore) -> None:
    await put(store, NS, "plan", Plan(steps=["research", "write"]))
    plan = await store.get(NS, "plan", model=Plan)
    assert plan == Plan(steps=["research", "write"])
    seq = await put(store, NS, "plan", {"steps": ["ship"], "owner": "ana"})
    assert await store.get(NS, "plan", model=Plan, as_of=seq) == Plan(steps=["ship"], owner="ana")
    await put(store, NS, "plan", {"steps": "not a list"})
    with pytest.raises(InvalidInput, match=r"v3 is not a Plan"):
        await store.get(NS, "plan", model=Plan)


async def test_read_models_equal_their_validated_twins(store: MemoryStore) -> None:
    # Reads build models without validating what the store validated on the way in
    # (memory.records.trusted); they must be indistinguishable from validated ones.
    prov = Provenance(tenant="acme", workflow_id="wf-1", attempt=3, agent="a")
    async with store.commit(provenance=prov) as c:
        c.put(NS, "k", {"big": 2**70, "list": [1.5, None, "ü"]}, tags=["x", "y"], ttl=3600)
        c.append(NS, "s", {"role": "user", "text": "hello"})
    reads = [
        await store.get(NS, "k"),
        (await store.history(NS, "k"))[0],
        (await store.history(NS, "k", limit=5))[0],
        (await store.tail(NS, "s", 5))[0],
        (await store.read_stream(NS, "s"))[0],
        (await store.search(NS[:1], "hello"))[0],
    ]
    for model in reads:
        twin = type(model).model_validate(model.model_dump())
        assert model == twin
        assert repr(model) == repr(twin)
        assert model.model_dump_json() == twin.model_dump_json()
        assert model.model_fields_set == twin.model_fields_set
    entry = reads[0]
    assert entry.value == {"big": 2**70, "list": [1.5, None, "ü"]}
    assert entry.tags == ("x", "y") and entry.deleted is False
    assert entry.created_at.utcoffset() is not None and entry.expires_at is not None
    assert entry.provenance == prov
