"""`cairn dev` runs the user's own code (CAIRN_EXTENSIONS), and `cairn run` starts it by type."""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cairn.cli.runs import has_worker
from cairn.runtime import Settings, connect
from tests.cli.conftest import Running, Stack, cairn, clean_env, start

MYTEAM = """
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import AgentSpec
    from memory.context import ContextSpec
    from workflows.steps import run_step

ECHO = AgentSpec(
    name="echo", instructions="Repeat.", model="scripted", context=ContextSpec(transcript=None)
)


@workflow.defn
class EchoWorkflow:
    @workflow.run
    async def run(self, topic: str) -> str:
        return (await run_step(ECHO, "echo", topic, tenant="acme")).preview


workflows = [EchoWorkflow]
"""


@pytest.fixture
async def dev_with_myteam(
    stack: Stack, tmp_path: Path
) -> AsyncIterator[tuple[Running, dict[str, str]]]:
    """`cairn dev` beside the stack's server, loading a user package from its directory."""
    (tmp_path / "myteam").mkdir()
    (tmp_path / "myteam" / "__init__.py").write_text(MYTEAM)
    env = clean_env(
        TEMPORAL_ADDRESS=stack.address,
        CAIRN_TASK_QUEUE=f"dev-{uuid.uuid4().hex[:6]}",
        CAIRN_EXTENSIONS="myteam",
    )
    dev = await start("dev", env=env, cwd=tmp_path)
    await dev.wait_for_line("Ready.")
    yield dev, env
    code, _, err = await dev.stop(signal.SIGINT)
    assert code == 0, err


async def test_dev_loads_extensions_and_run_starts_their_workflow_by_type(
    dev_with_myteam: tuple[Running, dict[str, str]], tmp_path: Path
) -> None:
    dev, env = dev_with_myteam
    assert any(line.startswith("Extensions myteam") for line in dev.lines), dev.lines
    done = await cairn("run", "EchoWorkflow", "--input", '"frogs"', env=env, cwd=tmp_path)
    assert done.code == 0, done.err
    assert f"(EchoWorkflow on task queue {env['CAIRN_TASK_QUEUE']})" in done.out
    assert done.out.splitlines()[-1].startswith("[scripted] ") and "frogs" in done.out
    as_json = await cairn(
        "run",
        "EchoWorkflow",
        "-i",
        '"toads"',
        "--id",
        f"echo-{uuid.uuid4().hex[:6]}",
        "--json",
        env=env,
        cwd=tmp_path,
    )
    assert as_json.json()["result"].endswith(": toads")
    queued = await cairn(
        "run",
        "EchoWorkflow",
        "-i",
        '"newts"',
        "--task-queue",
        "nobody-polls",
        "--no-wait",
        "--json",
        env=env,
        cwd=tmp_path,
    )
    assert queued.code == 0 and set(queued.json()) == {"workflow_id", "run_id"}


async def test_run_reports_a_type_no_worker_registers(
    dev_with_myteam: tuple[Running, dict[str, str]], tmp_path: Path
) -> None:
    _, env = dev_with_myteam
    stuck = await cairn("run", "NoSuchWorkflow", "--input", "{}", env=env, cwd=tmp_path)
    stuck.fails_with("is stuck: its workflow task fails: ", quiet=False)
    assert "NoSuchWorkflow" in stuck.err and "temporal workflow terminate" in stuck.err


async def test_dev_without_a_worker_leaves_the_queue_to_yours(stack: Stack, tmp_path: Path) -> None:
    queue = f"dev-{uuid.uuid4().hex[:6]}"
    env = clean_env(TEMPORAL_ADDRESS=stack.address, CAIRN_TASK_QUEUE=queue)
    dev = await start("dev", "--no-worker", env=env, cwd=tmp_path)
    await dev.wait_for_line("Ready.")
    assert any(f"none (--no-worker): run yours on task queue {queue}" in x for x in dev.lines)
    client = await connect(Settings(temporal={"target_host": stack.address}))
    assert not await has_worker(client, queue)
    code, _, err = await dev.stop(signal.SIGINT)
    assert code == 0, err


async def test_an_extension_that_cannot_be_imported_is_named(stack: Stack, tmp_path: Path) -> None:
    env = clean_env(TEMPORAL_ADDRESS=stack.address, CAIRN_EXTENSIONS="no_such_team")
    failed = await cairn("dev", env=env, cwd=tmp_path)
    failed.fails_with("CAIRN_EXTENSIONS: cannot import 'no_such_team'", quiet=False)
