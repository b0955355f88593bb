"""`cairn run chain --user`: a chain acting for a user gets an id that carries the user."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from cairn.cli.runs import run_chain
from cairn.runtime import Settings
from tests.cli.conftest import Stack
from workflows.ids import workflow_subject
from workflows.teams import research_team


async def test_run_chain_for_a_user_gets_an_id_naming_the_user(stack: Stack) -> None:
    tenant = f"t:{uuid.uuid4().hex[:6]}"  # a ':' in the tenant is escaped in the id
    spec = research_team(tenant, "Whose chain?", model="scripted").model_dump_json()
    done, not_chain = await asyncio.gather(
        stack.run("run", "chain", "--input", spec, "--user", "u-7", "--json"),
        stack.run("run", "session", "--input", "{}", "--user", "u-7"),
    )
    data = done.json()
    assert data["workflow_id"].startswith(f"chain:{tenant.replace(':', '%3A')}:u-7:research-")
    assert workflow_subject(data["workflow_id"]) == (tenant, "user", "u-7")
    assert data["result"]["status"] == "completed"
    not_chain.fails_with("--user applies to chains")


@pytest.mark.parametrize(
    ("spec_user", "workflow_id", "error"),
    [
        (None, "r-1", "workflow id 'r-1' does not carry user 'u-7' of tenant 'acme'"),
        ("u-8", None, "--user 'u-7' differs from the chain's user 'u-8'"),
    ],
)
async def test_run_chain_refuses_a_user_it_cannot_carry_before_starting_anything(
    spec_user: str | None, workflow_id: str | None, error: str
) -> None:
    spec = research_team("acme", "Whose chain?", model="scripted")
    text = spec.model_copy(update={"user": spec_user}).model_dump_json()
    # No server at this address: the chain is refused before any connection is tried.
    settings = Settings(temporal={"target_host": "127.0.0.1:1"})
    with pytest.raises(ValueError, match=error):
        await run_chain(settings, text, workflow_id=workflow_id, console=None, user="u-7")
