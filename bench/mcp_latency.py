"""MCP tool-call latency over stdio vs calling the store directly, interleaved in one run.

The server is the real ``python -m cairn.mcp`` subprocess and the client the MCP SDK's own, so
a call pays for JSON-RPC framing, the pipe, argument validation, the scoped store's grant
check and quoting. The direct side makes the same store call in this process. Both sides read
and write the same SQLite file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult, Implementation

from bench.runner import Profile, Row, benchmark
from bench.timing import Series, interleave
from memory import MemoryStore, Provenance

ROOT = Path(__file__).resolve().parents[1]
NS = ("acme", "user", "u-7")
ENTRIES = 200


async def _seed(store: MemoryStore) -> None:
    async with store.commit(provenance=Provenance(tenant="acme", agent="seed")) as c:
        for i in range(ENTRIES):
            c.put(NS, f"fact-{i}", {"text": f"fact {i} about the color blue and number {i}"})


def _ok(result: CallToolResult) -> CallToolResult:
    if result.is_error:
        raise RuntimeError(f"the MCP call failed: {result.content}")
    return result


def _row(op: str, mcp: Series, direct: Series) -> Row:
    p50, p99 = mcp.percentile_us(0.5), mcp.percentile_us(0.99)
    d50, d99 = direct.percentile_us(0.5), direct.percentile_us(0.99)
    return {
        "op": op,
        "mcp_p50_us": p50,
        "mcp_p99_us": p99,
        "direct_p50_us": d50,
        "direct_p99_us": d99,
        "p50_ratio": p50 / d50,
        "p99_ratio": p99 / d99,
        "mcp_ops": mcp.ops,
    }


@benchmark("mcp_latency", "MCP tool calls over stdio vs the store directly (p50/p99)")
async def mcp_latency(profile: Profile) -> list[Row]:
    url = f"sqlite:///{profile.workdir / 'mcp.db'}"
    rounds, seconds = (7, 2.0) if profile.full else (3, 0.5)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "cairn.mcp", "--memory-url", url, "--tenant", "acme", "--write", "acme/user"],
        cwd=str(ROOT),
    )
    rows: list[Row] = []
    async with await MemoryStore.open(url) as store:
        await _seed(store)
        async with Client(params, client_info=Implementation(name="bench", version="1")) as mcp:

            async def get_mcp(i: int) -> Any:
                args = {"namespace": "acme/user/u-7", "key": f"fact-{i % ENTRIES}"}
                return _ok(await mcp.call_tool("get", args))

            async def get_direct(i: int) -> Any:
                return await store.get(NS, f"fact-{i % ENTRIES}")

            async def recall_mcp(i: int) -> Any:
                args = {"query": f"blue {i % ENTRIES}", "prefix": "acme/user", "limit": 5}
                return _ok(await mcp.call_tool("recall", args))

            async def recall_direct(i: int) -> Any:
                return await store.search(("acme", "user"), f"blue {i % ENTRIES}", limit=5)

            async def remember_mcp(i: int) -> Any:
                args = {"namespace": "acme/user/u-7", "key": f"m-{i}", "value": {"n": i}}
                return _ok(await mcp.call_tool("remember", args))

            async def remember_direct(i: int) -> Any:
                async with store.commit(provenance=Provenance(tenant="acme")) as c:
                    c.put(NS, f"d-{i}", {"n": i})

            ops = {
                "get": (get_mcp, get_direct),
                "recall": (recall_mcp, recall_direct),
                "remember": (remember_mcp, remember_direct),
            }
            for op, (over_mcp, direct) in ops.items():
                result = await interleave(
                    {"mcp": over_mcp, "direct": direct}, rounds=rounds, seconds=seconds
                )
                rows.append(_row(op, result["mcp"], result["direct"]))
    return rows
