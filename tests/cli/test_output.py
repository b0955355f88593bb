"""What the commands print on a new user's paths: traces, clean JSON, hints that fix things."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from cairn.devserver import temporal_binary
from tests.cli.conftest import Stack, cairn, clean_env
from workflows.teams import research_team


async def test_run_chain_with_otel_set_starts_the_workflow_in_its_own_trace(stack: Stack) -> None:
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    workflow_id = f"traced-{tenant}"
    spec = research_team(tenant, "Traced?", model="scripted").model_dump_json()
    done = await stack.run(
        "run", "chain", "--input", spec, "--id", workflow_id, OTEL_TRACES_EXPORTER="console"
    )
    assert done.code == 0, done.err
    printed = set(re.findall(r'"trace_id": "0x([0-9a-f]{32})"', done.out))
    assert printed, done.out
    handle = (await _client(stack)).get_workflow_handle(workflow_id)
    started = await anext(aiter(handle.fetch_history_events()))
    header = started.workflow_execution_started_event_attributes.header.fields["_tracer-data"]
    traceparent = json.loads(header.data)["traceparent"]
    assert traceparent.split("-")[1] in printed  # the workflow continues the command's trace


async def test_json_output_is_only_json_even_when_temporal_warns(stack: Stack) -> None:
    big = stack.cwd / f"big-{uuid.uuid4().hex[:6]}.json"
    big.write_text(json.dumps("x" * 600_000))  # over the SDK's 512 KiB payload warning
    done = await stack.run(
        "run",
        "Unregistered",
        "--input",
        f"@{big}",
        "--task-queue",
        f"nobody-{uuid.uuid4().hex[:6]}",
        "--no-wait",
        "--json",
    )
    assert done.code == 0, done.err
    assert set(done.json()) == {"workflow_id", "run_id"}
    assert "payload" in done.err.lower(), done.err  # the warning went to stderr


async def test_memory_ls_without_a_prefix_lists_tenants_and_steps_suggests_a_session_id(
    stack: Stack,
) -> None:
    session = f"s-{uuid.uuid4().hex[:6]}"
    assert (await stack.run("session", "send", session, "hello")).code == 0
    tenants = await stack.run("memory", "ls", "--json")
    assert "acme" in {row["tenant"] for row in tenants.json()}
    table = await stack.run("memory", "ls")
    assert "(list one with: cairn memory ls <tenant>)" in " ".join(table.out.split())
    steps = await stack.run("memory", "steps", session)
    steps.fails_with(f"try session:acme:{session}")


async def test_a_server_without_the_search_attributes_names_the_command_that_fixes_it(
    tmp_path: Path,
) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), ui=False
    )
    try:
        address = env.client.service_client.config.target_host
        spec = research_team("acme", "Registered?", model="scripted").model_dump_json()
        done = await cairn(
            "run", "chain", "--input", spec, env=clean_env(TEMPORAL_ADDRESS=address), cwd=tmp_path
        )
        assert done.code == 1 and "Traceback" not in done.err
        assert "cairn: the Temporal server lacks Cairn's search attributes" in done.err
        assert "temporal operator search-attribute create --namespace default" in done.err
        assert "--name CairnTenant --type Keyword" in done.err
    finally:
        await env.shutdown()


async def _client(stack: Stack):  # type: ignore[no-untyped-def]
    from cairn.runtime import Settings, connect

    return await connect(Settings(temporal={"target_host": stack.address}))
