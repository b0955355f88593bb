"""Contract: a commit's vectors are computed once, before it, and written in its transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from memory import InvalidInput, MemoryStore, NotFound, StoreUnavailable
from memory.embedding import EmbedderUnavailable, HashingEmbedder, InvalidEmbedding
from tests.memory.conftest import Clock, row_counts
from tests.memory.semantic_helpers import (
    NOTES,
    BrokenEmbedder,
    CountingEmbedder,
    config,
    vector_rows,
)

OTHER = ("acme", "chat")


@pytest.fixture
async def opened(store_url: str) -> AsyncIterator[Callable[..., Any]]:
    stores: list[MemoryStore] = []

    async def open_with(*configs: Any, **kw: Any) -> MemoryStore:
        s = await MemoryStore.open(store_url, embedders=list(configs), **kw)
        stores.append(s)
        return s

    yield open_with
    for s in stores:
        await s.close()


async def test_entries_in_configured_namespaces_get_one_vector_with_model_and_dims(
    opened: Callable[..., Any],
) -> None:
    store = await opened(config(fields=("text",)))
    async with store.commit() as c:
        c.put(NOTES, "tea", {"text": "Ada prefers green tea", "n": 1})
        c.put(NOTES, "empty", {"other": "no text field"})
        c.put(OTHER, "hello", {"text": "not configured"})
        c.append(NOTES, "log", "streams are not embedded")
    assert await vector_rows(store) == [("acme/notes", "tea", 1, "cairn-hashing-v1", 64)]


async def test_a_replayed_commit_embeds_and_writes_nothing(opened: Callable[..., Any]) -> None:
    embedder = CountingEmbedder()
    store = await opened(config(embedder))
    for _ in range(2):
        async with store.commit(key="step-1") as c:
            c.put(NOTES, "tea", "Ada prefers green tea")
    assert embedder.texts == ["Ada prefers green tea"]
    assert len(await vector_rows(store)) == 1


async def test_identical_texts_are_embedded_once_per_commit(opened: Callable[..., Any]) -> None:
    embedder = CountingEmbedder()
    store = await opened(config(embedder))
    async with store.commit() as c:
        for key in ("a", "b", "c"):
            c.put(NOTES, key, "the same words")
    assert embedder.texts == ["the same words"]
    assert [r[1] for r in await vector_rows(store)] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("how", "error", "match"),
    [
        ("down", EmbedderUnavailable, "unavailable: HTTP 503"),
        ("dims", InvalidEmbedding, "vectors of 32 dims; 64 were expected"),
        ("nan", InvalidEmbedding, "NaN or infinite number in vector 0"),
    ],
)
async def test_a_failing_embedder_fails_the_commit_and_writes_nothing(
    opened: Callable[..., Any], how: str, error: type[Exception], match: str
) -> None:
    store = await opened(config(BrokenEmbedder(how)))
    before = await row_counts(store)
    with pytest.raises(error, match=match):
        async with store.commit(key="k") as c:
            c.put(NOTES, "tea", "Ada prefers green tea")
    assert await row_counts(store) == before
    # Unavailable is retryable (a StoreUnavailable); bad output is the caller's (InvalidInput).
    assert issubclass(error, StoreUnavailable) == (how == "down")
    assert issubclass(error, InvalidInput) == (how != "down")


async def test_merged_values_are_embedded_as_merged(opened: Callable[..., Any]) -> None:
    embedder = CountingEmbedder()
    store = await opened(config(embedder))
    async with store.commit() as c:
        c.put(NOTES, "list", ["green tea"])
    async with store.commit() as c:
        c.put(NOTES, "list", ["black coffee"], merge="append")
    assert embedder.texts == ["green tea", "green tea\nblack coffee"]
    assert [r[2] for r in await vector_rows(store)] == [1, 2]


async def test_vectors_belong_to_versions_and_deletes_hide_them(
    opened: Callable[..., Any],
) -> None:
    store = await opened(config())
    for text in ("green tea", "black coffee"):
        async with store.commit() as c:
            c.put(NOTES, "drink", text)
    assert [r[2] for r in await vector_rows(store)] == [1, 2]
    hits = await store.search(NOTES, "green tea", mode="vector")
    assert [(h.key, h.value) for h in hits] == [("drink", "black coffee")]
    async with store.commit() as c:
        c.delete(NOTES, "drink")
    assert await store.search(NOTES, "coffee", mode="vector") == []


async def test_forget_purge_and_expiry_remove_vectors_fork_copies_them(
    store_url: str,
) -> None:
    clock = Clock()
    embedder = CountingEmbedder()
    store = await MemoryStore.open(store_url, clock=clock, embedders=[config(embedder)])
    try:
        async with store.commit() as c:
            c.put((*NOTES, "u1"), "a", "kept then forgotten")
            c.put((*NOTES, "u2"), "b", "short lived", ttl=10)
        async with store.commit(key="bad", provenance=_prov("wf-bad")) as c:
            c.put((*NOTES, "u3"), "c", "poison")
        await store.fork((*NOTES, "u1"), ("acme", "notes2"))
        assert embedder.texts == ["kept then forgotten", "short lived", "poison"]
        assert {r[0] for r in await vector_rows(store)} == {
            "acme/notes/u1",
            "acme/notes/u2",
            "acme/notes/u3",
            "acme/notes2",
        }
        await store.purge_run("wf-bad")
        counts = await store.forget((*NOTES, "u1"))
        assert counts["vectors"] == 1
        clock.advance(11)
        await store.purge_expired()
        assert [r[0] for r in await vector_rows(store)] == ["acme/notes2"]
        hits = await store.search(("acme",), "forgotten", mode="vector")
        assert [(h.namespace, h.key) for h in hits] == [(("acme", "notes2"), "a")]
    finally:
        await store.close()


def _prov(workflow_id: str) -> Any:
    from memory import Provenance

    return Provenance(workflow_id=workflow_id)


async def test_as_of_reads_see_the_version_whose_vector_was_stored(
    opened: Callable[..., Any],
) -> None:
    store = await opened(config())
    async with store.commit() as c:
        c.put(NOTES, "drink", "green tea")
    first = c.seq
    async with store.commit() as c:
        c.put(NOTES, "drink", "black coffee")
    assert (await store.get(NOTES, "drink", as_of=first)).value == "green tea"
    rows = await vector_rows(store)
    assert [(r[1], r[2]) for r in rows] == [("drink", 1), ("drink", 2)]
    with pytest.raises(NotFound):
        await store.get(NOTES, "drink", as_of=0)


async def test_configs_must_name_an_embedder(store_url: str) -> None:
    from memory.embedding import EmbeddingConfig

    bad = EmbeddingConfig(pattern=NOTES, embedder=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="embedding pattern 'acme/notes' has no embedder"):
        await MemoryStore.open(store_url, embedders=[bad])
    with pytest.raises(InvalidInput, match="list of EmbeddingConfig"):
        await MemoryStore.open(store_url, embedders=config())  # type: ignore[arg-type]
    assert HashingEmbedder(64).dims == 64
