"""Starting and following Cairn workflows from the command line: chains and sessions.

The helpers take a connected client, the commands (`run_chain`, `session_send_turn`, ...) the
settings to connect with; each command returns a `View`. A workflow that does not exist is a
`LookupError` saying which one, so the command prints one line instead of a gRPC status.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from cairn.cli.approvals import read_decisions, waiting_line
from cairn.cli.errors import workflow_must_exist
from cairn.cli.memory import View, add_row
from cairn.runtime import Settings, connect
from cairn.telemetry import Telemetry
from memory.namespace import check_segment
from workflows.chain import ChainWorkflow, team_search_attributes
from workflows.contracts import (
    ChainProgress,
    ChainResult,
    ChainSpec,
    Reply,
    SessionEnd,
    SessionInput,
    SessionState,
    Turn,
)
from workflows.ids import chain_workflow_id, check_chain_workflow_id
from workflows.session import SessionWorkflow, session_search_attributes, session_workflow_id

POLL_INTERVAL = 0.2
"""Seconds between progress queries while following a chain."""


def ui_link(ui_url: str, namespace: str, workflow_id: str) -> str:
    """The Temporal UI page of a workflow."""
    return (
        f"{ui_url}/namespaces/{quote(namespace, safe='')}/workflows/{quote(workflow_id, safe='')}"
    )


async def has_worker(client: Client, task_queue: str) -> bool:
    """Whether any worker has polled ``task_queue`` for workflow tasks recently."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return bool(response.pollers)


async def start_chain(
    client: Client, spec: ChainSpec, *, workflow_id: str, task_queue: str
) -> WorkflowHandle[ChainWorkflow, ChainResult]:
    """Start a `ChainWorkflow` for ``spec`` with its search attributes.

    A workflow id names its run namespace in memory, so an id is reused only to rerun a
    chain that failed, never to mix a second run's outputs into a completed one's.

    Raises:
        ValueError: ``workflow_id`` does not carry the chain's user (`chain_workflow_id`), or
            carries a subject for a chain without one.
    """
    check_chain_workflow_id(workflow_id, spec.tenant, spec.user)
    return await client.start_workflow(
        ChainWorkflow.run,
        spec,
        id=workflow_id,
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        search_attributes=team_search_attributes(spec),
        static_summary=f"team {spec.name}",
    )


async def follow_chain(
    handle: WorkflowHandle[ChainWorkflow, ChainResult],
    on_progress: Callable[[ChainProgress], Awaitable[None]],
) -> ChainResult:
    """Wait for a chain's result, calling ``on_progress`` with each new `progress` answer."""
    result = asyncio.ensure_future(handle.result())
    last: ChainProgress | None = None
    try:
        while not result.done():
            try:
                progress = await handle.query(ChainWorkflow.progress)
            except (RPCError, WorkflowQueryFailedError):
                progress = None  # not picked up by a worker yet, or just finished
            if progress is not None and progress != last:
                last = progress
                await on_progress(progress)
            await asyncio.wait([result], timeout=POLL_INTERVAL)
        return await result
    finally:
        result.cancel()


def _session_start(inp: SessionInput) -> dict[str, Any]:
    """How a session's workflow starts, by either path: one id per session, found if running."""
    return {
        "id": session_workflow_id(inp.tenant, inp.session),
        "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
        "search_attributes": session_search_attributes(inp),
        "static_summary": f"session {inp.session} with {inp.agent.name}",
    }


async def start_session(client: Client, inp: SessionInput, *, task_queue: str) -> None:
    """Start the session's workflow, or find it running."""
    await client.start_workflow(
        SessionWorkflow.run, inp, task_queue=task_queue, **_session_start(inp)
    )


async def send(client: Client, inp: SessionInput, turn: Turn, *, task_queue: str) -> Reply:
    """Send one user turn, starting the session on first use (update-with-start)."""
    start = WithStartWorkflowOperation(
        SessionWorkflow.run, inp, task_queue=task_queue, **_session_start(inp)
    )
    reply: Reply = await client.execute_update_with_start_workflow(
        SessionWorkflow.send, turn, start_workflow_operation=start
    )
    return reply


