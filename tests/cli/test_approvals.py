"""`cairn approve`: a chain waiting for a person is answered from the command line."""

from __future__ import annotations

import json
import re
import shlex
import uuid

from tests.cli.conftest import Stack, start


def approval_team(tenant: str) -> str:
    return json.dumps(
        {
            "name": "brief",
            "tenant": tenant,
            "input": "Draft the pricing note.",
            "agents": [{"name": "writer", "instructions": "Write it.", "model": "scripted"}],
            "nodes": [
                {"kind": "step", "agent": "writer"},
                {"kind": "approval", "name": "publish", "edits": "writer", "timeout": "PT10M"},
            ],
        }
    )


async def waiting_command(stack: Stack, tenant: str) -> tuple[object, list[str]]:
    """Start `cairn run chain` and return it with the approve command it prints."""
    workflow_id = f"brief-{tenant}"
    running = await start(
        "run",
        "chain",
        "--input",
        approval_team(tenant),
        "--id",
        workflow_id,
        env=stack.env,
        cwd=stack.cwd,
    )
    line = await running.wait_for_line("waiting for approval 'publish'")
    found = re.search(r"run `(cairn approve [^`]+)` \(or add --reject, --edit TEXT\)", line)
    assert found, line
    return running, shlex.split(found[1])[1:]


async def test_the_printed_command_approves_with_an_edit_and_the_summary_shows_it(
    stack: Stack,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    running, command = await waiting_command(stack, tenant)
    assert command == ["approve", f"brief-{tenant}", "publish"]
    decided = await stack.run(*command, "--edit", "Prices rise 5% in May.", "--by", "ada")
    assert decided.code == 0, decided.err
    assert f"approved 'publish' of brief-{tenant} with an edit" in decided.out
    code, out, err = await running.stop(0)  # signal 0: just wait for the exit
    assert code == 0, err
    assert f"brief-{tenant}: completed" in out
    assert "approval 'publish': approved by ada" in out
    assert "edited by ada: writer (v2): Prices rise 5% in May." in out


async def test_a_rejected_chain_exits_1_and_a_second_decision_is_refused(stack: Stack) -> None:
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    running, command = await waiting_command(stack, tenant)
    rejected = await stack.run(*command, "--reject", "--json")
    assert rejected.json()["approved"] is False
    code, out, _ = await running.stop(0)
    assert code == 1
    assert f"brief-{tenant}: rejected" in out and "approval 'publish': rejected by" in out
    again = await stack.run(*command)
    again.fails_with(f"brief-{tenant} is completed: nothing waits for a decision")


async def test_approving_a_missing_workflow_is_one_line(stack: Stack) -> None:
    missing = await stack.run("approve", "no-such-chain", "publish")
    missing.fails_with("no workflow 'no-such-chain' in Temporal namespace 'default'")
