"""Contract: forking a namespace as of a commit, and forgetting a subject's data for good."""

from __future__ import annotations

import pytest

from memory import InvalidInput, MemoryStore, NotFound, Provenance
from tests.memory.conftest import Clock, put, raw_dump, row_counts

SRC = ("acme", "session", "s-1")
DST = ("acme", "session", "s-1-branch")


async def _state(store: MemoryStore, ns: tuple[str, ...], keys: list[str], as_of: int | None):
    state = {}
    for key in keys:
        try:
            entry = await store.get(ns, key, as_of=as_of)
        except NotFound:
            continue
        state[key] = (entry.value, entry.tags)
    return state


async def test_fork_as_of_copies_the_state_at_that_commit(store: MemoryStore) -> None:
    async with store.commit() as c:
        c.put(SRC, "plan", "v1", tags=["pinned"])
        c.put(SRC, "doomed", "soon deleted")
        c.put((*SRC, "sub"), "nested", {"deep": True})
        c.append(SRC, "chat", "hello")
    async with store.commit() as c:
        c.put(SRC, "plan", "v2", tags=["pinned"])
        c.delete(SRC, "doomed")
        c.append(SRC, "chat", "how are you")
    mid = c.seq
    assert mid is not None
    async with store.commit() as c:
        c.put(SRC, "plan", "v3")
        c.put(SRC, "late", "added after the fork point")
        c.append(SRC, "chat", "after the fork point")
    src_history = await store.history(SRC, "plan")

    record = await store.fork(SRC, DST, as_of=mid, key="fork-1")
    assert record.key == "fork-1"
    assert record.result == {"source": "acme/session/s-1", "as_of": mid}
    assert record.provenance.tenant == "acme"
    keys = ["plan", "doomed", "late"]
    assert await _state(store, DST, keys, None) == await _state(store, SRC, keys, mid)
    assert await _state(store, DST, keys, None) == {"plan": ("v2", ("pinned",))}
    assert (await store.get((*DST, "sub"), "nested")).value == {"deep": True}
    assert [i.item for i in await store.tail(DST, "chat")] == ["hello", "how are you"]
    assert {(r.namespace, r.key) for r in record.writes} == {
        (DST, "plan"),
        ((*DST, "sub"), "nested"),
        (DST, "chat"),
    }
    # The source is untouched.
    assert await store.history(SRC, "plan") == src_history
    assert [i.item for i in await store.tail(SRC, "chat")][-1] == "after the fork point"
    # The copy has a history of its own, starting at the fork.
    assert [h.version for h in await store.history(DST, "plan")] == [1]


async def test_fork_without_as_of_copies_the_current_state(store: MemoryStore) -> None:
    await put(store, SRC, "k", 1)
    await put(store, SRC, "k", 2)
    await store.fork(SRC, DST)
    assert (await store.get(DST, "k")).value == 2


async def test_fork_needs_an_empty_destination_and_no_overlap(store: MemoryStore) -> None:
    await put(store, SRC, "k", 1)
    await put(store, DST, "existing", 1)
    before = await row_counts(store)
    with pytest.raises(InvalidInput, match="not empty"):
        await store.fork(SRC, DST)
    with pytest.raises(InvalidInput, match="contain each other"):
        await store.fork(SRC, (*SRC, "child"))
    with pytest.raises(InvalidInput, match="contain each other"):
        await store.fork(SRC, SRC[:2])
    assert await row_counts(store) == before
    with pytest.raises(NotFound):
        await store.get(DST, "k")


async def test_fork_with_a_key_is_idempotent(store: MemoryStore) -> None:
    await put(store, SRC, "k", 1)
    first = await store.fork(SRC, DST, key="fork-once")
    before = await row_counts(store)
    again = await store.fork(SRC, DST, key="fork-once")
    assert again == first
    assert await row_counts(store) == before


async def test_forked_entries_keep_their_expiry(clock_store: tuple[MemoryStore, Clock]) -> None:
    store, clock = clock_store
    await put(store, SRC, "secret", "expires soon", ttl=60)
    await put(store, SRC, "keep", "stays")
    clock.advance(30)
    await store.fork(SRC, DST)
    assert (await store.get(DST, "secret")).value == "expires soon"
    clock.advance(31)
    with pytest.raises(NotFound):
        await store.get(DST, "secret")
    assert (await store.get(DST, "keep")).value == "stays"


async def test_forget_removes_the_data_everywhere_and_audits_counts(store: MemoryStore) -> None:
    u1, u2 = ("acme", "user", "u1"), ("acme", "user", "u2")
    async with store.commit(key="both", provenance=Provenance(agent="profiler")) as c:
        c.put(u1, "profile", {"name": "Zebulon Quixote"}, tags=["pii"])
        c.put(u2, "profile", {"name": "Ana"})
        c.result = {"summary": "Zebulon Quixote likes trains"}
    first = c.seq
    async with store.commit(key="only-u1") as c:
        c.put(u1, "profile", {"name": "Zebulon Quixote", "city": "Lyon"})
        c.put((*u1, "notes"), "n1", "Zebulon Quixote said hello")
        c.append(u1, "chat", "Zebulon Quixote: hi")
        c.result = "Zebulon Quixote"
    async with store.commit(key="unrelated") as c:
        c.put(u2, "profile", {"name": "Ana", "city": "Porto"})
        c.result = "kept"

    counts = await store.forget(u1, principal="dpo@acme")
    assert counts == {
        "search_docs": 3,
        "vectors": 0,
        "versions": 3,
        "keys": 2,
        "stream_items": 1,
        "streams": 1,
        "commits_scrubbed": 2,
        "data_keys": 0,
    }
    for ns, key in ((u1, "profile"), ((*u1, "notes"), "n1")):
        with pytest.raises(NotFound):
            await store.get(ns, key)
        with pytest.raises(NotFound):
            await store.history(ns, key)
    with pytest.raises(NotFound):
        await store.get(u1, "profile", as_of=first)
    assert await store.tail(u1, "chat") == []
    assert await store.search(("acme",), "Zebulon Quixote") == []
    assert (await store.list(u1)).entries == ()
    for key in ("both", "only-u1"):
        record = await store.get_commit(key)
        assert record.forgotten and record.result is None
        assert all(w.namespace[:3] != u1 for w in record.writes)
    assert (await store.get_commit("both")).provenance.agent == "profiler"
    assert (await store.get_commit("unrelated")).result == "kept"
    assert (await store.get(u2, "profile")).value == {"name": "Ana", "city": "Porto"}
    assert len(await store.history(u2, "profile")) == 2

    audit = (await store.audit_log())[0]
    assert (audit.action, audit.target, audit.principal) == ("forget", "acme/user/u1", "dpo@acme")
    assert audit.detail == counts
    # Not a trace of the subject's data is left in any table (the audit record included).
    dump = await raw_dump(store)
    assert "zebulon" not in dump and "quixot" not in dump


async def test_forget_of_nothing_still_records_it(store: MemoryStore) -> None:
    counts = await store.forget(("acme", "user", "nobody"))
    assert set(counts.values()) == {0}
    audit = await store.audit_log(limit=1)
    assert audit[0].target == "acme/user/nobody" and audit[0].principal is None
