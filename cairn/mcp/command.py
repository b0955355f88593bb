"""``cairn mcp`` (and ``python -m cairn.mcp``): serve the memory to MCP clients.

Options fall back to environment variables (``CAIRN_MCP_TENANT``, ``CAIRN_MCP_READ``,
``CAIRN_MCP_WRITE``, ``CAIRN_MCP_TOKEN``, ``CAIRN_MEMORY_URL``), so a client's configuration
can pass the token without putting it on a command line. This module imports the MCP SDK only
when the command runs, so ``cairn --help`` works without the ``mcp`` extra.
"""

from __future__ import annotations

import asyncio
import sys
from enum import StrEnum
from typing import Annotated

import typer

from cairn.cli.errors import reported


class Transport(StrEnum):
    """How ``cairn mcp`` talks to its client."""

    stdio = "stdio"
    http = "http"


def mcp(
    ctx: typer.Context,
    tenant: Annotated[
        str, typer.Option("--tenant", envvar="CAIRN_MCP_TENANT", help="The one tenant served.")
    ],
    read: Annotated[
        str | None,
        typer.Option(
            "--read",
            envvar="CAIRN_MCP_READ",
            help="Readable grant patterns, comma-separated (acme/user/*). Default: the tenant.",
        ),
    ] = None,
    write: Annotated[
        str | None,
        typer.Option(
            "--write",
            envvar="CAIRN_MCP_WRITE",
            help="Writable grant patterns, comma-separated. Default: none.",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="CAIRN_MCP_TOKEN",
            help="The bearer token HTTP clients must send (prefer the variable).",
            show_default=False,
        ),
    ] = None,
    principal: Annotated[
        str, typer.Option("--principal", help="Who this server writes as, in provenance.")
    ] = "mcp",
    transport: Annotated[Transport, typer.Option("--transport")] = Transport.stdio,
    host: Annotated[str, typer.Option("--host", help="HTTP: the address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="HTTP: 0 for any.")] = 8765,
    memory_url: Annotated[
        str | None,
        typer.Option(
            "--memory-url",
            envvar="CAIRN_MEMORY_URL",
            help="sqlite:///path or postgresql+psycopg://... [default: sqlite:///.cairn/memory.db]",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Serve Cairn memory over MCP (stdio, or streamable HTTP with a bearer token)."""
    with reported(debug=debug or bool(ctx.find_root().params.get("debug"))):
        asyncio.run(
            _serve(tenant, read, write, token, principal, transport, host, port, memory_url)
        )


async def _serve(
    tenant: str,
    read: str | None,
    write: str | None,
    token: str | None,
    principal: str,
    transport: Transport,
    host: str,
    port: int,
    memory_url: str | None,
) -> None:
    try:
        from cairn.mcp.config import McpConfig, split_patterns
        from cairn.mcp.server import serve_http, serve_stdio
    except ModuleNotFoundError as missing:
        raise RuntimeError(
            f"`cairn mcp` needs the MCP SDK ({missing.name} is missing): "
            "pip install 'cairn-agents[mcp]'"
        ) from None
    from cairn import DEFAULT_MEMORY_URL
    from cairn.cli.memory import open_store

    config = McpConfig(
        tenant=tenant,
        read=split_patterns(read),
        write=split_patterns(write),
        principal=principal,
        token=token or None,
    )
    store = await open_store(memory_url or DEFAULT_MEMORY_URL, create=True)
    try:
        if transport is Transport.stdio:
            await serve_stdio(store, config)
        else:
            await serve_http(store, config, host=host, port=port, ready=_announce)
    finally:
        await store.close()


def _announce(url: str) -> None:
    print(f"cairn mcp: serving {url}", file=sys.stderr, flush=True)


def main() -> None:
    """Run the command as its own program (``python -m cairn.mcp``)."""
    typer.run(mcp)
