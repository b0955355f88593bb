"""Grants, tenant isolation and bad arguments: refused as MCP tool errors, nothing written."""

from __future__ import annotations

from memory import MemoryStore, NotFound, Provenance
from tests.mcp.conftest import GRANTS, WRITABLE, error, failing_server, over_stdio


async def test_outside_the_grants_the_error_is_the_same_whether_or_not_data_exists(
    seeded_sqlite: str,
) -> None:
    async with over_stdio(seeded_sqlite, *GRANTS) as client:
        exists = await client.call_tool("get", {"namespace": "acme/user/u-8", "key": "salary"})
        missing = await client.call_tool("get", {"namespace": "acme/user/u-9", "key": "salary"})
    assert error(exists) == error(missing).replace("u-9", "u-8")
    assert "may not read 'acme/user/u-8'" in error(exists)
    assert "blue secret" not in error(exists)


async def test_another_tenant_is_unreachable_by_every_read(seeded_sqlite: str) -> None:
    calls = {
        "get": {"namespace": "globex/user/u-7", "key": "color"},
        "history": {"namespace": "globex/user/u-7", "key": "color"},
        "recall": {"query": "blue", "prefix": "globex"},
        "list_namespaces": {"prefix": "globex"},
        "transcript": {"namespace": "globex/session/s-1"},
    }
    async with over_stdio(seeded_sqlite, *GRANTS) as client:
        for name, args in calls.items():
            message = error(await client.call_tool(name, args))
            assert "may not read 'globex" in message, (name, message)


async def test_namespaces_a_grant_may_not_read_never_take_a_listings_place(
    seeded_sqlite: str,
) -> None:
    hr = Provenance(tenant="acme", agent="hr")
    async with await MemoryStore.open(seeded_sqlite) as store, store.commit(provenance=hr) as c:
        for i in range(10):  # all listed before acme/team and acme/user, none readable
            c.put(("acme", "archive", f"n-{i}"), "k", i)
        c.put(("acme", "team", "u-7"), "k", 1)
    grants = ("--tenant", "acme", "--read", "acme/*/u-7")
    async with over_stdio(seeded_sqlite, *grants) as client:
        first = await client.call_tool("list_namespaces", {"limit": 1})
        both = await client.call_tool("list_namespaces", {"limit": 2})
    assert first.structured_content == {
        "namespaces": [{"namespace": "acme/team/u-7", "entries": 1}],
        "truncated": True,
    }
    listed = [n["namespace"] for n in both.structured_content["namespaces"]]
    assert listed == ["acme/team/u-7", "acme/user/u-7"]
    assert both.structured_content["truncated"] is False


async def test_a_write_outside_the_write_grants_is_refused_and_writes_nothing(
    seeded_sqlite: str,
) -> None:
    async with over_stdio(seeded_sqlite, *GRANTS, *WRITABLE) as client:
        readable_only = {"namespace": "acme/session/s-1", "key": "note", "value": "x"}
        message = error(await client.call_tool("remember", readable_only))
    assert "may not write 'acme/session/s-1'" in message
    async with await MemoryStore.open(seeded_sqlite) as store:
        try:
            await store.get(("acme", "session", "s-1"), "note")
            raise AssertionError("the refused write was applied")
        except NotFound:
            pass


async def test_a_server_without_write_grants_writes_nothing(seeded_sqlite: str) -> None:
    async with over_stdio(seeded_sqlite, "--tenant", "acme") as client:
        args = {"namespace": "acme/user/u-7", "key": "food", "value": "x"}
        assert "may not write" in error(await client.call_tool("remember", args))


async def test_bad_arguments_are_tool_errors_naming_the_argument(seeded_sqlite: str) -> None:
    async with over_stdio(seeded_sqlite, *GRANTS, *WRITABLE) as client:
        bad_segment = await client.call_tool("get", {"namespace": "acme/us er", "key": "k"})
        too_many = await client.call_tool("recall", {"query": "blue", "limit": 500})
        missing = await client.call_tool("get", {"namespace": "acme/user/u-7"})
        negative = await client.call_tool(
            "get", {"namespace": "acme/user/u-7", "key": "color", "as_of": -1}
        )
        conflict = await client.call_tool(
            "remember",
            {"namespace": "acme/user/u-7", "key": "color", "value": 1, "expected_version": 1},
        )
        absent = await client.call_tool("get", {"namespace": "acme/user/u-7", "key": "nope"})
    assert "invalid namespace segment 'us er'" in error(bad_segment)
    assert "limit" in error(too_many) and "less than or equal to 50" in error(too_many)
    assert "key" in error(missing) and "Field required" in error(missing)
    assert "as_of" in error(negative)
    assert "expected version 1, found version 2" in error(conflict)
    assert "not found" in error(absent)


async def test_a_grant_outside_the_tenant_stops_the_server_with_a_clear_error(
    seeded_sqlite: str,
) -> None:
    stderr = await failing_server(seeded_sqlite, "--tenant", "acme", "--read", "globex/user")
    assert "grant 'globex/user' is outside tenant 'acme'" in stderr


async def test_grants_come_from_the_environment(seeded_sqlite: str) -> None:
    env = (("CAIRN_MCP_TENANT", "acme"), ("CAIRN_MCP_READ", "acme/user/*,globex"))
    stderr = await failing_server(seeded_sqlite, env=env)
    assert "grant 'globex' is outside tenant 'acme'" in stderr
