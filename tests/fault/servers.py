"""Temporal dev servers a fault test owns: its own limits, and killable and restartable.

Each is the `temporal` CLI's dev server on free ports, persisting to a SQLite file of its own,
so that a server killed with SIGKILL and started again on the same file resumes its workflows.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from cairn.devserver import dev_server_command, free_port, wait_ready


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
        command = dev_server_command(
            host="127.0.0.1",
            port=self.port,
            db=self.db,
            log_level="error",
            dynamic_config=list(self.dynamic_config.items()),
        )
        log_path = self.tmp / f"temporal-{self.port}-{self.starts}.log"
        with log_path.open("w") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *command, stdout=log, stderr=log, start_new_session=True
            )
        proc = self.proc
        await wait_ready(self.address, lambda: proc.returncode, log_path, timeout=timeout)

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
