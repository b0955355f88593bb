"""The in-process worker behind ``cairn dev`` and ``cairn demo``, and ``cairn dev`` itself.

`start_worker` runs every Cairn workflow and activity in this process; the dev server it runs
beside comes from `cairn.devserver` (state in ``.cairn/temporal.db``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from temporalio.client import Client

from activities import AgentRegistry
from activities.llm.providers import close_model_clients
from cairn.cli.memory import open_store
from cairn.devserver import dev_server, ensure_search_attributes
from cairn.runtime import Settings, build_worker, connect, load_extensions
from cairn.telemetry import Telemetry
from cairn.ui.command import inspector as serve_inspector
from cairn.ui.config import DEFAULT_PORT, UIConfig
from cairn.ui.server import bind
from memory import MemoryStore


@dataclass(frozen=True)
class LocalWorker:
    """A worker running in this process, and the memory store it writes."""

    store: MemoryStore
    task_queue: str
    extensions: tuple[str, ...] = ()


@contextlib.asynccontextmanager
async def start_worker(client: Client, settings: Settings) -> AsyncIterator[LocalWorker]:
    """Run a worker for every Cairn workflow and activity in this process until exit.

    It loads the ``CAIRN_EXTENSIONS`` modules as ``worker.py`` does (`load_extensions`), so
    the user's workflows, agents and tools run here too.

    Args:
        client: The connected Temporal client (with tracing interceptors when tracing is on).
        settings: Task queue, memory URL, concurrency, providers and extensions.
    """
    registry = AgentRegistry()
    extensions = load_extensions(settings, registry)
    store = await open_store(settings.memory_url, create=True)
    try:
        async with build_worker(client, store, settings, registry, extensions=extensions):
            yield LocalWorker(store, settings.task_queue, settings.extensions)
    finally:
        await close_model_clients()
        await store.close()


async def dev(
    settings: Settings,
    *,
    ui_port: int,
    state_dir: Path,
    console: Console,
    tracing: Telemetry,
    inspector: UIConfig | None = None,
    inspector_port: int = DEFAULT_PORT,
    worker: bool = True,
) -> None:
    """``cairn dev``: the dev server (started or reused), a worker and the Cairn UI, until exit.

    A started Temporal UI decodes payloads through the Cairn UI's codec endpoint. Without
    ``worker``, the user runs their own (``python worker.py``) against the same server.
    """
    namespace = str(settings.temporal.get("namespace", "default"))
    # Bound first: the Temporal UI is started with the codec endpoint's URL.
    sock, codec_url = None, None
    if inspector is not None:
        sock = bind(inspector.host, inspector_port)
        codec_url = f"http://{inspector.host}:{sock.getsockname()[1]}/codec"
    try:
        async with dev_server(
            settings.temporal_address,
            namespace=namespace,
            state_dir=state_dir,
            ui_port=ui_port,
            ui_codec_endpoint=codec_url,
        ) as server:
            client = await connect(settings, tracing)
            added = await ensure_search_attributes(client, namespace)
            async with contextlib.AsyncExitStack() as stack:
                how = f"started (state in {server.state})" if server.started else "reused"
                console.print(f"[bold]Temporal[/]  {server.address} {escape(how)}")
                if server.ui_url:
                    console.print(f"[bold]UI[/]        {server.ui_url}")
                if added:
                    console.print(f"[bold]Search attributes[/] registered: {', '.join(added)}")
                if worker:
                    store = await _local_worker(stack, client, settings, console)
                else:
                    store = await open_store(settings.memory_url, create=True)
                    stack.push_async_callback(store.close)
                    queue = escape(settings.task_queue)
                    console.print(
                        f"[bold]Worker[/]    none (--no-worker): run yours on task queue {queue}"
                    )
                if inspector is not None and sock is not None:
                    config = replace(inspector, temporal_ui_url=server.ui_url)
                    serving = serve_inspector(store, config, sock=sock, console=console)
                    await stack.enter_async_context(serving)
                console.print("Ready. Press Ctrl-C to stop.")
                await asyncio.Event().wait()
    except asyncio.CancelledError:
        # Ctrl-C or SIGTERM: by now the worker has drained and a started server has exited.
        console.print("Stopped.")
    finally:
        if sock is not None:
            sock.close()


async def _local_worker(
    stack: contextlib.AsyncExitStack, client: Client, settings: Settings, console: Console
) -> MemoryStore:
    """Start ``cairn dev``'s worker on ``stack``; print where it writes and what it loaded."""
    queue = escape(settings.task_queue)
    local = await stack.enter_async_context(start_worker(client, settings))
    memory = escape(local.store.engine.url.render_as_string(hide_password=True))
    console.print(f"[bold]Worker[/]    task queue {queue}, memory {memory}")
    if local.extensions:
        console.print(f"[bold]Extensions[/] {escape(', '.join(local.extensions))}")
    return local.store
