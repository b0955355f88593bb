"""``cairn ui`` and the inspector ``cairn dev`` runs: open the store, serve, say where.

The settings come from `cairn.cli.app` (which reads the environment); this module only
composes the store, the optional payload codec and the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

from rich.console import Console
from rich.markup import escape

from cairn.cli.memory import open_store
from cairn.codec import EncryptionCodec, keys_from_env_value
from cairn.ui.config import UIConfig
from cairn.ui.server import serve
from memory import MemoryStore


def codec_from_keys(keys: str | None) -> EncryptionCodec | None:
    """The workers' payload codec from ``CAIRN_ENCRYPTION_KEYS``, when it is set."""
    return EncryptionCodec(*keys_from_env_value(keys)) if keys and keys.strip() else None


@contextlib.asynccontextmanager
async def inspector(
    store: MemoryStore,
    config: UIConfig,
    *,
    console: Console,
    port: int = 0,
    sock: socket.socket | None = None,
) -> AsyncIterator[str]:
    """Serve the inspector for ``store`` beside the caller's work, and print where."""
    async with serve(store, config, port=port, sock=sock) as url:
        mode = "read-write" if config.write else "read-only"
        console.print(f"[bold]Cairn UI[/]  {escape(url)} ({mode})", highlight=False)
        yield url


async def run_ui(memory_url: str, config: UIConfig, *, port: int, console: Console) -> None:
    """``cairn ui``: serve the inspector of the memory at ``memory_url`` until cancelled."""
    store = await open_store(memory_url, create=False)
    try:
        async with inspector(store, config, port=port, console=console):
            console.print("Press Ctrl-C to stop.")
            await asyncio.Event().wait()
    except asyncio.CancelledError:
        console.print("Stopped.")
    finally:
        await store.close()
