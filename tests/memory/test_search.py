"""Contract: keyword search over entries and stream items, scoped by namespace prefix."""

from __future__ import annotations

from memory import MemoryStore
from tests.memory.conftest import Clock, put

A = ("acme", "a")
B = ("acme", "b")


async def _corpus(store: MemoryStore) -> None:
    async with store.commit() as c:
        c.put(A, "incident", {"title": "Kubernetes deployment failed", "body": "rollback"})
        c.put(A, "recipe", {"title": "Lemon cake", "body": "flour, sugar, lemons, butter"})
        c.put(A, "travel", "Notes on trains between Lyon and Geneva", tags=["trips"])
        c.put(A, "mention", "a long memo on budgets, hiring, offices and once kubernetes")
        c.append(A, "chat", {"role": "user", "text": "the cake recipe needs more lemons"})


async def test_search_ranks_the_relevant_document_first(store: MemoryStore) -> None:
    await _corpus(store)
    hits = await store.search(A, "kubernetes deployment")
    assert [h.key for h in hits][:2] == ["incident", "mention"]
    top = hits[0]
    assert top.namespace == A and top.kind == "entry" and top.version == 1
    assert top.value == {"title": "Kubernetes deployment failed", "body": "rollback"}
    assert top.score >= hits[1].score
    assert {h.key for h in await store.search(A, "lemons")} == {"recipe", "chat"}
    chat = next(h for h in await store.search(A, "lemons") if h.kind == "stream")
    assert chat.value == {"role": "user", "text": "the cake recipe needs more lemons"}
    assert chat.version == 1
    assert await store.search(A, "zeppelin") == []


async def test_search_stems_words(store: MemoryStore) -> None:
    await _corpus(store)
    assert [h.key for h in await store.search(A, "trains")] == ["travel"]
    assert [h.key for h in await store.search(A, "train")] == ["travel"]


async def test_search_stays_inside_the_prefix(store: MemoryStore) -> None:
    await _corpus(store)
    await put(store, B, "incident", "kubernetes deployment in b")
    await put(store, ("acme", "ab"), "incident", "kubernetes deployment in ab")
    await put(store, ("acme", "a", "child"), "incident", "kubernetes deployment in a child")
    await put(store, ("globex", "a"), "incident", "kubernetes deployment elsewhere")
    found = {(h.namespace, h.key) for h in await store.search(A, "kubernetes", limit=100)}
    assert found == {(A, "incident"), (A, "mention"), (("acme", "a", "child"), "incident")}
    assert [h.namespace for h in await store.search(B, "kubernetes")] == [B]
    assert len(await store.search(("acme",), "kubernetes", limit=100)) == 5
    assert len(await store.search(("acme",), "kubernetes", limit=2)) == 2


async def test_search_filters_by_tags(store: MemoryStore) -> None:
    await _corpus(store)
    await put(store, A, "travel-2", "trains to Milan", tags=["trips", "italy"])
    assert {h.key for h in await store.search(A, "trains")} == {"travel", "travel-2"}
    assert {h.key for h in await store.search(A, "trains", tags=["trips"])} == {
        "travel",
        "travel-2",
    }
    assert [h.key for h in await store.search(A, "trains", tags=["trips", "italy"])] == ["travel-2"]
    assert await store.search(A, "trains", tags=["nowhere"]) == []


async def test_search_sees_only_current_values(store: MemoryStore) -> None:
    await put(store, A, "note", "about zebras")
    await put(store, A, "note", "about giraffes")
    assert await store.search(A, "zebras") == []
    hits = await store.search(A, "giraffes")
    assert [(h.key, h.version) for h in hits] == [("note", 2)]
    async with store.commit() as c:
        c.delete(A, "note")
    assert await store.search(A, "giraffes") == []


async def test_stop_word_only_and_punctuation_queries_return_nothing(store: MemoryStore) -> None:
    await put(store, A, "k", "the and of it is what it was")
    for query in ("the of and", "", "   ", "%", "_", "'; --", '"*"', "OR AND NOT"):
        assert await store.search(A, query) == [], query


async def test_expired_entries_are_hidden_from_search(
    clock_store: tuple[MemoryStore, Clock],
) -> None:
    store, clock = clock_store
    await put(store, A, "short", "ephemeral walrus", ttl=60)
    await put(store, A, "long", "permanent walrus")
    assert {h.key for h in await store.search(A, "walrus")} == {"short", "long"}
    clock.advance(61)
    assert [h.key for h in await store.search(A, "walrus")] == ["long"]


async def test_equal_scores_rank_by_namespace_then_key_whatever_the_write_order(
    store: MemoryStore,
) -> None:
    text = "durable execution survives crashes"
    for ns, key in ((B, "a-doc"), (A, "z-doc"), (A, "m-doc"), (A, "b-doc"), (A, "Z-doc")):
        await put(store, ns, key, text)
    await put(store, A, "m-doc", text)  # a newer version ranks where the first one did
    hits = await store.search(("acme",), "durable execution")
    assert len({h.score for h in hits}) == 1
    # Byte order on both backends: upper case before lower case.
    assert [("/".join(h.namespace), h.key) for h in hits] == [
        ("acme/a", "Z-doc"),
        ("acme/a", "b-doc"),
        ("acme/a", "m-doc"),
        ("acme/a", "z-doc"),
        ("acme/b", "a-doc"),
    ]
