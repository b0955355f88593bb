"""Bad input on both backends: a clear `InvalidInput`, nothing stored; valid odd keys round-trip."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from memory import MemoryStore, NotFound, Provenance
from tests.memory.conftest import NS, assert_rejected, put, row_counts

INJECTION = "'; DROP TABLE cairn_entries; --"


def _put(ns: Any = NS, key: Any = "k", value: Any = 1, **kw: Any) -> Callable[[MemoryStore], Any]:
    async def run(store: MemoryStore) -> None:
        async with store.commit() as c:
            c.put(NS, "before", "written first in the same commit")
            c.put(ns, key, value, **kw)

    return run


def _commit(**kw: Any) -> Callable[[MemoryStore], Any]:
    async def run(store: MemoryStore) -> None:
        async with store.commit(**kw) as c:
            c.put(NS, "k", 1)

    return run


def _result(result: Any) -> Callable[[MemoryStore], Any]:
    async def run(store: MemoryStore) -> None:
        async with store.commit() as c:
            c.put(NS, "k", 1)
            c.result = result

    return run


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


_circular: list[Any] = []
_circular.append(_circular)

BAD_WRITES = {
    "injection in segment": (_put(ns=("acme", INJECTION)), "invalid namespace segment"),
    "percent segment": (_put(ns=("acme", "50%")), "invalid namespace segment"),
    "backslash segment": (_put(ns=("acme", "a\\b")), "invalid namespace segment"),
    "slash segment": (_put(ns=("acme", "a/b")), "invalid namespace segment"),
    "dots segment": (_put(ns=("acme", "..")), "invalid namespace segment"),
    "NUL segment": (_put(ns=("acme", "a\x00b")), "invalid namespace segment"),
    "emoji segment": (_put(ns=("acme", "🧭")), "invalid namespace segment"),
    "empty segment": (_put(ns=("acme", "")), "invalid namespace segment"),
    "long segment": (_put(ns=("acme", "s" * 65)), "invalid namespace segment"),
    "deep namespace": (_put(ns=("acme",) + ("d",) * 8), "9 segments deep"),
    "empty namespace": (_put(ns=()), "at least one segment"),
    "string namespace": (_put(ns="acme/session"), "must be a tuple"),
    "int segment": (_put(ns=("acme", 7)), "must be a string"),
    "NUL key": (_put(key="a\x00b"), "control character"),
    "newline key": (_put(key="a\nb"), "control character"),
    "C1 control key": (_put(key="a\u0085b"), "control character"),
    "long key": (_put(key="k" * 513), "1-512 characters"),
    "empty key": (_put(key=""), "1-512 characters"),
    "surrogate key": (_put(key="a\ud800b"), "not valid Unicode"),
    "bytes key": (_put(key=b"k"), "must be a string"),
    "set value": (_put(value={1, 2}), "not JSON-serializable"),
    "object value": (_put(value=object()), "not JSON-serializable"),
    "nan value": (_put(value=float("nan")), "not JSON-serializable"),
    "inf value": (_put(value={"x": float("inf")}), "not JSON-serializable"),
    "bytes value": (_put(value=b"raw"), "not JSON-serializable"),
    "int object key": (_put(value={1: "a"}), "non-string object key 1"),
    "circular value": (_put(value=_circular), "more than 100 levels deep"),
    "deep value": (_put(value=_deep(101)), "more than 100 levels deep"),
    "surrogate value": (_put(value={"t": "\udc80"}), "invalid Unicode"),
    "surrogate object key": (_put(value={"\ud83d": 1}), "invalid Unicode"),
    "injection tag": (_put(tags=[INJECTION]), "invalid tag"),
    "percent tag": (_put(tags=["a%"]), "invalid tag"),
    "string tags": (_put(tags="pinned"), "list of strings"),
    "too many tags": (_put(tags=[f"t{i}" for i in range(17)]), "limit is 16"),
    "bool expected_version": (_put(expected_version=True), "expected_version"),
    "negative expected_version": (_put(expected_version=-1), "expected_version"),
    "str expected_version": (_put(expected_version="1"), "expected_version"),
    "bad merge": (_put(merge="sum"), "merge must be"),
    "NUL commit key": (_commit(key="step\x00"), "control character"),
    "long commit key": (_commit(key="c" * 2001), "1-2000 characters"),
    "wide commit key": (_commit(key="é" * 1001), "2002 bytes of UTF-8; the limit is 2000"),
    "NUL in provenance": (_commit(provenance=Provenance(agent="a\x00")), "provenance agent"),
    "long workflow id": (_commit(provenance=Provenance(workflow_id="w" * 1001)), "workflow_id"),
    "wide workflow id": (_commit(provenance=Provenance(workflow_id="😀" * 600)), "bytes of UTF-8"),
    "bad tenant": (_commit(provenance=Provenance(tenant=INJECTION)), "provenance tenant"),
    "huge attempt": (_commit(provenance=Provenance(attempt=2**40)), "attempt"),
    "dict provenance": (_commit(provenance={"agent": "x"}), "must be a Provenance"),
    "set result": (_result({1}), "result of commit .* not JSON-serializable"),
    "nan result": (_result(float("nan")), "result of commit .* not JSON-serializable"),
    "surrogate result": (_result("\ud800"), "result of commit .* invalid Unicode"),
}


async def _each_rejected(store: MemoryStore, cases: dict[str, Any]) -> None:
    # One database for all cases (a fresh PostgreSQL schema per case would cost most of the
    # suite's time); each failure names its case.
    for case, (action, match) in cases.items():
        try:
            await assert_rejected(store, lambda action=action: action(store), match)
        except (Exception, pytest.fail.Exception) as error:
            raise AssertionError(f"case {case!r}: {error}") from error


async def test_bad_writes_are_rejected_and_store_nothing(store: MemoryStore) -> None:
    await put(store, NS, "k", "original")
    await _each_rejected(store, BAD_WRITES)
    assert (await store.get(NS, "k")).value == "original"
    with pytest.raises(NotFound):
        await store.get(NS, "before")


def _cursor(payload: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


BAD_READS: dict[str, tuple[Callable[[MemoryStore], Any], str]] = {
    "injection namespace": (lambda s: s.get(("acme", INJECTION), "k"), "namespace segment"),
    "surrogate key": (lambda s: s.get(NS, "\udfff"), "not valid Unicode"),
    "negative as_of": (lambda s: s.get(NS, "k", as_of=-1), "as_of"),
    "bool as_of": (lambda s: s.get(NS, "k", as_of=True), "as_of"),
    "huge as_of": (lambda s: s.get(NS, "k", as_of=2**64), "as_of"),
    "huge start": (lambda s: s.read_stream(NS, "log", start=2**70), "start"),
    "zero limit": (lambda s: s.list(NS, limit=0), "limit"),
    "huge limit": (lambda s: s.list(NS, limit=10**6), "limit"),
    "int cursor": (lambda s: s.list(NS, cursor=5), "cursor"),
    "surrogate cursor": (lambda s: s.list(NS, cursor="\ud800"), "cursor"),
    "forged NUL cursor": (lambda s: s.list(NS, cursor=_cursor(["acme\x00", "k"])), "cursor"),
    "forged NUL key cursor": (lambda s: s.list(NS, cursor=_cursor(["acme", "k\x00"])), "cursor"),
    "forged surrogate cursor": (lambda s: s.list(NS, cursor=_cursor(["acme", "\ud800"])), "cursor"),
    "injection stream": (lambda s: s.tail(NS, INJECTION), "stream name"),
    "str start": (lambda s: s.read_stream(NS, "log", start="1"), "start"),
    "negative end": (lambda s: s.read_stream(NS, "log", end=-1), "end"),
    "bytes search": (lambda s: s.search(NS, b"x"), "search text"),
    "percent tag search": (lambda s: s.search(NS, "x", tags=["%"]), "invalid tag"),
    "long commit key": (lambda s: s.get_commit("c" * 2001), "1-2000"),
    "NUL workflow id": (lambda s: s.list_commits(workflow_id="w\x00"), "workflow_id"),
    "bad after_seq": (lambda s: s.list_commits(after_seq=-5), "after_seq"),
    "NUL principal": (lambda s: s.forget(NS, principal="a\x00"), "principal"),
    "fork as_of": (lambda s: s.fork(NS, ("acme", "copy"), as_of="3"), "as_of"),
    "not a model": (lambda s: s.get(NS, "k", model=dict), "pydantic model"),
}


async def test_bad_arguments_are_invalid_input(store: MemoryStore) -> None:
    await put(store, NS, "k", "original")
    await _each_rejected(store, BAD_READS)


ODD_KEYS = [
    INJECTION,
    "%",
    "_",
    "\\",
    "a%b_c\\d",
    "'\"`;",
    "🧭 plan ✈️",
    "שלום עולם",
    "مرحبا",
    "e\u0301",  # e + combining acute
    "\u00e9",  # precomposed é: a different key
    "a\u200db",
    "\ufeffbom",
    " padded ",
    "k" * 512,
    "😀" * 512,
    "key/with/slashes",
]


async def test_valid_odd_keys_round_trip_exactly(store: MemoryStore) -> None:
    async with store.commit(key="odd " + INJECTION) as c:
        for i, key in enumerate(ODD_KEYS):
            c.put(NS, key, {"i": i, "key": key, "nul": "a\x00b"}, tags=["odd_tag"])
            c.append(("acme", "s_1"), "log", key)
    for i, key in enumerate(ODD_KEYS):
        entry = await store.get(NS, key)
        assert entry.key == key and entry.value == {"i": i, "key": key, "nul": "a\x00b"}
    listed = (await store.list(NS, limit=100)).entries
    assert sorted(e.key for e in listed) == sorted(ODD_KEYS)
    assert [t.item for t in await store.tail(("acme", "s_1"), "log", 100)] == ODD_KEYS
    assert (await store.get_commit("odd " + INJECTION)).result is None
    # LIKE wildcards in a tag filter match only themselves.
    await put(store, NS, "other-tag", 1, tags=["oddXtag"])
    tagged = (await store.list(NS, tags=["odd_tag"], limit=100)).entries
    assert len(tagged) == len(ODD_KEYS)
    assert {e.key for e in (await store.list(NS, tags=["oddXtag"])).entries} == {"other-tag"}
    with pytest.raises(NotFound):
        await store.get(NS, "e")


async def test_namespace_metacharacters_never_widen_a_scan(store: MemoryStore) -> None:
    await put(store, ("acme", "a_b"), "k", 1)
    await put(store, ("acme", "axb"), "k", "unrelated")
    await put(store, ("acme", "a_b.c"), "k", "sibling")
    assert [e.namespace for e in (await store.list(("acme", "a_b"))).entries] == [("acme", "a_b")]
    counts = await store.forget(("acme", "a_b"))
    assert counts["keys"] == 1
    assert (await store.get(("acme", "axb"), "k")).value == "unrelated"
    assert (await store.get(("acme", "a_b.c"), "k")).value == "sibling"


async def test_search_text_is_never_query_syntax(store: MemoryStore) -> None:
    await put(store, NS, "k", "alpha beta gamma")
    before = await row_counts(store)
    for query in (INJECTION, 'alpha" OR "x', "alpha AND NOT beta", "alpha:*", "al*", "(alpha"):
        hits = await store.search(NS, query)
        assert [h.key for h in hits] in ([], ["k"]), query
    assert [h.key for h in await store.search(NS, 'alpha" OR "x')] == ["k"]
    assert await store.search(NS, "al*") == []
    assert await store.search(NS, "\x00\ud800 alpha") != []
    for query in ("naïve café", "東京 大阪", "١٢٣ ٤", "e\u0301e", "🧭", "x" * 10_000, "would"):
        assert await store.search(NS, query) == [], query
    assert await row_counts(store) == before
