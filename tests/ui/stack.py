"""A real stack for the UI tests: a Temporal dev server with its UI, a worker, the Cairn UI.

The Temporal UI is started with the Cairn UI's codec endpoint, the way ``cairn dev`` does,
and the browser is Debian's Chromium driven by Playwright (its own browsers are never used).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Browser, async_playwright
from temporalio.client import Client

from cairn.cli.runs import start_chain
from cairn.devserver import free_port, start_local
from cairn.runtime import Settings, build_worker
from cairn.ui import UIConfig, serve
from cairn.ui.server import bind
from memory import MemoryStore
from workflows.contracts import ChainResult
from workflows.teams import research_team

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TENANT = "acme"
QUESTION = "How do agent teams keep their context durable?"


@dataclass
class Stack:
    """Everything a UI test talks to."""

    ui: str
    temporal_ui: str
    client: Client
    store: MemoryStore
    task_queue: str

    async def run_team(self, workflow_id: str | None = None) -> tuple[str, ChainResult]:
        """Run the demo's research team to completion; its workflow id and result."""
        workflow_id = workflow_id or f"research-{uuid.uuid4().hex[:8]}"
        spec = research_team(TENANT, QUESTION, model="scripted").model_copy(
            update={"ui_url": self.ui}
        )
        handle = await start_chain(
            self.client, spec, workflow_id=workflow_id, task_queue=self.task_queue
        )
        return workflow_id, await handle.result()


@contextlib.asynccontextmanager
async def running_stack(state: Path) -> AsyncIterator[Stack]:
    """Dev server (with UI and codec endpoint), one worker, and the Cairn UI, until exit."""
    sock = bind("127.0.0.1", 0)
    ui = f"http://127.0.0.1:{sock.getsockname()[1]}"
    temporal_ui_port = free_port()
    env = await start_local(ui_port=temporal_ui_port, ui_codec_endpoint=f"{ui}/codec")
    url = f"sqlite:///{state / 'memory.db'}"
    store = await MemoryStore.open(url)
    settings = Settings(task_queue=f"ui-{uuid.uuid4()}", memory_url=url)
    temporal_ui = f"http://127.0.0.1:{temporal_ui_port}"
    config = UIConfig(temporal_ui_url=temporal_ui)
    try:
        async with (
            build_worker(env.client, store, settings),
            serve(store, config, port=0, sock=sock) as served,
        ):
            assert served == ui
            yield Stack(ui, temporal_ui, env.client, store, settings.task_queue)
    finally:
        await store.close()
        await env.shutdown()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, offline."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
