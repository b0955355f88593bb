"""What `CairnStore` adds to LangGraph's store: versions, compare-and-set, time travel, TTLs on
Cairn's clock, the label mapping, and writes exactly once inside a retried activity."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from cairn.integrations.langgraph import CairnStore, LabelError, decode_label, encode_label
from memory import ConflictError, MemoryStore
from tests.integrations.langgraph.retried_node import RetriedNode
from tests.memory.conftest import Clock


@pytest.fixture
async def clocked(sqlite_url: str) -> AsyncIterator[tuple[CairnStore, Clock]]:
    clock = Clock()
    memory = await MemoryStore.open(sqlite_url, clock=clock)
    store = CairnStore(memory, namespace=("acme", "lg"), ttl={"refresh_on_read": True})
    yield store, clock
    store.close()
    await memory.close()


async def test_items_carry_versions_and_a_stale_compare_and_set_fails(
    cairn_store: CairnStore,
) -> None:
    ns = (f"cas-{uuid.uuid4().hex[:6]}",)
    await cairn_store.aput(ns, "k", {"v": 1})
    first = await cairn_store.aget(ns, "k")
    assert first is not None and first.version == 1
    await cairn_store.aput(ns, "k", {"v": 2}, expected_version=1)
    with pytest.raises(ConflictError):
        await cairn_store.aput(ns, "k", {"v": 3}, expected_version=1)
    current = await cairn_store.aget(ns, "k")
    assert current is not None and (current.version, current.value) == (2, {"v": 2})
    with pytest.raises(ConflictError):
        await cairn_store.aput(ns, "new", {"v": 1}, expected_version=1)
    await cairn_store.aput(ns, "new", {"v": 1}, expected_version=0)


async def test_reads_as_of_a_commit_see_that_version(cairn_store: CairnStore) -> None:
    ns = (f"asof-{uuid.uuid4().hex[:6]}",)
    await cairn_store.aput(ns, "k", {"v": 1})
    first = await cairn_store.aget(ns, "k")
    assert first is not None
    await cairn_store.aput(ns, "k", {"v": 2})
    await cairn_store.adelete(ns, "k")
    old = await cairn_store.aget(ns, "k", as_of=first.commit_seq)
    assert old is not None and old.value == {"v": 1} and old.version == 1
    assert await cairn_store.aget(ns, "k") is None


async def test_an_item_expires_after_its_ttl_in_minutes(clocked: tuple[CairnStore, Clock]) -> None:
    store, clock = clocked
    await store.aput(("t",), "short", {"v": 1}, ttl=1)
    await store.aput(("t",), "forever", {"v": 1})
    clock.advance(59)
    assert await store.aget(("t",), "short", refresh_ttl=False) is not None
    clock.advance(2)
    assert await store.aget(("t",), "short") is None
    assert [i.key for i in await store.asearch(("t",))] == ["forever"]


async def test_a_read_refreshes_the_ttl_and_reports_the_new_version(
    clocked: tuple[CairnStore, Clock],
) -> None:
    store, clock = clocked
    await store.aput(("t",), "k", {"v": 1}, ttl=1)
    clock.advance(50)
    item = await store.aget(("t",), "k")  # refreshes: a new version, expiring 60 s from now
    assert item is not None and item.version == 2
    clock.advance(50)
    assert await store.aget(("t",), "k", refresh_ttl=False) is not None
    await store.aput(("t",), "k", {"v": 2}, ttl=1, expected_version=item.version)
    clock.advance(61)
    assert await store.aget(("t",), "k") is None


@pytest.mark.parametrize("label", ["plain-label_1:x", "user 1", "é/ü%*", "日本", "a.b", "-.-"])
def test_labels_round_trip_through_cairn_segments(label: str) -> None:
    segment = encode_label(label)
    assert decode_label(segment) == label
    assert all(c.isascii() and (c.isalnum() or c in "._:-") for c in segment)


async def test_labels_too_long_or_too_deep_are_refused_by_name(cairn_store: CairnStore) -> None:
    with pytest.raises(LabelError, match="encodes to 90 characters"):
        await cairn_store.aput(("é" * 15,), "k", {"v": 1})
    with pytest.raises(LabelError, match="the limit is 6"):
        await cairn_store.aput(tuple("abcdefg"), "k", {"v": 1})


# -- exactly once inside a retried activity -------------------------------------------------

_STORES: dict[str, CairnStore] = {}


@activity.defn
async def write_then_fail_once(run: str) -> int:
    store = _STORES[run]
    current = await store.aget(("runs", run), "count")
    n = 0 if current is None else current.value["n"]
    await store.aput(("runs", run), "count", {"n": n + 1})
    await store.aput(("runs", run), "note", {"attempt": activity.info().attempt})
    if activity.info().attempt == 1:
        raise RuntimeError("the node fails after its writes")
    return n + 1


async def test_a_retried_activity_writes_once(
    client: Client, task_queue: str, cairn_store: CairnStore
) -> None:
    run = uuid.uuid4().hex[:8]
    _STORES[run] = cairn_store
    async with Worker(
        client, task_queue=task_queue, workflows=[RetriedNode], activities=[write_then_fail_once]
    ):
        result = await client.execute_workflow(
            RetriedNode.run, run, id=f"node-{run}", task_queue=task_queue
        )
    count = await cairn_store.aget(("runs", run), "count")
    note = await cairn_store.aget(("runs", run), "note")
    assert count is not None and note is not None
    # The retry read n=1 and computed 2, but its commits replayed the first attempt's.
    assert (count.value, count.version) == ({"n": 1}, 1)
    assert (note.value, note.version) == ({"attempt": 1}, 1)
    assert result == 2


@activity.defn(name="write_then_fail_once")
def write_then_fail_once_sync(run: str) -> int:
    """The same node as a sync function: LangGraph's sync API, in a thread-pool activity."""
    store = _STORES[run]
    current = store.get(("runs", run), "count")
    n = 0 if current is None else current.value["n"]
    store.put(("runs", run), "count", {"n": n + 1})
    if activity.info().attempt == 1:
        raise RuntimeError("the node fails after its writes")
    return n + 1


async def test_a_retried_sync_activity_writes_once(
    client: Client, task_queue: str, cairn_store: CairnStore
) -> None:
    run = uuid.uuid4().hex[:8]
    _STORES[run] = cairn_store
    with ThreadPoolExecutor(2) as pool:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[RetriedNode],
            activities=[write_then_fail_once_sync],
            activity_executor=pool,
        ):
            result = await client.execute_workflow(
                RetriedNode.run, run, id=f"sync-node-{run}", task_queue=task_queue
            )
    count = await cairn_store.aget(("runs", run), "count")
    assert count is not None and (count.value, count.version) == ({"n": 1}, 1)
    assert result == 2
