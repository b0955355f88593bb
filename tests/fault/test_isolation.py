"""Scenario 17: a tenant-A handle cannot reach tenant B through any API, activity or CLI path.

B's tenants are A's neighbours in every sense a careless implementation could confuse: string
prefixes and extensions of A's id, and the ids on both sides of the namespace separator in
byte order. Every probe reaches B's id through a field, a traversal, a wildcard or a LIKE
metacharacter; each must see zero rows, write nothing, and fail the same way whether or not
B's data exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from activities.contracts import MemoryWrite
from memory import (
    AccessDenied,
    Grants,
    InvalidInput,
    MemoryStore,
    MemoryStoreError,
    NotFound,
    Provenance,
)
from memory.policy import ScopedStore
from tests.cli.conftest import cairn, clean_env
from tests.fault.runs import activity_attempts, failure, spec, start_chain, step
from tests.memory.conftest import row_counts
from tests.workflows.harness import Team
from workflows.contracts import Write

pytestmark = pytest.mark.fault

A = "acme"
# Extensions and prefixes of A's id, and ids just below and above A's separator "/" in byte
# order ("-" and "." sort before it, "0" right after it).
NEIGHBOURS = ("acme-b", "acme.b", "acme0", "acm", "acmez", "ACME")
B = NEIGHBOURS[0]
SECRET = "zebracrossing"  # a word only B's data contains
Probe = Callable[[ScopedStore, tuple[str, ...]], Awaitable[Any]]


async def seed(store: MemoryStore) -> None:
    for tenant in (A, *NEIGHBOURS):
        ns = (tenant, "session", "s1")
        async with store.commit(key=f"seed:{tenant}", provenance=Provenance(tenant=tenant)) as c:
            c.put(ns, "k", {"text": f"{SECRET} of {tenant}" if tenant != A else "mine"})
            c.append(ns, "log", {"text": f"{SECRET} item" if tenant != A else "my item"})


async def _put(a: ScopedStore, ns: tuple[str, ...]) -> None:
    async with a.commit() as c:
        c.put(ns, "k", "overwritten")


async def _delete(a: ScopedStore, ns: tuple[str, ...]) -> None:
    async with a.commit() as c:
        c.delete(ns, "k")


async def _append(a: ScopedStore, ns: tuple[str, ...]) -> None:
    async with a.commit() as c:
        c.append(ns, "log", "injected")


PROBES: dict[str, Probe] = {
    "get": lambda a, ns: a.get(ns, "k"),
    "get as_of": lambda a, ns: a.get(ns, "k", as_of=1),
    "history": lambda a, ns: a.history(ns, "k"),
    "list": lambda a, ns: a.list(ns),
    "list tenant": lambda a, ns: a.list(ns[:1]),
    "tail": lambda a, ns: a.tail(ns, "log"),
    "read_stream": lambda a, ns: a.read_stream(ns, "log"),
    "search": lambda a, ns: a.search(ns, SECRET),
    "fork from": lambda a, ns: a.fork(ns, (A, "copy")),
    "fork into": lambda a, ns: a.fork((A, "session", "s1"), (*ns, "copy")),
    "forget": lambda a, ns: a.forget(ns),
    "put": _put,
    "delete": _delete,
    "append": _append,
}


async def _error(call: Awaitable[Any]) -> MemoryStoreError:
    with pytest.raises(MemoryStoreError) as info:
        await call
    return info.value


async def test_every_store_api_denies_every_neighbour_alike(store: MemoryStore) -> None:
    await seed(store)
    a = store.scoped("agent-a", Grants(read=(A,), write=(A,)))
    before = await row_counts(store)
    for tenant in NEIGHBOURS:
        existing, missing = (tenant, "session", "s1"), (tenant, "session", "s9")
        for name, probe in PROBES.items():
            shown = await _error(probe(a, existing))
            hidden = await _error(probe(a, missing))
            assert isinstance(shown, AccessDenied), (tenant, name, shown)
            assert str(shown).replace("s1", "S") == str(hidden).replace("s9", "S"), (tenant, name)
            assert SECRET not in str(shown)
        # B's commits look exactly like missing ones; listing commits never widens to B.
        foreign = await _error(a.get_commit(f"seed:{tenant}"))
        absent = await _error(a.get_commit(f"seed:{tenant}-none"))
        assert isinstance(foreign, NotFound)
        assert str(foreign).replace(f"seed:{tenant}", "K") == str(absent).replace(
            f"seed:{tenant}-none", "K"
        )
        assert [c.key for c in await a.list_commits(tenant=tenant)] == [f"seed:{A}"]
    assert isinstance(await _error(a.audit_log()), AccessDenied)
    assert await row_counts(store) == before

    # A's own reads, however wide, see A's rows only.
    entries = (await a.list((A,), limit=1000)).entries
    assert {e.namespace[0] for e in entries} == {A}
    assert await a.search((A,), SECRET) == []
    assert [e.value for e in entries] == [{"text": "mine"}]

    # Reusing B's commit key behaves as a fresh key does: B's result is neither replayed nor
    # hinted at, and A's writes are A's own.
    for key in (*(f"seed:{tenant}" for tenant in NEIGHBOURS), "seed:nobody"):
        async with a.commit(key=key) as c:
            c.put((A, "session", "s1"), key, "via a reused key")
        assert (c.key, c.replayed, c.result) == (key, False, None)
        assert (await a.get_commit(key)).result is None


async def test_traversal_wildcards_like_and_empty_tenants_reach_nothing(
    store: MemoryStore,
) -> None:
    await seed(store)
    a = store.scoped("agent-a", Grants(read=(A,), write=(A,)))
    # Namespaces that would escape A or widen a scan are not namespaces at all.
    for ns in [
        (A, "..", B),
        (f"{A}/../{B}",),
        (A, "session", "*"),
        (f"{A}%",),
        (A, "sess%"),
        ("",),
        (),
        (A, ""),
        (A, "session\x00", "s1"),
    ]:
        for name, probe in PROBES.items():
            if name == "list tenant":
                continue  # it lists ns[:1], a valid tenant for most of these
            error = await _error(probe(a, ns))  # type: ignore[arg-type]
            # (Only "fork into" () builds a valid namespace, ("copy",): another tenant.)
            assert isinstance(error, (InvalidInput, AccessDenied)), (ns, name, error)
    # LIKE metacharacters are ordinary characters: a valid id containing one matches itself.
    for ns in [(A, "s_ssion"), (A, "session", "s"), (A, "session", "s1_")]:
        assert (await a.list(ns)).entries == ()
        assert await a.search(ns, "mine") == []
    assert (await store.list(("acm_",))).entries == ()
    # Traversal in a key is just a key, stored and found in A's namespace only.
    sneaky = f"../../{B}/session/s1/k"
    async with a.commit(provenance=Provenance(tenant=B, agent="forged")) as c:
        c.put((A, "session", "s1"), sneaky, "still A's")
    assert (await store.get((A, "session", "s1"), sneaky)).value == "still A's"
    assert (await store.get((B, "session", "s1"), "k")).value == {"text": f"{SECRET} of {B}"}
    with pytest.raises(NotFound):
        await a.get((A, "session"), "../s1/k")
    # B's id in the provenance fields is overwritten by the handle's tenant.
    assert (await a.get_commit(c.key)).provenance.tenant == A
    # No tenant at all is never a wildcard.
    for grants in (Grants(), Grants(read=(f"{A}/x",), write=(f"{B}/x",))):
        with pytest.raises(InvalidInput, match="one tenant"):
            store.scoped("nobody", grants)
    for bad in ("", "*", "*/session", "%", f"{A}/%"):
        with pytest.raises(ValueError):
            Grants(read=(bad,))
    with pytest.raises(InvalidInput):
        async with store.commit(provenance=Provenance(tenant="")) as c:
            c.put((A, "x"), "k", 1)


async def test_activities_refuse_other_tenants_fast(team: Team) -> None:
    await seed(team.store)
    before = await row_counts(team.store)

    def write_to(ns: str) -> Write:
        return Write(writes=(MemoryWrite(namespace=ns, key="k", value="overwritten"),))

    chains = {
        # write_memory: B's namespace (with and without data there), traversal, empty tenant.
        "write B": spec(write_to(f"{B}/session/s1")),
        "write B empty": spec(write_to(f"{B}/session/s9")),
        "write traversal": spec(write_to(f"{A}/../{B}/session/s1")),
        "write no tenant": spec(write_to("")),
        "write rooted": spec(write_to("/session/s1")),
        # agent_step: reading and writing B from a Python agent's scoped memory.
        "read B": spec(step("snoop", f"read {B}/session/s1 k"), agents=("snoop",)),
        "read B empty": spec(step("snoop", f"read {B}/session/s9 k"), agents=("snoop",)),
        "output to B": spec(step("snoop", f"write {B}/session/s1 k"), agents=("snoop",)),
        # An agent spec granting itself B: grants naming two tenants are refused.
        "grant B": spec(
            step("snoop", f"read {A}/session/s1 k"),
            agents=("snoop",),
        ).model_copy(update={"agents": (_granting(f"{B}/session"),)}),
    }
    async with team.worker():
        handles = {
            name: await start_chain(team.client, team.task_queue, chain)
            for name, chain in chains.items()
        }
        errors = {name: await failure(h) for name, h in handles.items()}
        attempts = {name: await activity_attempts(h) for name, h in handles.items()}
    expected = {
        "write B": "AccessDenied",
        "write B empty": "AccessDenied",
        "write traversal": "InvalidInput",
        "write no tenant": "InvalidInput",
        "write rooted": "AccessDenied",
        "read B": "AccessDenied",
        "read B empty": "AccessDenied",
        "output to B": "AccessDenied",
        "grant B": "InvalidInput",
    }
    assert {n: e.type for n, e in errors.items()} == expected
    assert all(e.non_retryable for e in errors.values())
    assert all(a == [1] for a in attempts.values()), attempts  # failed fast, never retried
    assert SECRET not in " ".join(str(e) for e in errors.values())
    for name in ("write B", "read B"):
        assert str(errors[name]).replace("s1", "S") == str(errors[f"{name} empty"]).replace(
            "s9", "S"
        )
    assert await row_counts(team.store) == before


def _granting(pattern: str) -> Any:
    from tests.workflows.harness import agent

    return agent("snoop", "python:snoop", reads=("{run}", pattern))


async def test_cli_prefixes_never_widen_to_another_tenant(sqlite_url: str) -> None:
    store = await MemoryStore.open(sqlite_url)
    try:
        await seed(store)
    finally:
        await store.close()
    env = clean_env(CAIRN_MEMORY_URL=sqlite_url)

    async def run(*args: str) -> Any:
        return await cairn("memory", *args, env=env)

    # (Each command is a process; a few stand for each kind of probe, the store tests do more.)
    listing, searched, *refused = await asyncio.gather(
        run("ls", "/acme/", "--json"),
        run("search", A, SECRET, "--json"),
        *(run("ls", prefix, "--json") for prefix in (f"{A}/../{B}", f"{A}%", "")),
        run("get", f"{A}/session/s1", f"../../{B}/session/s1/k"),
        run("get", f"{B}/session/s9", "k"),
        run("forget", f"{A}/../{B}", "--yes"),
    )
    assert [e["namespace"] for e in listing.json()] == [f"{A}/session/s1"]
    assert searched.json() == []
    *bad_prefixes, traversal, missing_ns, forget = refused
    for result in (*bad_prefixes, forget):
        result.fails_with("invalid namespace segment")
    for result in (traversal, missing_ns):
        result.fails_with("not found")
        assert SECRET not in result.err
