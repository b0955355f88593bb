"""Streamable HTTP: the same tools behind a bearer token, and refusals without one."""

from __future__ import annotations

import httpx2
import pytest
from mcp import MCPError

from tests.mcp.conftest import (
    GRANTS,
    TOKEN,
    WRITABLE,
    failing_server,
    http_server,
    over_http,
    text,
)

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


async def test_tools_answer_over_http_with_the_token(seeded: str) -> None:
    env = {"CAIRN_MCP_TOKEN": TOKEN}
    async with (
        http_server(seeded, *GRANTS, *WRITABLE, env=env) as endpoint,
        over_http(endpoint, TOKEN) as client,
    ):
        got = await client.call_tool("get", {"namespace": "acme/user/u-7", "key": "color"})
        args = {"namespace": "acme/user/u-7", "key": "k", "value": 1, "idempotency_key": "h1"}
        first = await client.call_tool("remember", args)
        again = await client.call_tool("remember", args)
    assert got.structured_content["version"] == 2
    assert 'written_by="planner in wf-1"' in text(got)
    assert (first.structured_content["replayed"], again.structured_content["replayed"]) == (
        False,
        True,
    )


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}"])
async def test_a_request_without_the_right_token_gets_401(
    seeded_sqlite: str, header: str | None
) -> None:
    async with http_server(seeded_sqlite, *GRANTS, env={"CAIRN_MCP_TOKEN": TOKEN}) as endpoint:
        headers = {**ACCEPT, **({"Authorization": header} if header else {})}
        async with httpx2.AsyncClient() as http:
            response = await http.post(endpoint, json=INITIALIZE, headers=headers)
    assert response.status_code == 401
    assert "blue" not in response.text


async def test_the_sdk_client_with_a_wrong_token_cannot_connect(seeded_sqlite: str) -> None:
    async with http_server(seeded_sqlite, *GRANTS, env={"CAIRN_MCP_TOKEN": TOKEN}) as endpoint:
        with pytest.raises(ExceptionGroup) as refused:
            async with over_http(endpoint, "wrong-token-0123456789") as client:
                await client.list_tools()
    assert refused.group_contains(MCPError, depth=2)


async def test_without_a_token_the_server_refuses_to_bind_beyond_loopback(
    seeded_sqlite: str,
) -> None:
    stderr = await failing_server(
        seeded_sqlite, *GRANTS, "--transport", "http", "--host", "0.0.0.0", "--port", "0"
    )
    assert "refusing to serve MCP on 0.0.0.0 without a bearer token" in stderr


async def test_a_short_token_is_refused(seeded_sqlite: str) -> None:
    stderr = await failing_server(
        seeded_sqlite, *GRANTS, "--transport", "http", env=(("CAIRN_MCP_TOKEN", "short"),)
    )
    assert "at least 16 characters" in stderr
