"""`MemoryStore.namespaces`: the namespaces that hold live entries, with their counts."""

from __future__ import annotations

import pytest

from memory import InvalidInput, MemoryStore


async def test_namespaces_count_live_current_entries_under_a_prefix(store: MemoryStore) -> None:
    async with store.commit(key="one") as commit:
        for i in range(3):
            commit.put(("acme", "run", "wf-1"), f"k{i}", {"v": i})
        commit.put(("acme", "run", "wf-1"), "k0", {"v": "again"})
        commit.put(("acme", "session", "s-1"), "summary", {"v": 1})
        commit.put(("beta", "docs"), "d", {"v": 1})
        commit.put(("acme", "gone"), "x", {"v": 1})
    async with store.commit(key="two") as commit:
        commit.delete(("acme", "gone"), "x")

    assert await store.namespaces() == [
        (("acme", "run", "wf-1"), 3),
        (("acme", "session", "s-1"), 1),
        (("beta", "docs"), 1),
    ]
    assert await store.namespaces(("acme", "run")) == [(("acme", "run", "wf-1"), 3)]
    assert await store.namespaces(("acme",), limit=1) == [(("acme", "run", "wf-1"), 3)]
    assert await store.namespaces(("nobody",)) == []


async def test_namespaces_rejects_a_bad_limit(store: MemoryStore) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        await store.namespaces(limit=0)
