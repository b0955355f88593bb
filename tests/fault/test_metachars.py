"""Scenario 18: metacharacters, NUL bytes, over-long and odd Unicode strings, end to end.

The memory contract suite (tests/memory/test_bad_input.py) covers each string at the store.
Here they take the paths a deployment uses: through Temporal's payloads into the activities,
at the widest sizes every column allows at once, on both backends. Each either round-trips
exactly or is refused before anything is written, and the schema never changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, inspect

from activities.contracts import MemoryWrite
from memory import InvalidInput, MemoryStore, Provenance
from memory.namespace import MAX_DEPTH, MAX_KEY, MAX_SEGMENT, MAX_TAGS
from tests.fault.runs import activity_attempts, failure, spec, start_chain
from tests.memory.conftest import row_counts
from tests.memory.test_bad_input import INJECTION, ODD_KEYS
from tests.workflows.harness import TENANT, Team
from workflows.contracts import Write

pytestmark = pytest.mark.fault

ODD_VALUES: list[Any] = [
    "a\x00b",
    "\u202eevil.exe",
    "\U0010ffff\ufffe",
    "e\u0301 vs \u00e9",
    INJECTION,
    {"": "", "\x00": ["\x01", None, -0.0, 2**70, 1e308]},
]


def _schema(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        found = inspect(conn)
        return {
            table: (
                [c["name"] for c in found.get_columns(table)],
                sorted(str(i["name"]) for i in found.get_indexes(table)),
            )
            for table in found.get_table_names()
        }


async def schema(store: MemoryStore) -> dict[str, Any]:
    return await asyncio.to_thread(_schema, store.engine)


async def test_the_widest_names_every_column_allows_round_trip(store: MemoryStore) -> None:
    # Eight 64-character segments, a 512-character key of 4-byte characters, 16 long tags:
    # the largest index entries there can be (a btree entry has a size limit on PostgreSQL).
    ns = tuple(f"{i}{'n' * (MAX_SEGMENT - 1)}" for i in range(MAX_DEPTH))
    key = "😀" * MAX_KEY
    tags = [f"{i:02}{'t' * (MAX_SEGMENT - 2)}" for i in range(MAX_TAGS)]
    stream = "s" * MAX_SEGMENT
    before = await schema(store)
    async with store.commit(key="é" * 1000, provenance=Provenance(workflow_id="w" * 1000)) as c:
        c.put(ns, key, {"key": key}, tags=tags)
        c.append(ns, stream, key)
    entry = await store.get(ns, key)
    assert (entry.namespace, entry.key, entry.value) == (ns, key, {"key": key})
    assert list(entry.tags) == tags
    assert [e.key for e in (await store.list(ns[:1], tags=tags[-1:])).entries] == [key]
    assert [i.item for i in await store.tail(ns, stream)] == [key]
    assert [h.key for h in await store.search(ns[:2], "nothing-but " + "n" * 63)] == []
    assert (await store.get_commit("é" * 1000)).provenance.workflow_id == "w" * 1000
    # One past each width is refused with nothing written.
    counts = await row_counts(store)
    for bad in (
        lambda c: c.put((*ns, "x"), "k", 1),
        lambda c: c.put((*ns[:-1], "n" * (MAX_SEGMENT + 1)), "k", 1),
        lambda c: c.put(ns, key + "😀", 1),
        lambda c: c.put(ns, "k", 1, tags=[*tags, "one-more"]),
        lambda c: c.append(ns, stream + "s", 1),
    ):
        with pytest.raises(InvalidInput):
            async with store.commit() as c:
                c.put(ns, "first", "in the same commit")
                bad(c)
    assert await row_counts(store) == counts
    assert await schema(store) == before


async def test_odd_strings_cross_temporal_exactly_or_are_refused(team: Team) -> None:
    store = team.store
    writes = tuple(
        MemoryWrite(namespace=f"{TENANT}/odd", key=key, value={"key": key, "value": value})
        for key in ODD_KEYS
        for value in ODD_VALUES[:1]
    ) + tuple(
        MemoryWrite(namespace=f"{TENANT}/odd/{i}", key=INJECTION, value=value)
        for i, value in enumerate(ODD_VALUES)
    )
    refused = {
        "NUL key": MemoryWrite(namespace=f"{TENANT}/odd", key="a\x00b", value=1),
        "C1 key": MemoryWrite(namespace=f"{TENANT}/odd", key="a\u0085b", value=1),
        "long key": MemoryWrite(namespace=f"{TENANT}/odd", key="k" * (MAX_KEY + 1), value=1),
        "SQL segment": MemoryWrite(namespace=f"{TENANT}/{INJECTION}", key="k", value=1),
        "percent segment": MemoryWrite(namespace=f"{TENANT}/50%", key="k", value=1),
        "unicode tenant": MemoryWrite(namespace="ácme/odd", key="k", value=1),
        "tag": MemoryWrite(namespace=f"{TENANT}/odd", key="k", value=1, tags=("a b",)),
    }
    before_schema = await schema(store)
    async with team.worker():
        good = await start_chain(team.client, team.task_queue, spec(Write(writes=writes)))
        await good.result()
        counts = await row_counts(store)
        bad = {
            name: await start_chain(
                team.client, team.task_queue, spec(Write(writes=(writes[0], write)))
            )
            for name, write in refused.items()
        }
        errors = {name: await failure(handle) for name, handle in bad.items()}
        attempts = [await activity_attempts(handle) for handle in bad.values()]
    # Strings that cannot be encoded are refused where they are made (an object key would
    # otherwise reach memory changed: the payload converter replaces lone surrogates in keys).
    for value in ("\ud800", {"\udfff": 1}, {"a": ["\udc80"]}):
        with pytest.raises(ValidationError, match="invalid Unicode"):
            MemoryWrite(namespace=TENANT, key="k", value=value)
    # Tenant ids with metacharacters are refused by the contracts, before any client call.
    for tenant in (INJECTION, "", "a/b", "%", "ácme", "t" * 65):
        with pytest.raises(ValidationError, match="tenant"):
            spec(Write(writes=writes[:1]), tenant=tenant)

    for w in writes:
        entry = await store.get(tuple(w.namespace.split("/")), w.key)
        assert (entry.key, entry.value) == (w.key, w.value), w.key
    assert all(e.type == "InvalidInput" and e.non_retryable for e in errors.values()), errors
    assert attempts == [[1]] * len(refused)
    assert await row_counts(store) == counts
    assert await schema(store) == before_schema
