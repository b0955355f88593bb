"""Contract: keyword, vector and hybrid search, their defaults, filters and bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from memory import InvalidInput, MemoryStore, SearchHit
from memory.semantic import fuse
from tests.memory.conftest import assert_rejected
from tests.memory.semantic_helpers import NOTES, config

FACTS = {
    "tea": {"text": "Ada drinks green tea every morning", "status": "open"},
    "train": {"text": "Bob commutes by train to Lyon", "status": "done"},
    "cat": {"text": "Carol's cat is named Pixel", "status": "open"},
}


@pytest.fixture
async def semantic_store(store_url: str) -> AsyncIterator[MemoryStore]:
    store = await MemoryStore.open(store_url, embedders=[config(fields=("text",))])
    async with store.commit() as c:
        for key, value in FACTS.items():
            c.put(NOTES, key, value, tags=["fact"])
        c.put(("acme", "plain"), "tea", {"text": "green tea, unembedded"})
    yield store
    await store.close()


async def test_vector_search_ranks_by_similarity(semantic_store: MemoryStore) -> None:
    hits = await semantic_store.search(NOTES, "drinking teas", mode="vector", limit=3)
    assert hits[0].key == "tea"
    assert hits[0].score > hits[1].score
    assert all(-1.0 <= h.score <= 1.0 for h in hits)


async def test_hybrid_is_the_default_where_an_embedder_is_configured(
    semantic_store: MemoryStore,
) -> None:
    default = await semantic_store.search(NOTES, "train commute")
    hybrid = await semantic_store.search(NOTES, "train commute", mode="hybrid")
    assert default == hybrid
    assert default[0].key == "train"
    # Fused scores are reciprocal ranks: top of both rankings is 2 / 61.
    assert default[0].score == pytest.approx(2 / 61)


async def test_keyword_stays_the_default_elsewhere(semantic_store: MemoryStore) -> None:
    assert await semantic_store.search(("acme", "plain"), "tea") == await semantic_store.search(
        ("acme", "plain"), "tea", mode="keyword"
    )
    with pytest.raises(InvalidInput, match="vector search of 'acme/plain' needs an embedder"):
        await semantic_store.search(("acme", "plain"), "tea", mode="vector")


async def test_a_prefix_above_the_pattern_searches_the_embedded_part(
    semantic_store: MemoryStore,
) -> None:
    hits = await semantic_store.search(("acme",), "cat named pixel", mode="vector", limit=10)
    assert hits[0].key == "cat"
    assert {h.namespace for h in hits} == {NOTES}


async def test_filters_on_value_fields_and_tags(semantic_store: MemoryStore) -> None:
    for mode in ("keyword", "vector", "hybrid"):
        hits = await semantic_store.search(
            NOTES, "tea train cat", mode=mode, filter={"value.status": "open"}
        )
        assert {h.key for h in hits} <= {"tea", "cat"}, mode
        assert hits, mode
    assert await semantic_store.search(NOTES, "tea", mode="vector", tags=["nope"]) == []
    hits = await semantic_store.search(NOTES, "tea", mode="vector", filter={"key": ["cat"]})
    assert [h.key for h in hits] == ["cat"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"text": "   ", "mode": "hybrid"}, "search query is empty"),
        ({"text": "x" * 16_001}, "16001 characters is over the limit of 16000"),
        ({"text": "tea", "filter": {"statsu": "open"}}, "unknown filter field 'statsu'"),
        ({"text": "tea", "mode": "fuzzy"}, "search mode must be one of"),
    ],
)
async def test_bad_queries_are_refused_by_name(
    semantic_store: MemoryStore, kwargs: dict[str, object], match: str
) -> None:
    async def search() -> object:
        return await semantic_store.search(NOTES, **kwargs)  # type: ignore[arg-type]

    await assert_rejected(semantic_store, search, match)


def _hit(key: str) -> SearchHit:
    return SearchHit(
        namespace=NOTES, key=key, kind="entry", version=1, commit_seq=1, score=0.0, value=key
    )


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    a, b, c = _hit("a"), _hit("b"), _hit("c")
    fused = fuse([[a, b, c], [b, c]], limit=3)
    assert [h.key for h in fused] == ["b", "c", "a"]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert [h.key for h in fuse([[a], [b]], limit=2)] == ["a", "b"]


async def test_a_wildcard_pattern_serves_the_tenant_prefix(store_url: str) -> None:
    store = await MemoryStore.open(store_url, embedders=[config(pattern=("*", "notes"))])
    try:
        async with store.commit() as c:
            c.put(NOTES, "tea", "green tea")
        assert [h.key for h in await store.search(("acme",), "tea", mode="vector")] == ["tea"]
        with pytest.raises(InvalidInput, match="needs an embedder"):
            await store.search(("acme", "chat"), "tea", mode="vector")
    finally:
        await store.close()
