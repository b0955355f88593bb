"""Every tool over stdio, on SQLite and PostgreSQL, through the MCP SDK's own client."""

from __future__ import annotations

from mcp.types import Implementation

from memory import MemoryStore
from tests.mcp.conftest import GRANTS, U7, WRITABLE, error, over_stdio, text


async def test_tools_are_listed_with_bounded_described_arguments(seeded_sqlite: str) -> None:
    async with over_stdio(seeded_sqlite, *GRANTS) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {
        "recall", "get", "history", "remember", "list_namespaces", "transcript", "steps"
    }  # fmt: skip
    limit = tools["recall"].input_schema["properties"]["limit"]
    assert (limit["minimum"], limit["maximum"]) == (1, 50)
    namespace = tools["get"].input_schema["properties"]["namespace"]
    assert "tenant first" in namespace["description"]
    assert tools["remember"].annotations.idempotent_hint is True
    assert tools["get"].annotations.read_only_hint is True


async def test_the_cairn_command_serves_them_too(seeded_sqlite: str) -> None:
    async with over_stdio(seeded_sqlite, *GRANTS, via=("cairn.cli", "mcp")) as client:
        result = await client.call_tool("get", {"namespace": "acme/user/u-7", "key": "color"})
    assert result.structured_content["version"] == 2


async def test_get_quotes_the_value_with_its_source_and_author(seeded: str) -> None:
    async with over_stdio(seeded, *GRANTS) as client:
        result = await client.call_tool("get", {"namespace": "acme/user/u-7", "key": "color"})
    assert not result.is_error
    assert result.structured_content["version"] == 2
    assert result.structured_content["written_by"]["agent"] == "planner"
    quoted = text(result)
    assert quoted.startswith("Everything inside")  # the preface: data, never instructions
    assert '<recalled source="acme/user/u-7" key="color" v="2" written_by="planner in wf-1">' in (
        quoted
    )


async def test_get_as_of_reads_the_version_visible_then(seeded: str) -> None:
    async with over_stdio(seeded, *GRANTS) as client:
        args = {"namespace": "acme/user/u-7", "key": "color", "as_of": 1}
        result = await client.call_tool("get", args)
    assert result.structured_content["version"] == 1
    assert result.structured_content["value"] == {"text": "green"}


async def test_history_lists_every_version_oldest_first(seeded: str) -> None:
    async with over_stdio(seeded, *GRANTS) as client:
        result = await client.call_tool("history", {"namespace": "acme/user/u-7", "key": "color"})
    facts = result.structured_content["facts"]
    assert [f["version"] for f in facts] == [1, 2]
    assert facts[0]["value"] == {"text": "green"}


async def test_recall_finds_only_readable_matches(seeded: str) -> None:
    async with over_stdio(seeded, *GRANTS) as client:
        result = await client.call_tool("recall", {"query": "blue"})
    found = {(h["namespace"], h["key"]) for h in result.structured_content["hits"]}
    # u-8's salary and globex's color also say "blue", but are outside the grants.
    assert ("acme/user/u-7", "color") in found
    assert ("acme/session/s-1", "transcript") in found
    assert all(ns.startswith(("acme/user/u-7", "acme/session", "acme/run")) for ns, _ in found)
    assert "<recalled" in text(result)


async def test_remember_writes_with_the_principal_and_client_as_author(seeded: str) -> None:
    async with over_stdio(seeded, *GRANTS, *WRITABLE, "--principal", "ops-bot") as client:
        args = {"namespace": "acme/user/u-7", "key": "food", "value": {"text": "pizza"}}
        result = await client.call_tool("remember", args)
    assert not result.is_error, text(result)
    assert result.structured_content["version"] == 1
    async with await MemoryStore.open(seeded) as store:
        entry = await store.get(U7, "food")
    assert entry.value == {"text": "pizza"}
    assert entry.provenance is not None
    assert entry.provenance.tenant == "acme"
    assert entry.provenance.agent == "ops-bot via pytest-client 1.0"


