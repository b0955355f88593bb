"""``cairn run <workflow type>``: start any workflow a worker registers, by its type name.

Chains and sessions have commands of their own (`cairn.cli.runs`); this is how a user's own
workflow (say ``HaikuWorkflow``, loaded by ``CAIRN_EXTENSIONS``) starts from the command line.
A workflow no worker can run is reported from its failed workflow task instead of waiting for
ever.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from rich.console import Group
from rich.text import Text
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from cairn.cli.errors import CommandError, one_line
from cairn.cli.memory import View

POLL_INTERVAL = 0.2
"""Seconds between checks of a waited-for workflow's pending workflow task."""


def parse_input(text: str) -> Any:
    """The workflow's argument: ``text`` as JSON (a string needs its quotes)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"--input must be JSON ({error.msg} at column {error.colno}); "
            """a string needs quotes, e.g. --input '"frogs"'"""
        ) from None


async def stuck_reason(handle: WorkflowHandle[Any, Any]) -> str | None:
    """Why the workflow's task keeps failing (unregistered type, bad input), or None."""
    described = await handle.describe()
    pending = described.raw_description.pending_workflow_task
    if not described.raw_description.HasField("pending_workflow_task") or pending.attempt < 2:
        return None
    reason = "its workflow task keeps failing"
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            message = event.workflow_task_failed_event_attributes.failure.message
            reason = f"its workflow task fails: {one_line(message)}"
    return reason


async def wait_for_result(handle: WorkflowHandle[Any, Any]) -> Any:
    """The workflow's result; `CommandError` when no worker can run it (it keeps running)."""
    result = asyncio.ensure_future(handle.result())
    try:
        while not result.done():
            await asyncio.wait([result], timeout=POLL_INTERVAL * 5)
            if result.done():
                break
            reason = await stuck_reason(handle)
            if reason is not None:
                raise CommandError(
                    f"workflow {handle.id!r} is stuck: {reason}; is its type registered by a "
                    "worker on this task queue (CAIRN_EXTENSIONS)? "
                    f"Stop it with: temporal workflow terminate --workflow-id {handle.id}"
                )
        return await result
    finally:
        result.cancel()


async def run_any(
    client: Client,
    workflow_type: str,
    text: str,
    *,
    workflow_id: str | None,
    task_queue: str,
    wait: bool,
) -> View:
    """Start ``workflow_type`` with the JSON ``text`` as its argument; its result if ``wait``."""
    arg = parse_input(text)
    workflow_id = workflow_id or f"{workflow_type}-{uuid.uuid4().hex[:8]}"
    handle: WorkflowHandle[Any, Any] = await client.start_workflow(
        workflow_type, arg, id=workflow_id, task_queue=task_queue
    )
    started = Text.assemble(
        "started ", (workflow_id, "cyan"), f" ({workflow_type} on task queue {task_queue})"
    )
    data: dict[str, Any] = {"workflow_id": workflow_id, "run_id": handle.result_run_id}
    if not wait:
        return data, started
    result = await wait_for_result(handle)
    data["result"] = result
    shown = result if isinstance(result, str) else json.dumps(result, indent=2, default=str)
    return data, Group(started, Text(shown))
