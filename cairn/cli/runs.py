"""Starting and following Cairn workflows from the command line: chains and sessions.

The helpers take a connected client, the commands (`run_chain`, `session_send_turn`, ...) the
settings to connect with; each command returns a `View`. A workflow that does not exist is a
`LookupError` saying which one, so the command prints one line instead of a gRPC status.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
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
from temporalio.service import RPCError, RPCStatusCode

from cairn.cli.memory import View, add_row, open_store
from cairn.runtime import Settings, connect
from memory import StreamItem
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
from workflows.session import SessionWorkflow, session_search_attributes, session_workflow_id
from workflows.teams import support_agent

POLL_INTERVAL = 0.2
"""Seconds between progress queries while following a chain."""


def ui_link(ui_url: str, namespace: str, workflow_id: str) -> str:
    """The Temporal UI page of a workflow."""
    return (
        f"{ui_url}/namespaces/{quote(namespace, safe='')}/workflows/{quote(workflow_id, safe='')}"
    )


@contextlib.contextmanager
def _workflow_must_exist(workflow_id: str, namespace: str) -> Iterator[None]:
    try:
        yield
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise LookupError(
                f"no workflow {workflow_id!r} in Temporal namespace {namespace!r}"
            ) from None
        raise


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
    """
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
    with _workflow_must_exist(workflow_id, client.namespace):
        return await handle.query(SessionWorkflow.state)


async def end_session(
    client: Client, tenant: str, session: str, *, wait: timedelta
) -> SessionEnd | None:
    """Ask the session to end; its `SessionEnd`, or None when it did not end within ``wait``."""
    workflow_id = session_workflow_id(tenant, session)
    handle = client.get_workflow_handle_for(SessionWorkflow.run, workflow_id)
    with _workflow_must_exist(workflow_id, client.namespace):
        described = await handle.describe()
        if described.status == WorkflowExecutionStatus.RUNNING:
            await handle.signal(SessionWorkflow.end)
        try:
            return await asyncio.wait_for(handle.result(), wait.total_seconds())
        except TimeoutError:
            return None


# -- commands ---------------------------------------------------------------------------------


async def _client(settings: Settings) -> Client:
    client = await connect(settings)
    if not await has_worker(client, settings.task_queue):
        print(
            f"cairn: warning: no worker polls task queue {settings.task_queue!r} at "
            f"{settings.temporal_address}; start one with `cairn dev` or `cairn worker`",
            file=sys.stderr,
        )
    return client


async def run_chain(
    settings: Settings, text: str, *, workflow_id: str | None, console: Console | None
) -> View:
    """``cairn run chain``: start a team, print progress on ``console``, return its result."""
    spec = ChainSpec.model_validate_json(text)
    client = await _client(settings)
    workflow_id = workflow_id or f"{spec.name}-{uuid.uuid4().hex[:8]}"
    handle = await start_chain(
        client, spec, workflow_id=workflow_id, task_queue=settings.task_queue
    )
    if console is not None:
        console.print(
            Text.assemble(
                "started ", (workflow_id, "cyan"), f" (team {spec.name}, tenant {spec.tenant})"
            )
        )

    async def on_progress(progress: ChainProgress) -> None:
        if console is not None:
            running = ", ".join(progress.current) or "-"
            waiting = f"; waiting for {progress.waiting_for!r}" if progress.waiting_for else ""
            console.print(Text(f"  {progress.done} steps done; running: {running}{waiting}"))

    result = await follow_chain(handle, on_progress)
    table = Table(title=f"{workflow_id}: {result.status}", title_justify="left")
    for column in ("step", "agent", "verdict", "commit", "output"):
        table.add_column(column, justify="right" if column == "commit" else "left")
    for step in result.steps:
        preview = " ".join(step.preview.split())
        add_row(
            table, step.step, step.agent, step.verdict or "-", str(step.commit_seq), preview[:70]
        )
    data = {"workflow_id": workflow_id, "result": result.model_dump(mode="json")}
    return data, table


