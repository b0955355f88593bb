"""Puts with ``index=False`` are stored and read like any other but stay out of search."""

from __future__ import annotations

from memory import MemoryStore


async def test_an_unindexed_put_is_readable_but_not_searchable(store: MemoryStore) -> None:
    async with store.commit() as c:
        c.put(("acme", "blobs"), "opaque", {"text": "zebra crossing"}, index=False)
        c.put(("acme", "blobs"), "plain", {"text": "zebra stripes"})
    assert (await store.get(("acme", "blobs"), "opaque")).value == {"text": "zebra crossing"}
    hits = await store.search(("acme",), "zebra")
    assert [h.key for h in hits] == ["plain"]


async def test_an_unindexed_version_removes_the_earlier_versions_doc(store: MemoryStore) -> None:
    async with store.commit() as c:
        c.put(("acme", "blobs"), "k", {"text": "walrus"})
    assert [h.key for h in await store.search(("acme",), "walrus")] == ["k"]
    async with store.commit() as c:
        c.put(("acme", "blobs"), "k", {"text": "walrus again"}, index=False)
    assert await store.search(("acme",), "walrus") == []
