"""Context assembly and scoped reads use hybrid search where an embedder is configured."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from memory import Grants, MemoryStore
from memory.context import ContextSpec, SearchSource, build_context
from tests.memory.semantic_helpers import NOTES, config


@pytest.fixture
async def notes(store_url: str) -> AsyncIterator[MemoryStore]:
    store = await MemoryStore.open(store_url, embedders=[config()])
    async with store.commit() as c:
        c.put(NOTES, "tea", "green tea in the morning")
        c.put(NOTES, "train", "the train to Lyon")
    yield store
    await store.close()


async def test_context_search_finds_what_keywords_miss(notes: MemoryStore) -> None:
    # "teapot" shares no word with the note (keyword finds nothing), only letters (the
    # hashing embedder's trigrams): the default hybrid search still recalls it.
    assert await notes.search(NOTES, "teapot", mode="keyword") == []
    spec = ContextSpec(search=SearchSource(where="acme/notes", limit=1))
    ctx = await build_context(
        notes, spec, instructions="Answer.", task="teapot", bindings={"tenant": ("acme",)}
    )
    assert [(r.namespace, r.key) for r in ctx.refs] == [(NOTES, "tea")]


async def test_a_scoped_reader_searches_by_meaning_within_its_grants(notes: MemoryStore) -> None:
    scoped = notes.scoped("agent", Grants(read=("acme/notes",)))
    hits = await scoped.search(NOTES, "teapot", mode="vector", limit=1)
    assert [h.key for h in hits] == ["tea"]