async def run_session(settings: Settings, text: str, *, workflow_id: str | None) -> View:
    """``cairn run session``: start a session (or find it running) and return its state."""
    inp = SessionInput.model_validate_json(text)
    canonical = session_workflow_id(inp.tenant, inp.session)
    if workflow_id not in (None, canonical):
        raise ValueError(f"a session's workflow id is always {canonical!r}; omit --id")
    client = await _client(settings)
    await start_session(client, inp, task_queue=settings.task_queue)
    state = await _wait_for_state(client, inp.tenant, inp.session)
    data = {"workflow_id": canonical, "state": state.model_dump(mode="json") if state else None}
    view = Text(
        f"session {canonical} is running"
        + (f": {state.turns} turns so far" if state else " (no worker has picked it up yet)")
    )
    return data, view


async def _wait_for_state(
    client: Client, tenant: str, session: str, timeout: float = 10.0
) -> SessionState | None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await session_state(client, tenant, session)
        except (RPCError, WorkflowQueryFailedError):
            if asyncio.get_running_loop().time() > deadline:
                return None
            await asyncio.sleep(POLL_INTERVAL)


async def session_send_turn(
    settings: Settings,
    *,
    tenant: str,
    session: str,
    user: str | None,
    text: str,
    message_id: str | None,
    model: str,
) -> View:
    """``cairn session send``: one turn, starting the session on first use."""
    inp = SessionInput(tenant=tenant, session=session, user=user, agent=support_agent(model=model))
    turn = Turn(message_id=message_id or f"m-{uuid.uuid4().hex[:12]}", text=text)
    client = await _client(settings)
    reply = await send(client, inp, turn, task_queue=settings.task_queue)
    view = Group(
        Text(reply.text),
        Text(
            f"(session {session}, turn {reply.turn}, message {reply.message_id}, "
            f"commit {reply.output.commit_seq})",
            style="dim",
        ),
    )
    return reply.model_dump(mode="json"), view


async def session_show_state(
    settings: Settings, memory_url: str, *, tenant: str, session: str, last: int
) -> View:
    """``cairn session show``: the state query and the transcript's last turns from memory."""
    client = await connect(settings)
    state = await session_state(client, tenant, session)
    items: list[StreamItem] = []
    note = ""
    try:
        store = await open_store(memory_url, create=False)
    except FileNotFoundError as error:
        note = f"(transcript unavailable: {error})"
    else:
        try:
            items = await store.tail((tenant, "session", session), "transcript", last * 2)
        finally:
            await store.close()
    data = {
        "workflow_id": session_workflow_id(tenant, session),
        "state": state.model_dump(mode="json"),
        "transcript": [i.model_dump(mode="json") for i in items],
    }
    table = Table(
        title=f"session {tenant}/{session}: {state.turns} turns"
        + (" (closed)" if state.closed else ""),
        title_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("who")
    table.add_column("said")
    for item in items:
        message = item.item if isinstance(item.item, dict) else {"content": item.item}
        who = str(message.get("name") or message.get("role") or "-")
        add_row(table, str(item.seq), who, str(message.get("content", "")))
    return data, Group(table, Text(note, style="dim")) if note else table


async def session_close(settings: Settings, *, tenant: str, session: str) -> View:
    """``cairn session end``: end the session and wait (a while) for it to close."""
    client = await connect(settings)
    end = await end_session(client, tenant, session, wait=timedelta(seconds=30))
    workflow_id = session_workflow_id(tenant, session)
    if end is None:
        data = {"workflow_id": workflow_id, "ended": False}
        return data, Text(f"asked {workflow_id} to end; it closes when a worker processes that")
    data = {"workflow_id": workflow_id, "ended": True, **end.model_dump(mode="json")}
    return data, Text(f"session {tenant}/{session} ended after {end.turns} turns ({end.reason})")
