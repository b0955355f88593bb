"""A pytest conformance suite for any LangGraph ``BaseStore``: LangGraph's documented semantics.

Subclass `StoreConformance` in a test module and give it a ``store_under_test`` fixture that
yields a fresh store; pytest collects every test below for it::

    class TestMyStore(StoreConformance):
        @pytest.fixture
        async def store_under_test(self):
            async with MyStore.open(...) as store:
                yield store

Every test writes under a root label of its own, so a store shared between tests (one
database) still works. The suite passes against LangGraph's ``InMemoryStore``,
``AsyncSqliteStore`` and ``AsyncPostgresStore``: it checks what LangGraph promises, not what
one implementation happens to do (result order of a plain search, for instance, differs
between LangGraph's own stores and is not checked). Needs pytest-asyncio (auto mode).
"""

# ruff: noqa: D102  (each test's name is its documentation)

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import pytest
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchOp,
)

__all__ = ["StoreConformance"]


def _root() -> str:
    return f"conf-{uuid.uuid4().hex[:12]}"


def _keys(items: list[Any]) -> set[tuple[tuple[str, ...], str]]:
    return {(tuple(i.namespace), i.key) for i in items}


class StoreConformance:
    """LangGraph ``BaseStore`` semantics; subclasses provide the ``store_under_test`` fixture."""

    # -- put / get / delete ---------------------------------------------------------------------

    async def test_put_then_get_round_trips_the_value(self, store_under_test: BaseStore) -> None:
        ns = (_root(), "docs")
        value = {"text": "héllo", "n": 3, "nested": {"tags": ["a", "b"], "ok": True}, "none": None}
        await store_under_test.aput(ns, "k1", value)
        item = await store_under_test.aget(ns, "k1")
        assert isinstance(item, Item)
        assert (item.namespace, item.key, item.value) == (ns, "k1", value)
        assert isinstance(item.created_at, datetime) and isinstance(item.updated_at, datetime)

    async def test_get_of_a_missing_key_is_none(self, store_under_test: BaseStore) -> None:
        assert await store_under_test.aget((_root(), "docs"), "nope") is None

    async def test_put_replaces_the_whole_value(self, store_under_test: BaseStore) -> None:
        ns = (_root(),)
        await store_under_test.aput(ns, "k", {"a": 1, "b": 2})
        first = await store_under_test.aget(ns, "k")
        await store_under_test.aput(ns, "k", {"c": 3})
        item = await store_under_test.aget(ns, "k")
        assert item is not None and first is not None
        assert item.value == {"c": 3}
        assert item.updated_at >= first.updated_at

    async def test_delete_removes_the_item(self, store_under_test: BaseStore) -> None:
        ns = (_root(),)
        await store_under_test.aput(ns, "k", {"a": 1})
        await store_under_test.adelete(ns, "k")
        assert await store_under_test.aget(ns, "k") is None
        assert await store_under_test.asearch(ns) == []

    async def test_delete_of_a_missing_key_is_a_no_op(self, store_under_test: BaseStore) -> None:
        ns = (_root(),)
        await store_under_test.adelete(ns, "never-written")
        assert await store_under_test.aget(ns, "never-written") is None

    async def test_the_same_key_in_two_namespaces_is_two_items(
        self, store_under_test: BaseStore
    ) -> None:
        root = _root()
        await store_under_test.aput((root, "a"), "k", {"v": "a"})
        await store_under_test.aput((root, "b"), "k", {"v": "b"})
        a, b = (
            await store_under_test.aget((root, "a"), "k"),
            await store_under_test.aget((root, "b"), "k"),
        )
        assert a is not None and b is not None
        assert (a.value, b.value) == ({"v": "a"}, {"v": "b"})

    async def test_labels_with_spaces_slashes_and_unicode_round_trip(
        self, store_under_test: BaseStore
    ) -> None:
        ns = (_root(), "user 1", "a/b", "50%", "naïve-日本")
        await store_under_test.aput(ns, "key with spaces/and:colons", {"x": 1})
        item = await store_under_test.aget(ns, "key with spaces/and:colons")
        assert item is not None and item.namespace == ns
        found = await store_under_test.alist_namespaces(prefix=ns[:1])
        assert found == [ns]

    async def test_put_with_index_false_is_still_readable(
        self, store_under_test: BaseStore
    ) -> None:
        ns = (_root(),)
        await store_under_test.aput(ns, "k", {"text": "x"}, index=False)
        item = await store_under_test.aget(ns, "k")
        assert item is not None and item.value == {"text": "x"}
        assert _keys(await store_under_test.asearch(ns)) == {(ns, "k")}

    @pytest.mark.parametrize(
        "namespace",
        [(), ("a.b",), ("ok", ""), ("langgraph", "x")],
        ids=["empty", "dot", "blank", "reserved"],
    )
    async def test_invalid_namespaces_are_rejected(
        self, store_under_test: BaseStore, namespace: tuple[str, ...]
    ) -> None:
        with pytest.raises(InvalidNamespaceError):
            await store_under_test.aput(namespace, "k", {"a": 1})

    # -- search ---------------------------------------------------------------------------------

    async def test_search_covers_exactly_the_namespace_prefix(
        self, store_under_test: BaseStore
    ) -> None:
        root = _root()
        await store_under_test.aput((root, "users", "u1"), "k", {"n": 1})
        await store_under_test.aput((root, "users", "u2", "deep"), "k", {"n": 2})
        await store_under_test.aput((root, "users2"), "k", {"n": 3})
        await store_under_test.aput((root, "users"), "top", {"n": 4})
        found = _keys(await store_under_test.asearch((root, "users")))
        assert found == {
            ((root, "users", "u1"), "k"),
            ((root, "users", "u2", "deep"), "k"),
            ((root, "users"), "top"),
        }

    async def test_search_filters_by_equality_of_every_field(
        self, store_under_test: BaseStore
    ) -> None:
        # Nested-dict filters are not checked: LangGraph's SQLite store rejects them.
        ns = (_root(),)
        await store_under_test.aput(ns, "a", {"kind": "fact", "lang": "en", "n": 1})
        await store_under_test.aput(ns, "b", {"kind": "fact", "lang": "fr", "n": 2})
        await store_under_test.aput(ns, "c", {"kind": "plan", "lang": "en"})
        facts = await store_under_test.asearch(ns, filter={"kind": "fact"})
        assert {i.key for i in facts} == {"a", "b"}
        english = await store_under_test.asearch(ns, filter={"kind": "fact", "lang": "en"})
        assert [i.key for i in english] == ["a"]
        assert await store_under_test.asearch(ns, filter={"kind": "none"}) == []

    async def test_search_filter_comparison_operators(self, store_under_test: BaseStore) -> None:
        ns = (_root(),)
        for n in range(1, 5):
            await store_under_test.aput(ns, f"k{n}", {"score": n})
        expected = {
            "$gt": {"k3", "k4"},
            "$gte": {"k2", "k3", "k4"},
            "$lt": {"k1"},
            "$lte": {"k1", "k2"},
            "$ne": {"k1", "k3", "k4"},
            "$eq": {"k2"},
        }
        for op, keys in expected.items():
            found = await store_under_test.asearch(ns, filter={"score": {op: 2}})
            assert {i.key for i in found} == keys, op

    async def test_search_pages_with_limit_and_offset(self, store_under_test: BaseStore) -> None:
        ns = (_root(),)
        for n in range(25):
            await store_under_test.aput(ns, f"k{n:02d}", {"n": n})
        default = await store_under_test.asearch(ns)
        assert len(default) == 10
        pages = [await store_under_test.asearch(ns, limit=7, offset=o) for o in range(0, 28, 7)]
        assert [len(p) for p in pages] == [7, 7, 7, 4]
        keys = [i.key for p in pages for i in p]
        assert sorted(keys) == [f"k{n:02d}" for n in range(25)]
        assert await store_under_test.asearch(ns, offset=25) == []

    async def test_search_with_a_query_returns_items_under_the_prefix(
        self, store_under_test: BaseStore
    ) -> None:
        root = _root()
        await store_under_test.aput((root, "in"), "a", {"text": "the deploy plan for friday"})
        await store_under_test.aput((root, "in"), "b", {"text": "lunch menu"})
        await store_under_test.aput((root, "out"), "c", {"text": "the deploy plan for friday"})
        found = await store_under_test.asearch((root, "in"), query="deploy plan", limit=5)
        assert {i.namespace for i in found} <= {(root, "in")}
        assert len(found) <= 5

    # -- list_namespaces ------------------------------------------------------------------------

    async def _tree(self, store: BaseStore) -> str:
        root = _root()
        for ns in [("a", "x", "1"), ("a", "x", "2"), ("a", "y"), ("b", "x"), ("b", "z", "x")]:
            await store.aput((root, *ns), "k", {"v": 1})
        return root

    async def test_list_namespaces_by_prefix(self, store_under_test: BaseStore) -> None:
        root = await self._tree(store_under_test)
        found = await store_under_test.alist_namespaces(prefix=(root, "a"))
        assert found == [(root, "a", "x", "1"), (root, "a", "x", "2"), (root, "a", "y")]

    async def test_list_namespaces_by_suffix_and_prefix(self, store_under_test: BaseStore) -> None:
        root = await self._tree(store_under_test)
        found = await store_under_test.alist_namespaces(prefix=(root,), suffix=("x",))
        assert found == [(root, "b", "x"), (root, "b", "z", "x")]

    async def test_list_namespaces_wildcards_match_one_label(
        self, store_under_test: BaseStore
    ) -> None:
        root = await self._tree(store_under_test)
        found = await store_under_test.alist_namespaces(prefix=(root, "*", "x"))
        assert found == [(root, "a", "x", "1"), (root, "a", "x", "2"), (root, "b", "x")]

    async def test_list_namespaces_truncates_to_max_depth(
        self, store_under_test: BaseStore
    ) -> None:
        root = await self._tree(store_under_test)
        found = await store_under_test.alist_namespaces(prefix=(root,), max_depth=3)
        assert found == [(root, "a", "x"), (root, "a", "y"), (root, "b", "x"), (root, "b", "z")]

    async def test_list_namespaces_pages(self, store_under_test: BaseStore) -> None:
        root = await self._tree(store_under_test)
        everything = await store_under_test.alist_namespaces(prefix=(root,))
        assert len(everything) == 5
        first = await store_under_test.alist_namespaces(prefix=(root,), limit=2)
        rest = await store_under_test.alist_namespaces(prefix=(root,), limit=10, offset=2)
        assert first + rest == everything

    # -- batch, sync API, concurrency -----------------------------------------------------------

    async def test_batch_returns_one_result_per_op_in_order(
        self, store_under_test: BaseStore
    ) -> None:
        root = _root()
        await store_under_test.aput((root,), "old", {"v": 0})
        results = await store_under_test.abatch(
            [
                PutOp((root,), "new", {"v": 1}),
                GetOp((root,), "old"),
                SearchOp((root,), None, limit=10),
                ListNamespacesOp(match_conditions=(MatchCondition("prefix", (root,)),)),
            ]
        )
        assert len(results) == 4 and results[0] is None
        assert isinstance(results[1], Item) and results[1].value == {"v": 0}
        assert isinstance(results[2], list) and ((root,), "old") in _keys(results[2])
        assert results[3] == [(root,)]
        new = await store_under_test.aget((root,), "new")
        assert new is not None and new.value == {"v": 1}

    async def test_sync_methods_work_from_a_thread(self, store_under_test: BaseStore) -> None:
        ns = (_root(),)

        def sync() -> Item | None:
            store_under_test.put(ns, "k", {"v": "sync"})
            return store_under_test.get(ns, "k")

        item = await asyncio.to_thread(sync)
        assert item is not None and item.value == {"v": "sync"}
        assert [i.key for i in await asyncio.to_thread(store_under_test.search, ns)] == ["k"]

    async def test_concurrent_writers_to_distinct_keys_all_land(
        self, store_under_test: BaseStore
    ) -> None:
        ns = (_root(), "shared")
        await asyncio.gather(*(store_under_test.aput(ns, f"k{n}", {"n": n}) for n in range(20)))
        found = await store_under_test.asearch(ns, limit=100)
        assert {i.key: i.value["n"] for i in found} == {f"k{n}": n for n in range(20)}

    async def test_concurrent_writers_to_one_key_leave_one_whole_value(
        self, store_under_test: BaseStore
    ) -> None:
        ns = (_root(), "shared")
        values = [{"writer": n, "payload": [n] * 5} for n in range(10)]
        await asyncio.gather(*(store_under_test.aput(ns, "k", v) for v in values))
        item = await store_under_test.aget(ns, "k")
        assert item is not None and item.value in values
        assert len(await store_under_test.asearch(ns, limit=100)) == 1

    async def test_concurrent_sync_writers_from_threads(self, store_under_test: BaseStore) -> None:
        ns = (_root(), "threads")
        await asyncio.gather(
            *(asyncio.to_thread(store_under_test.put, ns, f"k{n}", {"n": n}) for n in range(8))
        )
        found = await store_under_test.asearch(ns, limit=100)
        assert {i.key for i in found} == {f"k{n}" for n in range(8)}
