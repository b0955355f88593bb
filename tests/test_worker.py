"""The production worker process: settings, health endpoints, and draining on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from cairn.devserver import free_port
from cairn.runtime import settings_from_env
from tests.workflows.harness import TENANT, agent, wait_until
from workflows.chain import ChainWorkflow
from workflows.contracts import ChainSpec, Step

ROOT = Path(__file__).parents[1]


def test_settings_errors_name_the_variable():
    with pytest.raises(ValueError, match="CAIRN_MAX_CONCURRENT_STEPS"):
        settings_from_env({"CAIRN_MAX_CONCURRENT_STEPS": "lots"})
    with pytest.raises(ValueError, match="CAIRN_HEALTH_PORT"):
        settings_from_env({"CAIRN_HEALTH_PORT": "70000"})


def test_settings_follow_temporal_env_config_and_hide_secrets():
    settings = settings_from_env(
        {
            "TEMPORAL_ADDRESS": "cloud.example:7233",
            "TEMPORAL_NAMESPACE": "prod.acct",
            "TEMPORAL_API_KEY": "tk-secret-123",
            "OPENAI_API_KEY": "sk-secret-456",
            "CAIRN_TASK_QUEUE": "agents",
        }
    )
    assert settings.temporal["target_host"] == "cloud.example:7233"
    assert settings.temporal["namespace"] == "prod.acct"
    assert settings.temporal["api_key"] == "tk-secret-123"
    assert settings.task_queue == "agents"
    shown = repr(settings) + str(settings)
    assert "tk-secret-123" not in shown and "sk-secret-456" not in shown


async def test_health_endpoints_and_drain_on_sigterm(
    temporal_env: WorkflowEnvironment, tmp_path: Path
):
    client: Client = temporal_env.client
    port, task_queue, gate = free_port(), f"drain-{uuid.uuid4().hex[:8]}", tmp_path / "gate"
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "CAIRN_TASK_QUEUE": task_queue,
        "CAIRN_MEMORY_URL": f"sqlite:///{tmp_path / 'memory.db'}",
        "CAIRN_HEALTH_PORT": str(port),
        "CAIRN_SHUTDOWN_GRACE": "30",
        "CAIRN_EXTENSIONS": "tests.workflows.crash_agents",
        "CAIRN_TEST_CALL_LOG": str(tmp_path / "calls.log"),
        "CAIRN_TEST_GATE": str(gate),
    }
    log = (tmp_path / "worker.log").open("w")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def status(path: str) -> int | None:
                try:
                    return (await http.get(path)).status_code
                except httpx.TransportError:
                    return None

            assert await wait_until(lambda: _is(status("/readyz"), 200), timeout=30)
            assert await status("/healthz") == 200
            assert await status("/nope") == 404

            spec = ChainSpec(
                name="drain",
                tenant=TENANT,
                agents=(agent("gated", "python:gated"),),
                nodes=(Step(agent="gated", task="slow"),),
            )
            handle = await client.start_workflow(
                ChainWorkflow.run, spec, id=f"drain-{uuid.uuid4().hex[:8]}", task_queue=task_queue
            )
            calls = tmp_path / "calls.log"
            await wait_until(lambda: _true(calls.exists()), timeout=30)

            proc.send_signal(signal.SIGTERM)
            # Draining: alive, no longer ready, and the running step is allowed to finish.
            assert await wait_until(lambda: _is(status("/readyz"), 503), timeout=10)
            assert proc.returncode is None
            gate.touch()
            assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert "call slow" in calls.read_text(), "the in-flight step finished before exit"
        history = await handle.fetch_history()
        completed = [
            e for e in history.events if e.HasField("activity_task_completed_event_attributes")
        ]
        assert len(completed) == 1
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()


async def _is(probe, expected: int) -> bool:
    return await probe == expected


async def _true(value: bool) -> bool:
    return value
