"""Temporal dev servers a fault test owns: its own limits, and killable and restartable.

Each is the `temporal` CLI's dev server on free ports, persisting to a SQLite file of its own,
so that a server killed with SIGKILL and started again on the same file resumes its workflows.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from tests.cli.conftest import free_port
from tests.conftest import temporal_binary
from workflows.search_attributes import SEARCH_ATTRIBUTES


class DevServer:
    """One dev server process at a time on a fixed port and database file."""

    def __init__(self, tmp: Path, dynamic_config: dict[str, object] | None = None) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.db = tmp / f"temporal-{self.port}.db"
        self.dynamic_config = dynamic_config or {}
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, timeout: float = 30) -> None:
        """Start the server (again, on the same file) and wait until it serves requests."""
        assert self.proc is None or self.proc.returncode is not None, "already running"
        self.starts += 1
        args = [
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--headless",
            "--db-filename",
            str(self.db),
            "--log-level",
            "error",
        ]
        for key, value in self.dynamic_config.items():
            args += ["--dynamic-config-value", f"{key}={value}"]
        for attribute in SEARCH_ATTRIBUTES:
            args += ["--search-attribute", f"{attribute.name}=Keyword"]
        log = (self.tmp / f"temporal-{self.port}-{self.starts}.log").open("w")
        self.proc = await asyncio.create_subprocess_exec(
            temporal_binary(), *args, stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                client = await Client.connect(self.address)
                await client.count_workflows()
                return
            except Exception:
                if self.proc.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dev server did not start: {self.log_tail()}") from None
                await asyncio.sleep(0.3)

    async def client(self, data_converter: DataConverter = pydantic_data_converter) -> Client:
        return await Client.connect(self.address, data_converter=data_converter)

    async def kill(self) -> None:
        """SIGKILL: no shutdown at all, as when a machine dies."""
        await self._signal(signal.SIGKILL)

    async def stop(self) -> None:
        await self._signal(signal.SIGTERM)

    async def _signal(self, sig: int) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def log_tail(self) -> str:
        logs = sorted(self.tmp.glob(f"temporal-{self.port}-*.log"))
        return "\n".join(p.read_text()[-2000:] for p in logs)
