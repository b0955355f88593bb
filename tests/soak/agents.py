"""Agents for soak worker processes, loaded by ``CAIRN_EXTENSIONS=tests.soak.agents``.

Every model call appends one line to the file named by ``CAIRN_SOAK_CALL_LOG``: the wall-clock
time, the workflow id, run id, activity id and attempt. The checker matches each line with the
commit of that activity (its key is ``step:<workflow id>:<run id>:<activity id>``), so it can
tell a model call made after its step had committed.

- ``soak``: answers ``done: <task>``.
- ``review``: answers ``VERDICT: approve`` for a task ending in ``!``, ``VERDICT: revise``
  otherwise, so review loops run more than one round.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from temporalio import activity

from activities import AgentRegistry
from activities.llm import ChatMessage, ToolSpec

registry = AgentRegistry()


def log_call() -> None:
    """Record this model call (one ``write``: lines of concurrent processes never interleave)."""
    info = activity.info()
    line = (
        f"{time.time():.6f} {info.workflow_id} {info.workflow_run_id} "
        f"{info.activity_id} {info.attempt}\n"
    )
    fd = os.open(os.environ["CAIRN_SOAK_CALL_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@registry.script("soak")
def soak(system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
    log_call()
    return f"done: {messages[-1].content}"


@registry.script("review")
def review(system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
    log_call()
    verdict = "approve" if messages[-1].content.endswith("!") else "revise"
    return f"reviewed: {messages[-1].content}\nVERDICT: {verdict}"
