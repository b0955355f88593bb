"""Agents for the worker-crash tests, loaded into ``python worker.py`` by ``CAIRN_EXTENSIONS``.

Each model call is appended to the file named by ``CAIRN_TEST_CALL_LOG``: the log is how a
test counts calls across worker processes. The ``gated`` agent waits, mid-step, until the file
named by ``CAIRN_TEST_GATE`` exists.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from activities import AgentContext, AgentOutput, AgentRegistry
from activities.llm import ChatMessage, ToolSpec

registry = AgentRegistry()


def log_call(line: str) -> None:
    with Path(os.environ["CAIRN_TEST_CALL_LOG"]).open("a") as log:
        log.write(f"{line}\n")


@registry.script("counted")
def counted(system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
    """Logs the call and answers."""
    task = messages[-1].content
    log_call(f"call {task}")
    return f"done: {task}"


@registry.agent("gated")
async def gated(ctx: AgentContext) -> AgentOutput:
    """Logs its start, waits for the gate file, then answers."""
    log_call(f"start {ctx.input.task}")
    gate = Path(os.environ["CAIRN_TEST_GATE"])
    while not gate.exists():
        await asyncio.sleep(0.05)
    log_call(f"call {ctx.input.task}")
    return AgentOutput(text=f"done: {ctx.input.task}")
