"""`cairn memory ...`: the inspector on a store a real research run (via `cairn run`) wrote."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cairn import DEFAULT_MEMORY_URL
from cairn.runtime import Settings
from tests.cli.conftest import Stack, cairn, clean_env
from workflows.teams import research_team


@dataclass
class Research:
    tenant: str
    workflow_id: str
    result: dict[str, Any]

    @property
    def run_ns(self) -> str:
        return f"{self.tenant}/run/{self.workflow_id}"


@pytest.fixture(scope="module")
async def research(stack: Stack) -> Research:
    """One research team run through `cairn run chain --json`, in a tenant of its own."""
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    spec = stack.cwd / f"{tenant}.json"
    spec.write_text(
        research_team(tenant, "How do agents share memory?", model="scripted").model_dump_json()
    )
    workflow_id = f"research-{tenant}"
    done = await stack.run("run", "chain", "--input", f"@{spec}", "--id", workflow_id, "--json")
    assert done.code == 0, done.err
    data = done.json()
    assert data["workflow_id"] == workflow_id
    assert data["result"]["status"] == "completed"
    return Research(tenant, workflow_id, data["result"])


async def test_ls_lists_current_entries_as_table_and_json(stack: Stack, research: Research) -> None:
    table, as_json = await asyncio.gather(
        stack.run("memory", "ls", research.tenant),
        stack.run("memory", "ls", research.run_ns, "--json"),
    )
    assert table.code == 0, table.err
    assert "output:writer" in table.out and f"{research.tenant}/docs" in table.out
    entries = {e["key"]: e for e in as_json.json()}
    assert entries["output:writer"]["version"] == 2
    assert entries["output:writer"]["namespace"] == research.run_ns
    assert entries["output:writer"]["provenance"]["agent"] == "writer"
    assert set(entries) == {
        "output:planner",
        "output:research-1",
        "output:research-2",
        "output:research-3",
        "output:writer",
        "output:reviewer",
    }


async def test_get_reads_the_current_version_or_one_as_of_a_commit(
    stack: Stack, research: Research
) -> None:
    current = await stack.run("memory", "get", research.run_ns, "output:writer", "--json")
    assert current.json()["version"] == 2
    assert "Revised report" in current.json()["value"]["text"]
    history = await stack.run("memory", "history", research.run_ns, "output:writer", "--json")
    as_of = str(history.json()[0]["commit_seq"])
    old, shown = await asyncio.gather(
        stack.run("memory", "get", research.run_ns, "output:writer", "--json", "--as-of", as_of),
        stack.run("memory", "get", research.run_ns, "output:writer"),
    )
    assert old.json()["version"] == 1
    assert "Draft report" in old.json()["value"]["text"]
    assert "output:writer v2" in shown.out and "agent writer" in shown.out
    assert "[scripted] Revised report" in shown.out  # stored text is never read as markup


async def test_history_lists_every_version_with_provenance(
    stack: Stack, research: Research
) -> None:
    table, as_json = await asyncio.gather(
        stack.run("memory", "history", research.run_ns, "output:reviewer"),
        stack.run("memory", "history", research.run_ns, "output:reviewer", "--json"),
    )
    versions = as_json.json()
    assert [v["version"] for v in versions] == [1, 2]
    assert {v["provenance"]["workflow_id"] for v in versions} == {research.workflow_id}
    assert "2 versions" in table.out and "[scripted] Cite a source" in table.out


async def test_search_finds_documents_and_filters_by_tags(stack: Stack, research: Research) -> None:
    hits, tagged, none = await asyncio.gather(
        stack.run("memory", "search", research.tenant, "idempotency", "--json"),
        stack.run("memory", "search", research.tenant, "idempotency", "--tags", "demo", "--json"),
        stack.run("memory", "search", research.tenant, "idempotency", "--tags", "nope", "--json"),
    )
    assert "activity-retries" in [h["key"] for h in hits.json()]
    assert [h["key"] for h in tagged.json()] == ["activity-retries"]
    assert none.json() == []
    table = await stack.run("memory", "search", f"{research.tenant}/docs", "token budget")
    assert "context-windows" in table.out


async def test_steps_show_what_each_step_read_and_wrote(stack: Stack, research: Research) -> None:
    as_json, table = await asyncio.gather(
        stack.run("memory", "steps", research.workflow_id, "--json"),
        stack.run("memory", "steps", research.workflow_id),
    )
    steps = [s for s in as_json.json() if s["step"] is not None]
    assert [s["step"] for s in steps][:1] == ["planner"]
    assert len(steps) == 8
    researcher = next(s for s in steps if s["step"] == "research-1")
    assert researcher["agent"] == "researcher" and researcher["model"] == "scripted"
    read = {(r["key"], r["version"]) for r in researcher["reads"]}
    assert ("output:planner", 1) in read
    assert any(r["namespace"] == [research.tenant, "docs"] for r in researcher["reads"])
    assert [w["key"] for w in researcher["writes"]] == ["output:research-1"]
    assert researcher["tokens"]["input_tokens"] > 0
    assert isinstance(researcher["latency_ms"], int)
    assert "scripted (offline)" in table.out and "output:planner v1" in table.out


async def test_fork_copies_a_namespace_as_of_a_commit(stack: Stack, research: Research) -> None:
    history = await stack.run("memory", "history", research.run_ns, "output:writer", "--json")
    first_commit = history.json()[0]["commit_seq"]
    dst = f"{research.tenant}/fork/{uuid.uuid4().hex[:6]}"
    forked = await stack.run("memory", "fork", research.run_ns, dst, "--as-of", str(first_commit))
    assert forked.code == 0, forked.err
    assert f"into {dst}" in forked.out
    copy = await stack.run("memory", "get", dst, "output:writer", "--json")
    assert "Draft report" in copy.json()["value"]["text"]
    again = await stack.run("memory", "fork", research.run_ns, dst)
    again.fails_with("is not empty")


async def test_forget_needs_yes_then_deletes_everything_under_the_prefix(
    stack: Stack, research: Research
) -> None:
    dst = f"{research.tenant}/fork/{uuid.uuid4().hex[:6]}"
    assert (await stack.run("memory", "fork", research.run_ns, dst)).code == 0
    refused = await stack.run("memory", "forget", dst)
    refused.fails_with("without --yes")
    assert (await stack.run("memory", "get", dst, "output:writer")).code == 0
    done = await stack.run("memory", "forget", dst, "--yes", "--json")
    assert (
        done.json()["prefix"] == dst
        and sum(v for k, v in done.json().items() if k != "prefix") >= 6
    )
    gone = await stack.run("memory", "get", dst, "output:writer")
    gone.fails_with("not found")


async def test_migrate_creates_the_schema_once_even_run_concurrently(tmp_path: Path) -> None:
    env = clean_env(CAIRN_MEMORY_URL=f"sqlite:///{tmp_path / 'new' / 'memory.db'}")
    first, second = await asyncio.gather(
        cairn("memory", "migrate", "--json", env=env, cwd=tmp_path),
        cairn("memory", "migrate", "--json", env=env, cwd=tmp_path),
    )
    results = sorted([first.json(), second.json()], key=lambda r: r["before"])
    assert results[0]["before"] == 0
    assert results[1]["before"] == results[1]["schema_version"] == results[0]["schema_version"]
    again = await cairn("memory", "migrate", env=env, cwd=tmp_path)
    assert "already at version" in again.out


async def test_memory_errors_are_one_line(stack: Stack, research: Research, tmp_path: Path) -> None:
    missing, bad_ns, no_db, no_pg, debug = await asyncio.gather(
        stack.run("memory", "get", research.run_ns, "output:nobody"),
        stack.run("memory", "ls", "acme//x"),
        cairn("memory", "ls", "acme", env=clean_env(), cwd=tmp_path),
        stack.run("memory", "ls", "acme", CAIRN_MEMORY_URL="postgresql+psycopg://u@127.0.0.1:1/x"),
        stack.run("--debug", "memory", "get", research.run_ns, "output:nobody"),
    )
    missing.fails_with(f"not found: '{research.run_ns}' key 'output:nobody'")
    bad_ns.fails_with("invalid namespace segment ''")
    no_db.fails_with("no memory database at .cairn/memory.db")
    no_pg.fails_with("unavailable")
    assert not (tmp_path / ".cairn").exists()  # inspecting creates nothing
    assert debug.code == 1 and "Traceback" in debug.err and "NotFound" in debug.err
    unknown = await stack.run("memory", "steps", "no-such-workflow")
    unknown.fails_with("no commits by workflow 'no-such-workflow'")


def test_the_inspector_reads_the_memory_local_workers_write() -> None:
    assert Settings().memory_url == DEFAULT_MEMORY_URL