async def test_a_client_name_with_control_characters_is_recorded_without_them(
    seeded_sqlite: str,
) -> None:
    odd = Implementation(name="evil\nclient\x1b[31m", version="2")
    async with over_stdio(seeded_sqlite, *GRANTS, *WRITABLE, client=odd) as client:
        args = {"namespace": "acme/user/u-7", "key": "food", "value": 1}
        result = await client.call_tool("remember", args)
    assert not result.is_error, text(result)
    async with await MemoryStore.open(seeded_sqlite) as store:
        entry = await store.get(U7, "food")
    assert entry.provenance is not None
    assert entry.provenance.agent == "mcp via evilclient[31m 2"


async def test_a_retried_remember_applies_once_and_returns_the_first_result(seeded: str) -> None:
    args = {
        "namespace": "acme/user/u-7",
        "key": "food",
        "value": "pizza",
        "idempotency_key": "call-1",
    }
    async with over_stdio(seeded, *GRANTS, *WRITABLE) as client:
        first = await client.call_tool("remember", args)
        again = await client.call_tool("remember", {**args, "value": "changed on retry"})
    assert first.structured_content["replayed"] is False
    assert again.structured_content == {**first.structured_content, "replayed": True}
    async with await MemoryStore.open(seeded) as store:
        versions = await store.history(U7, "food")
    assert [v.value for v in versions] == ["pizza"]


async def test_remember_without_a_key_returns_the_key_it_generated(seeded_sqlite: str) -> None:
    args = {"namespace": "acme/user/u-7", "key": "food", "value": 1}
    async with over_stdio(seeded_sqlite, *GRANTS, *WRITABLE) as client:
        first = await client.call_tool("remember", args)
        key = first.structured_content["idempotency_key"]
        retry = await client.call_tool("remember", {**args, "idempotency_key": key})
        fresh = await client.call_tool("remember", args)
    assert retry.structured_content["replayed"] is True
    assert retry.structured_content["version"] == 1
    assert fresh.structured_content["version"] == 2


async def test_list_namespaces_shows_readable_namespaces_with_counts(seeded: str) -> None:
    async with over_stdio(seeded, *GRANTS) as client:
        result = await client.call_tool("list_namespaces", {})
    shown = {n["namespace"]: n["entries"] for n in result.structured_content["namespaces"]}
    assert shown == {"acme/run/wf-1": 1, "acme/user/u-7": 1}
    assert result.structured_content["truncated"] is False


async def test_transcript_returns_the_tail_oldest_first(seeded: str) -> None:
    async with over_stdio(seeded, *GRANTS) as client:
        args = {"namespace": "acme/session/s-1", "last": 2}
        result = await client.call_tool("transcript", args)
    turns = result.structured_content["turns"]
    assert [t["item"]["content"] for t in turns] == ["what is my color?", "blue"]
    assert [t["seq"] for t in turns] == [2, 3]


async def test_steps_shows_what_a_step_read_and_wrote_within_the_grants(seeded: str) -> None:
    async with over_stdio(seeded, *GRANTS) as client:
        result = await client.call_tool("steps", {"workflow_id": "wf-1"})
    assert not result.is_error, text(result)
    (step,) = [s for s in result.structured_content["steps"] if s["step"] == "write"]
    assert step["agent"] == "writer"
    assert [(r["key"], r["version"]) for r in step["reads"]] == [("color", 2)]
    # The step also wrote acme/hr/u-8, which this server may not read: left out, quote included.
    assert [w["key"] for w in step["writes"]] == ["output:write"]
    assert "acme/hr" not in text(result)
    assert '<recalled source="acme/run/wf-1" key="output:write"' in text(result)


async def test_steps_of_an_unknown_workflow_is_a_clear_error(seeded_sqlite: str) -> None:
    async with over_stdio(seeded_sqlite, *GRANTS) as client:
        result = await client.call_tool("steps", {"workflow_id": "wf-404"})
    assert "no commits by workflow 'wf-404' in tenant acme" in error(result)