async def session_state(client: Client, tenant: str, session: str) -> SessionState:
    """The session's ``state`` query; `LookupError` when there is no such session."""
    workflow_id = session_workflow_id(tenant, session)
    handle = client.get_workflow_handle_for(SessionWorkflow.run, workflow_id)
    with workflow_must_exist(workflow_id, client.namespace):
        return await handle.query(SessionWorkflow.state)


async def end_session(
    client: Client, tenant: str, session: str, *, wait: timedelta
) -> SessionEnd | None:
    """Ask the session to end; its `SessionEnd`, or None when it did not end within ``wait``."""
    workflow_id = session_workflow_id(tenant, session)
    handle = client.get_workflow_handle_for(SessionWorkflow.run, workflow_id)
    with workflow_must_exist(workflow_id, client.namespace):
        described = await handle.describe()
        if described.status == WorkflowExecutionStatus.RUNNING:
            await handle.signal(SessionWorkflow.end)
        try:
            return await asyncio.wait_for(handle.result(), wait.total_seconds())
        except TimeoutError:
            return None


# -- commands ---------------------------------------------------------------------------------


async def client_for(settings: Settings, tracing: Telemetry | None = None) -> Client:
    """A client for a command, warning on stderr when no worker polls its task queue."""
    client = await connect(settings, tracing)
    if not await has_worker(client, settings.task_queue):
        print(
            f"cairn: warning: no worker polls task queue {settings.task_queue!r} at "
            f"{settings.temporal_address}; start one with `cairn dev` or `cairn worker`",
            file=sys.stderr,
        )
    return client


async def run_chain(
    settings: Settings,
    text: str,
    *,
    workflow_id: str | None,
    console: Console | None,
    tracing: Telemetry | None = None,
    wait: bool = True,
    user: str | None = None,
) -> tuple[View, bool]:
    """``cairn run chain``: start a team, print progress on ``console``, return its result.

    ``user`` (``--user``) makes the chain act for that user, as the spec's ``user`` does.
    Returns the view and whether the chain completed (False when an approval rejected it).
    """
    spec = ChainSpec.model_validate_json(text)
    if user is not None:
        if spec.user not in (None, user):
            raise ValueError(f"--user {user!r} differs from the chain's user {spec.user!r}")
        spec = spec.model_copy(update={"user": check_segment(user, "user")})
    suffix = uuid.uuid4().hex[:8]
    workflow_id = workflow_id or chain_workflow_id(spec.tenant, spec.name, suffix, user=spec.user)
    check_chain_workflow_id(workflow_id, spec.tenant, spec.user)
    client = await client_for(settings, tracing)
    handle = await start_chain(
        client, spec, workflow_id=workflow_id, task_queue=settings.task_queue
    )
    if console is not None:
        console.print(
            Text.assemble(
                "started ", (workflow_id, "cyan"), f" (team {spec.name}, tenant {spec.tenant})"
            )
        )
    if not wait:
        started: dict[str, Any] = {"workflow_id": workflow_id, "run_id": handle.result_run_id}
        return (started, Text(f"follow it with: cairn memory steps {workflow_id}")), True

    async def on_progress(progress: ChainProgress) -> None:
        if console is not None:
            running = ", ".join(progress.current) or "-"
            line = f"  {progress.done} steps done; running: {running}"
            if progress.waiting_for:
                line += f"; {waiting_line(workflow_id, progress.waiting_for)}"
            console.print(Text(line), soft_wrap=True)  # a command to copy stays on one line

    result = await follow_chain(handle, on_progress)
    table = Table(title=f"{workflow_id}: {result.status}", title_justify="left")
    for column in ("step", "agent", "verdict", "commit", "output"):
        table.add_column(column, justify="right" if column == "commit" else "left")
    for step in result.steps:
        preview = " ".join(step.preview.split())
        add_row(
            table, step.step, step.agent, step.verdict or "-", str(step.commit_seq), preview[:70]
        )
    decisions = await read_decisions(settings.memory_url, spec.tenant, workflow_id)
    data = {
        "workflow_id": workflow_id,
        "result": result.model_dump(mode="json"),
        "decisions": decisions,
    }
    view = Group(table, *(Text(line) for line in decisions)) if decisions else table
    return (data, view), result.status == "completed"
