"""`cairn run` and `cairn session ...` against the dev server, with the worker of `stack`."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from tests.cli.conftest import Stack, cairn, clean_env
from workflows.teams import research_team, support_agent


def team_file(directory: Path, tenant: str) -> Path:
    path = directory / f"team-{tenant}.json"
    path.write_text(
        research_team(tenant, "What survives a crash?", model="scripted").model_dump_json()
    )
    return path


async def test_run_chain_follows_progress_and_prints_each_step(stack: Stack) -> None:
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    workflow_id = f"team-{tenant}"
    done = await stack.run(
        "run", "chain", "-i", f"@{team_file(stack.cwd, tenant)}", "--id", workflow_id
    )
    assert done.code == 0, done.err
    assert f"started {workflow_id} (team research, tenant {tenant})" in done.out
    assert "steps done; running:" in done.out
    assert f"{workflow_id}: completed" in done.out
    rows = [line for line in done.out.splitlines() if "│ reviewer" in line]
    assert [("revise" in r, "approve" in r) for r in rows] == [(True, False), (False, True)]
    again = await stack.run(
        "run", "chain", "-i", f"@{team_file(stack.cwd, tenant)}", "--id", workflow_id
    )
    again.fails_with(f"workflow {workflow_id!r} already exists; pass another --id")


async def test_run_chain_json_is_the_result(stack: Stack) -> None:
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    spec = research_team(tenant, "Inline input?", model="scripted").model_dump_json()
    done = await stack.run("run", "chain", "--input", spec, "--json")
    data = done.json()
    assert data["workflow_id"].startswith("research-")
    assert data["result"]["status"] == "completed"
    assert data["result"]["final"]["verdict"] == "approve"
    assert len(data["result"]["steps"]) == 8


async def test_run_chain_reports_a_failed_workflow_in_one_line(stack: Stack) -> None:
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    # The stack's worker has no OpenAI key: the first step fails, non-retryably.
    spec = research_team(tenant, "Who answers?", model="openai:gpt-test")
    failed = await stack.run("run", "chain", "--input", spec.model_dump_json())
    failed.fails_with("the workflow failed: ", quiet=False)  # after its progress lines
    assert "OPENAI_API_KEY" in failed.err, failed.err


async def test_run_rejects_bad_input(stack: Stack, tmp_path: Path) -> None:
    not_json, not_spec, no_file, bad_id, not_json_arg = await asyncio.gather(
        stack.run("run", "chain", "--input", '{"name": "x"'),
        stack.run("run", "chain", "--input", '{"name": "x"}'),
        stack.run("run", "chain", "--input", f"@{tmp_path / 'missing.json'}"),
        stack.run(
            "run",
            "session",
            "--id",
            "other",
            "--input",
            json.dumps(
                {
                    "tenant": "acme",
                    "session": "s-1",
                    "agent": {"name": "a", "instructions": ".", "model": "scripted"},
                }
            ),
        ),
        stack.run("run", "HaikuWorkflow", "--input", "frogs"),
    )
    not_json.fails_with("invalid ChainSpec: input: Invalid JSON")
    not_spec.fails_with("invalid ChainSpec: tenant: Field required")
    no_file.fails_with("cannot read --input file")
    bad_id.fails_with("a session's workflow id is always 'session:acme:s-1'; omit --id")
    not_json_arg.fails_with("""--input must be JSON (Expecting value at column 1); a string""")


async def test_run_session_starts_it_and_shows_its_state(stack: Stack) -> None:
    session = f"s-{uuid.uuid4().hex[:6]}"
    inp = {
        "tenant": "acme",
        "session": session,
        "agent": support_agent(model="scripted").model_dump(mode="json"),
    }
    started = await stack.run("run", "session", "--input", json.dumps(inp), "--json")
    assert started.json()["workflow_id"] == f"session:acme:{session}"
    assert started.json()["state"]["turns"] == 0
    ended = await stack.run("session", "end", session, "--json")
    assert ended.json() == {
        "workflow_id": f"session:acme:{session}",
        "ended": True,
        "turns": 0,
        "reason": "ended",
    }


async def test_session_remembers_the_user_across_sessions(stack: Stack) -> None:
    first, second, user = (f"s-{uuid.uuid4().hex[:6]}" for _ in range(3))
    hello = ("session", "send", first, "Hi, my name is Ada", "--user", user, "--message-id", "m-1")
    said = await stack.run(*hello)
    assert said.code == 0, said.err
    assert "[scripted] Thanks, I'll remember that" in said.out
    resent, recalled = await asyncio.gather(
        stack.run(*hello, "--json"),
        stack.run("session", "send", second, "Do you know my name?", "--user", user),
    )
    assert resent.json()["turn"] == 1  # the first reply again, not a second turn
    assert "[scripted] Welcome back, Ada!" in recalled.out
    shown, as_json = await asyncio.gather(
        stack.run("session", "show", first),
        stack.run("session", "show", first, "--json"),
    )
    assert f"session acme/{first}: 1 turn" in shown.out
    assert "Hi, my name is Ada" in shown.out and "support" in shown.out
    state = as_json.json()
    assert state["state"]["turns"] == 1 and not state["state"]["closed"]
    assert [t["item"]["role"] for t in state["transcript"]] == ["user", "assistant"]
    ended = await asyncio.gather(*(stack.run("session", "end", s) for s in (first, second)))
    for session, result in zip((first, second), ended, strict=True):
        assert f"session acme/{session} ended after 1 turn (ended)" in result.out
    after = await stack.run("session", "show", first, "--json")
    assert after.json()["state"]["closed"]


async def test_session_errors_are_one_line(stack: Stack) -> None:
    missing, not_running = await asyncio.gather(
        stack.run("session", "show", "no-such-session"),
        stack.run("session", "end", "no-such-session", "--tenant", "other"),
    )
    missing.fails_with("no workflow 'session:acme:no-such-session' in Temporal namespace 'default'")
    not_running.fails_with("no workflow 'session:other:no-such-session'")
    bad_name = await stack.run("session", "send", "bad/name", "hello")
    bad_name.fails_with("invalid")


async def test_unreachable_server_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = clean_env(TEMPORAL_ADDRESS="127.0.0.1:1")
    results = await asyncio.gather(
        cairn("run", "chain", "-i", f"@{team_file(tmp_path, 'acme')}", env=env, cwd=tmp_path),
        cairn("session", "send", "s-1", "hello", env=env, cwd=tmp_path),
        cairn("session", "end", "s-1", env=env, cwd=tmp_path),
    )
    for result in results:
        result.fails_with("cannot reach Temporal at 127.0.0.1:1")
        assert "cairn dev" in result.err
