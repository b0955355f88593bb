"""Contract: reindex embeds entries written before their embedder, once, resumably."""

from __future__ import annotations

import pytest

from memory import InvalidInput, MemoryStore
from tests.memory.semantic_helpers import NOTES, CountingEmbedder, config, vector_rows


async def test_reindex_backfills_once_and_reports_progress(store_url: str) -> None:
    plain = await MemoryStore.open(store_url)
    async with plain.commit() as c:
        for i in range(7):
            c.put(NOTES, f"k{i}", f"fact number {i}")
        c.put(NOTES, "blank", {"no": None})
        c.put(("acme", "other"), "x", "not covered")
    async with plain.commit() as c:
        c.put(NOTES, "k0", "fact number zero, rewritten")
    await plain.close()

    embedder = CountingEmbedder()
    store = await MemoryStore.open(store_url, embedders=[config(embedder)])
    try:
        seen: list[tuple[int, int]] = []
        report = await store.reindex(
            ("acme",), batch_size=3, progress=lambda d, t: seen.append((d, t))
        )
        assert report == {"embedded": 7, "skipped": 2}
        assert seen[-1] == (9, 9) and len(seen) == 3
        rows = await vector_rows(store)
        assert sorted((r[1], r[2]) for r in rows) == [("k0", 2)] + [
            (f"k{i}", 1) for i in range(1, 7)
        ]
        assert "fact number 0" not in embedder.texts

        assert await store.reindex(NOTES) == {"embedded": 0, "skipped": 1}
        assert len(embedder.texts) == 7
        hits = await store.search(NOTES, "rewritten zero", mode="vector", limit=1)
        assert [h.key for h in hits] == ["k0"]
    finally:
        await store.close()


async def test_reindex_without_an_embedder_names_the_prefix(store: MemoryStore) -> None:
    with pytest.raises(InvalidInput, match="reindex of 'acme/notes': no embedding pattern"):
        await store.reindex(NOTES)
