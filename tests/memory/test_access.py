"""Contract: a scoped handle stays inside its grants and its tenant, and denials leak nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from memory import AccessDenied, Grants, InvalidInput, MemoryStore, NotFound, Provenance
from memory.policy import ScopedStore
from tests.memory.conftest import put, row_counts

MINE = ("acme", "session", "s-1")
READABLE = ("acme", "session", "s-2")
PRIVATE = ("acme", "user", "u-7")
FOREIGN = ("globex", "session", "s-1")
EMPTY_PRIVATE = ("acme", "user", "u-8")
EMPTY_FOREIGN = ("globex", "session", "s-9")

GRANTS = Grants(read=["acme/session/*"], write=["acme/session/s-1"])


@pytest.fixture
async def agent(store: MemoryStore) -> ScopedStore:
    for ns in (MINE, READABLE, PRIVATE, FOREIGN):
        async with store.commit(
            key=f"seed/{'/'.join(ns)}", provenance=Provenance(tenant=ns[0])
        ) as c:
            c.put(ns, "k", {"secret": "/".join(ns)})
            c.append(ns, "log", "item")
    return store.scoped("planner", GRANTS)


def _reads(ns: tuple[str, ...]) -> list[tuple[str, Callable[[ScopedStore], Awaitable[Any]]]]:
    return [
        ("get", lambda a: a.get(ns, "k")),
        ("get as_of", lambda a: a.get(ns, "k", as_of=1)),
        ("history", lambda a: a.history(ns, "k")),
        ("list", lambda a: a.list(ns)),
        ("tail", lambda a: a.tail(ns, "log")),
        ("read_stream", lambda a: a.read_stream(ns, "log")),
        ("search", lambda a: a.search(ns, "secret")),
        ("fork from", lambda a: a.fork(ns, ("acme", "session", "s-1", "copy"))),
    ]


def _writes(ns: tuple[str, ...]) -> list[tuple[str, Callable[[ScopedStore], Awaitable[Any]]]]:
    async def commit_put(a: ScopedStore) -> None:
        async with a.commit() as c:
            c.put(ns, "k", "overwritten")

    async def commit_delete(a: ScopedStore) -> None:
        async with a.commit() as c:
            c.delete(ns, "k")

    async def commit_append(a: ScopedStore) -> None:
        async with a.commit() as c:
            c.append(ns, "log", "injected")

    return [
        ("put", commit_put),
        ("delete", commit_delete),
        ("append", commit_append),
        ("forget", lambda a: a.forget(ns)),
        ("fork into", lambda a: a.fork(MINE, ns)),
    ]


async def _denial(agent: ScopedStore, call: Callable[[ScopedStore], Awaitable[Any]]) -> str:
    with pytest.raises(AccessDenied) as info:
        await call(agent)
    assert info.value.principal == "planner"
    return str(info.value)


@pytest.mark.parametrize(
    ("existing", "empty"), [(PRIVATE, EMPTY_PRIVATE), (FOREIGN, EMPTY_FOREIGN)]
)
async def test_reads_outside_grants_are_denied_alike_whether_data_exists(
    store: MemoryStore, agent: ScopedStore, existing: tuple[str, ...], empty: tuple[str, ...]
) -> None:
    before = await row_counts(store)
    for (name, with_data), (_, without_data) in zip(_reads(existing), _reads(empty), strict=True):
        shown = await _denial(agent, with_data)
        hidden = await _denial(agent, without_data)
        assert shown.replace("/".join(existing), "NS") == hidden.replace("/".join(empty), "NS"), (
            name
        )
        assert "secret" not in shown
    assert await row_counts(store) == before


@pytest.mark.parametrize("target", [PRIVATE, FOREIGN, READABLE, EMPTY_FOREIGN])
async def test_writes_outside_grants_are_denied_and_write_nothing(
    store: MemoryStore, agent: ScopedStore, target: tuple[str, ...]
) -> None:
    before = await row_counts(store)
    for name, call in _writes(target):
        message = await _denial(agent, call)
        assert "/".join(target) in message, name
    assert await row_counts(store) == before


async def test_a_denied_write_aborts_the_whole_commit(store: MemoryStore, agent: ScopedStore):
    before = await row_counts(store)
    with pytest.raises(AccessDenied):
        async with agent.commit(key="mixed") as c:
            c.put(MINE, "allowed", 1)
            c.put(PRIVATE, "k", "overwritten")
    assert await row_counts(store) == before


async def test_grants_allow_what_they_name(store: MemoryStore, agent: ScopedStore) -> None:
    async with agent.commit(key="agent-step", provenance=Provenance(tenant="globex")) as c:
        c.put(MINE, "note", "written by the agent")
        c.put((*MINE, "sub"), "note", "beneath a write grant")
        c.append(MINE, "log", "agent item")
    record = await agent.get_commit("agent-step")
    # The handle names its own tenant and principal, whatever the caller passed.
    assert record.provenance.tenant == "acme" and record.provenance.agent == "planner"
    assert (await agent.get(READABLE, "k")).value == {"secret": "acme/session/s-2"}
    assert (await agent.get(MINE, "note")).value == "written by the agent"
    hits = await agent.search(MINE, "agent")
    assert sorted((h.namespace, h.key) for h in hits) == [
        (MINE, "log"),
        (MINE, "note"),
    ]
    assert {e.key for e in (await agent.list(("acme", "session", "s-2"))).entries} == {"k"}
    assert [c.key for c in await agent.list_commits()] == [
        "seed/acme/session/s-1",
        "seed/acme/session/s-2",
        "seed/acme/user/u-7",
        "agent-step",
    ]
    fork = await agent.fork(READABLE, (*MINE, "branch"))
    assert fork.provenance.tenant == "acme"
    assert (await agent.get((*MINE, "branch"), "k")).value == {"secret": "acme/session/s-2"}
    await agent.forget((*MINE, "sub"))
    assert (await store.audit_log(limit=1))[0].principal == "planner"


async def test_another_tenants_commit_looks_missing(store: MemoryStore, agent: ScopedStore) -> None:
    with pytest.raises(NotFound) as foreign:
        await agent.get_commit("seed/globex/session/s-1")
    with pytest.raises(NotFound) as missing:
        await agent.get_commit("no-such-commit")
    assert str(foreign.value).replace("seed/globex/session/s-1", "K") == str(missing.value).replace(
        "no-such-commit", "K"
    )
    assert [c.provenance.tenant for c in await agent.list_commits()] == ["acme"] * 3


async def _commit_as_scoped(agent: ScopedStore, key: str) -> tuple[object, ...]:
    """Commit once, replay once, fork once under ``key``: everything the handle can observe."""
    seen: list[object] = []
    for _ in range(2):
        async with agent.commit(key=key) as c:
            if not c.replayed:
                c.put(MINE, f"answer-{key}", 2)
                c.result = {"mine": True}
        seen += [c.key, c.replayed, c.result, [(w.namespace, w.version) for w in c.writes]]
    record = await agent.get_commit(key)
    fork = await agent.fork(READABLE, (*MINE, key), key=f"{key}-fork")
    seen += [record.key, record.result, fork.key, fork.provenance.tenant]
    seen += [c.key for c in await agent.list_commits() if c.key.startswith(key)]
    return tuple(str(x).replace(key, "K") for x in seen)


async def test_another_tenants_commit_key_behaves_as_a_fresh_one(
    store: MemoryStore, agent: ScopedStore
) -> None:
    for key in ("shared-key", "shared-key-fork"):
        async with store.commit(key=key, provenance=Provenance(tenant="globex")) as c:
            c.put(FOREIGN, key, 1)
            c.result = {"globex": "confidential"}
    taken = await _commit_as_scoped(agent, "shared-key")
    fresh = await _commit_as_scoped(agent, "fresh-key")
    assert taken == fresh
    assert "confidential" not in str(taken)
    # globex's commits and values are untouched; acme's live under keys of its own.
    assert (await store.get_commit("shared-key")).result == {"globex": "confidential"}
    assert (await store.get(FOREIGN, "shared-key")).version == 1
    assert (await store.get(MINE, "answer-shared-key")).version == 1


async def test_the_audit_log_is_not_for_scoped_handles(agent: ScopedStore) -> None:
    with pytest.raises(AccessDenied):
        await agent.audit_log()


async def test_grants_must_name_one_literal_tenant(store: MemoryStore) -> None:
    with pytest.raises(InvalidInput, match="one tenant"):
        store.scoped("x", Grants(read=["acme/a"], write=["globex/a"]))
    with pytest.raises(InvalidInput, match="one tenant"):
        store.scoped("x", Grants())
    with pytest.raises(ValueError, match="literal tenant"):
        Grants(read=["*/session"])
    with pytest.raises(ValueError, match="grant segment"):
        Grants(read=["acme/%"])
    with pytest.raises(InvalidInput, match="principal"):
        store.scoped("bad\x00principal", GRANTS)


async def test_a_wildcard_grants_one_segment_and_what_is_beneath(store: MemoryStore) -> None:
    await put(store, ("acme", "session"), "top", 1)
    agent = store.scoped("reader", Grants(read=["acme/session/*"]))
    with pytest.raises(AccessDenied):
        await agent.get(("acme", "session"), "top")
    with pytest.raises(AccessDenied):
        await agent.list(("acme",))
    with pytest.raises(NotFound):
        await agent.get(("acme", "session", "any", "depth"), "k")
