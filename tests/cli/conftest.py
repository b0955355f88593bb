"""Fixtures for the `cairn` command tests: the real command in a subprocess, a real worker here.

Every command runs as ``python -m cli`` against the session's Temporal dev server and a SQLite
store in a temporary directory; a worker for the same task queue and store runs in this test
process, so `cairn run` and `cairn session send` complete.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from cairn.runtime import Settings, build_worker, connect
from memory import MemoryStore

# Variables of the developer's shell that would change what the commands do.
_SCRUBBED = ("TEMPORAL_", "CAIRN_", "OPENAI_", "ANTHROPIC_", "OTEL_", "FORCE_COLOR", "COLUMNS")


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without Temporal, Cairn and provider settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED)}
    env.update(extra)
    return env


def answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Result:
    """A finished command."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """Stdout as JSON: it must hold nothing else."""
        return json.loads(self.out)

    def fails_with(self, fragment: str, code: int = 1, *, quiet: bool = True) -> None:
        """One line on stderr naming the problem, no traceback (with ``quiet``, no stdout)."""
        assert self.code == code, (self.code, self.out, self.err)
        assert self.out == "" or not quiet, self.out
        assert self.err.startswith("cairn: ") and self.err.count("\n") == 1, self.err
        assert fragment in self.err, self.err
        assert "Traceback" not in self.err


async def cairn(
    *args: str, env: Mapping[str, str], cwd: Path | None = None, timeout: float = 120
) -> Result:
    """Run ``cairn ARGS`` (as ``python -m cli``) to completion."""
    proc = (await start(*args, env=env, cwd=cwd)).proc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@dataclass
class Running:
    """A long-running command (dev server, codec server, worker) and what it printed so far."""

    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)

    async def wait_for_line(self, fragment: str, timeout: float = 90) -> str:
        """The first stdout line containing ``fragment``; fails when the process ends first."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if fragment in line:
                return line
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no {fragment!r} within {timeout}s; got {self.lines}")
            raw = await asyncio.wait_for(self.proc.stdout.readline(), remaining)
            if not raw:
                err = await self.stderr()
                pytest.fail(f"exited ({self.proc.returncode}) before {fragment!r}: {err}")
            line = raw.decode()
            self.lines.append(line)
            if fragment in line:
                return line

    async def stderr(self) -> str:
        assert self.proc.stderr is not None
        await self.proc.wait()
        return (await self.proc.stderr.read()).decode()

    async def stop(self, sig: int, timeout: float = 60) -> tuple[int, str, str]:
        """Send ``sig`` and wait for the exit: (exit code, rest of stdout, stderr)."""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.proc.send_signal(sig)
        out, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        assert self.proc.returncode is not None
        return self.proc.returncode, "".join(self.lines) + out.decode(), err.decode()


async def start(*args: str, env: Mapping[str, str], cwd: Path | None = None) -> Running:
    """Start ``cairn ARGS`` in the background."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cairn.cli",
        *args,
        env=dict(env),
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return Running(proc)


@dataclass
class Stack:
    """The server, store and task queue the commands of a test use."""

    address: str
    memory_url: str
    task_queue: str
    cwd: Path

    @property
    def env(self) -> dict[str, str]:
        return clean_env(
            TEMPORAL_ADDRESS=self.address,
            CAIRN_MEMORY_URL=self.memory_url,
            CAIRN_TASK_QUEUE=self.task_queue,
        )

    async def run(self, *args: str, **env: str) -> Result:
        return await cairn(*args, env={**self.env, **env}, cwd=self.cwd)


@pytest.fixture(scope="session")
async def stack(
    temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """The session's dev server, a SQLite store and a worker on a task queue of its own."""
    cwd = tmp_path_factory.mktemp("cli")
    address = temporal_env.client.service_client.config.target_host
    settings = Settings(
        temporal={"target_host": address},
        task_queue=f"cli-{uuid.uuid4().hex[:8]}",
        memory_url=f"sqlite:///{cwd / 'memory.db'}",
    )
    client = await connect(settings)
    store = await MemoryStore.open(settings.memory_url)
    try:
        async with build_worker(client, store, settings):
            yield Stack(address, settings.memory_url, settings.task_queue, cwd)
    finally:
        await store.close()
