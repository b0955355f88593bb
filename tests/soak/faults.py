"""The soak's processes and the faults injected into them, seeded, overlapping and logged.

`Workers` runs ``python worker.py`` processes in fixed slots (a killed one is started again in
its slot). `Faults` picks a fault every few seconds from a seeded generator and runs it as a
task of its own, so faults overlap: workers killed (SIGKILL) or frozen (SIGSTOP, then SIGCONT);
the PostgreSQL proxy cut, stalled or slowed; the dev server killed and restarted on its file.
Every fault is written to the log with when it started and ended.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cairn.devserver import free_port
from tests.fault.proxy import Proxy
from tests.fault.servers import DevServer

ROOT = Path(__file__).parents[2]
KINDS = ("worker_kill", "worker_stop", "pg_cut", "pg_stall", "pg_slow", "server_kill")

# Kept below the steps' heartbeat timeout (30 s): a worker frozen longer would have its
# attempts retried elsewhere while it still runs them, a case of its own.
STOP_SECONDS = (2.0, 10.0)
OUTAGE_SECONDS = (1.0, 6.0)


@dataclass
class FaultRecord:
    kind: str
    target: str
    start: float
    end: float | None = None
    """Wall-clock times; ``end`` is when the fault was undone (the component is back)."""


class Workers:
    """``python worker.py`` processes, one per slot, on one task queue and memory URL."""

    def __init__(self, tmp: Path, env: dict[str, str], slots: int = 4) -> None:
        self.tmp, self.env = tmp, env
        self.procs: list[asyncio.subprocess.Process | None] = [None] * slots
        self.health = [free_port() for _ in range(slots)]
        self.started = 0

    async def start(self, slot: int) -> None:
        self.started += 1
        log = (self.tmp / f"worker-{slot}-{self.started}.log").open("w")
        env = {**self.env, "CAIRN_HEALTH_PORT": str(self.health[slot])}
        self.procs[slot] = await asyncio.create_subprocess_exec(
            sys.executable, "worker.py", cwd=ROOT, env=env, stdout=log, stderr=log
        )
        log.close()

    async def start_all(self, timeout: float = 180) -> None:
        """Start every slot and wait until each worker answers ``/readyz``."""
        for slot in range(len(self.procs)):
            await self.start(slot)
        deadline = time.monotonic() + timeout
        for port in self.health:
            while not await ready(port):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"a worker was not ready within {timeout}s")
                await asyncio.sleep(0.5)  # polling a health endpoint: it has no push

    def signal(self, slot: int, sig: int) -> None:
        proc = self.procs[slot]
        if proc is not None and proc.returncode is None:
            proc.send_signal(sig)

    async def stop_all(self) -> list[int | None]:
        """SIGCONT then SIGTERM every worker; their exit codes."""
        codes: list[int | None] = []
        for slot, proc in enumerate(self.procs):
            if proc is None:
                continue
            self.signal(slot, signal.SIGCONT)
            self.signal(slot, signal.SIGTERM)
            try:
                codes.append(await asyncio.wait_for(proc.wait(), 30))
            except TimeoutError:
                proc.kill()
                codes.append(await proc.wait())
        return codes


async def ready(port: int) -> bool:
    """Whether the worker whose health endpoint is on ``port`` answers ``/readyz`` with 200."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
    status = await reader.readline()
    writer.close()
    return b" 200 " in status


class Faults:
    """Overlapping faults until `stop`; see the module docstring."""

    def __init__(
        self,
        seed: int,
        workers: Workers,
        proxy: Proxy,
        server: DevServer,
        log: Path,
        gap: tuple[float, float] = (2.0, 6.0),
        kinds: tuple[str, ...] = KINDS,
    ) -> None:
        self.rng = random.Random(seed)
        self.kinds = kinds
        self.workers, self.proxy, self.server = workers, proxy, server
        self.log_path, self.gap = log, gap
        self.records: list[FaultRecord] = []
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Inject faults until ``stop`` is set, then wait for every fault to be undone."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.rng.uniform(*self.gap))
            except TimeoutError:
                self._inject()
        await asyncio.gather(*self._tasks)

    def _inject(self) -> None:
        kind = self.rng.choice(self.kinds)
        if kind.startswith("worker"):
            # At most two of the four workers are out at once, so work always has a taker.
            free = [s for s in range(len(self.workers.procs)) if f"worker-{s}" not in self._busy]
            if len(free) <= 2:
                return
            target = f"worker-{self.rng.choice(free)}"
        else:
            target = "server" if kind == "server_kill" else f"pg-{kind}"
            if target in self._busy:
                return
        self._busy.add(target)
        seconds = self.rng.uniform(*(STOP_SECONDS if kind == "worker_stop" else OUTAGE_SECONDS))
        record = FaultRecord(kind, target, time.time())
        self.records.append(record)
        task = asyncio.create_task(self._run(record, seconds))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, record: FaultRecord, seconds: float) -> None:
        try:
            await self._apply(record, seconds)
        finally:
            record.end = time.time()
            self._busy.discard(record.target)
            with self.log_path.open("a") as log:
                log.write(json.dumps({**asdict(record), "seconds": round(seconds, 2)}) + "\n")

    async def _apply(self, record: FaultRecord, seconds: float) -> None:
        kind = record.kind
        if kind in ("worker_kill", "worker_stop"):
            slot = int(record.target.split("-")[1])
            if kind == "worker_kill":
                self.workers.signal(slot, signal.SIGKILL)
                proc = self.workers.procs[slot]
                if proc is not None:
                    await proc.wait()
                await asyncio.sleep(seconds)  # a supervisor's restart delay
                await self.workers.start(slot)
            else:
                self.workers.signal(slot, signal.SIGSTOP)
                await asyncio.sleep(seconds)
                self.workers.signal(slot, signal.SIGCONT)
        elif kind == "pg_cut":
            with self.proxy.down():
                await asyncio.sleep(seconds)
        elif kind == "pg_stall":
            with self.proxy.stalled():
                await asyncio.sleep(seconds)
        elif kind == "pg_slow":
            with self.proxy.slowed(self.rng.uniform(0.02, 0.2)):
                await asyncio.sleep(seconds)
        else:
            await self.server.kill()
            await asyncio.sleep(seconds)
            await self.server.start(timeout=60)


def worker_env(address: str, task_queue: str, memory_url: str, calls: Path) -> dict[str, str]:
    """The environment of a soak worker process."""
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_NAMESPACE": "default",
        "CAIRN_TASK_QUEUE": task_queue,
        "CAIRN_MEMORY_URL": memory_url,
        "CAIRN_EXTENSIONS": "tests.soak.agents",
        "CAIRN_SHUTDOWN_GRACE": "2",
        "CAIRN_MAX_CONCURRENT_STEPS": "8",
        "CAIRN_SOAK_CALL_LOG": str(calls),
    }
