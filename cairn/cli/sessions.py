"""``cairn session ...`` and ``cairn run session``: conversations from the command line.

Each command takes the settings to connect with and returns a `View`. A turn is checked before
anything starts (its input, the user against the running session's, a session that was ended),
and a connection lost during a turn names the message id to resend it with.
"""

from __future__ import annotations

import asyncio
import shlex
import uuid
from datetime import timedelta
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError, RPCStatusCode

from cairn.cli.errors import CommandError
from cairn.cli.memory import View, add_row, open_store, plural
from cairn.cli.runs import (
    POLL_INTERVAL,
    client_for,
    end_session,
    send,
    session_state,
    start_session,
)
from cairn.runtime import Settings, connect
from cairn.telemetry import Telemetry
from memory import StreamItem
from memory.namespace import check_segment
from workflows.contracts import SessionInput, SessionState, Turn
from workflows.session import SessionWorkflow, session_workflow_id
from workflows.teams import support_agent


async def run_session(settings: Settings, text: str, *, workflow_id: str | None) -> View:
    """``cairn run session``: start a session (or find it running) and return its state."""
    inp = SessionInput.model_validate_json(text)
    canonical = session_workflow_id(inp.tenant, inp.session)
    if workflow_id not in (None, canonical):
        raise ValueError(f"a session's workflow id is always {canonical!r}; omit --id")
    client = await client_for(settings)
    await start_session(client, inp, task_queue=settings.task_queue)
    state = await _wait_for_state(client, inp.tenant, inp.session)
    data = {"workflow_id": canonical, "state": state.model_dump(mode="json") if state else None}
    view = Text(
        f"session {canonical} is running"
        + (
            f": {plural(state.turns, 'turn')} so far"
            if state
            else " (no worker has picked it up yet)"
        )
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
    tracing: Telemetry | None = None,
) -> View:
    """``cairn session send``: one turn, starting the session on first use.

    Everything is checked before anything starts: the input, that ``user`` is the running
    session's, and that the session was not ended. A session that closed because it sat idle
    resumes, its turns numbered on. A connection lost during the turn is a `TurnInterrupted`
    naming the message id to resend it with.
    """
    if user is not None:
        # A user that is no valid namespace segment would fail every turn of the session.
        check_segment(user, "--user")
    inp = SessionInput(tenant=tenant, session=session, user=user, agent=support_agent(model=model))
    turn = Turn(message_id=message_id or f"m-{uuid.uuid4().hex[:12]}", text=text)
    client = await client_for(settings, tracing)
    inp = await _resumable(client, inp)
    try:
        reply = await send(client, inp, turn, task_queue=settings.task_queue)
    except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError, asyncio.CancelledError) as error:
        if isinstance(error, RPCError) and error.status not in _LOST:
            raise
        raise TurnInterrupted(inp, turn, error) from error
    view = Group(
        Text(reply.text),
        Text(
            f"(session {session}, turn {reply.turn}, message {reply.message_id}, "
            f"commit {reply.output.commit_seq})",
            style="dim",
        ),
    )
    return reply.model_dump(mode="json"), view


# What a connection lost mid-call looks like; the turn may or may not have been processed.
_LOST = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.INTERNAL,
    }
)


class TurnInterrupted(CommandError):
    """The connection to Temporal ended before a turn's reply arrived.

    The message says how to resend the turn safely: with the same message id, a turn already
    processed is answered from the session instead of running again.
    """

    def __init__(self, inp: SessionInput, turn: Turn, error: BaseException) -> None:
        if isinstance(error, RPCError):
            what = f"the connection to Temporal failed ({error.status.name})"
        elif isinstance(error, asyncio.CancelledError):
            what = "interrupted"
        else:
            what = "Temporal did not answer in time"
        resend = shlex.join(
            ["cairn", "session", "send", inp.session, turn.text, "--message-id", turn.message_id]
        )
        if inp.tenant != "acme":
            resend += f" --tenant {shlex.quote(inp.tenant)}"
        super().__init__(
            f"{what} before the reply to message {turn.message_id} arrived; it may or may not "
            f"have been processed. Resend it safely (it runs at most once) with: {resend}"
        )
        self.message_id = turn.message_id


async def _resumable(client: Client, inp: SessionInput) -> SessionInput:
    """``inp``, checked against the session's workflow if it has one (see `session_send_turn`)."""
    workflow_id = session_workflow_id(inp.tenant, inp.session)
    handle = client.get_workflow_handle_for(SessionWorkflow.run, workflow_id)
    try:
        described = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return inp  # a new session
        raise
    if described.status == WorkflowExecutionStatus.RUNNING:
        _check_user(inp, await _started_with(client, handle))
        return inp
    end = await handle.result() if described.status == WorkflowExecutionStatus.COMPLETED else None
    if end is None or end.reason != "idle":
        if end is not None:
            how = "was ended" if end.reason == "ended" else f"closed ({end.reason})"
        else:
            how = f"is {described.status.name.lower() if described.status else 'closed'}"
        raise ValueError(
            f"session {inp.session!r} {how}; start another session name (its memory stays: "
            f"cairn session show {inp.session}"
            + (f" --tenant {inp.tenant}" if inp.tenant != "acme" else "")
            + ")"
        )
    # An idle session resumes as it was: its agent, user and idle timeout, not this command's
    # defaults (a 1 s session resumed with the 1 h default never closed again). It starts
    # fresh, so the workflow's `open_session` resumes the turn count from memory and refuses
    # an ended session or another user's, as for any new run.
    last = await _started_with(client, handle)
    if last is None:
        return inp
    _check_user(inp, last)
    return last.model_copy(update={"turns": 0, "replies": (), "store": None})


def _check_user(inp: SessionInput, started: SessionInput | None) -> None:
    """Refuse ``--user`` when it is not the user the session's run started with."""
    if inp.user is not None and started is not None and started.user != inp.user:
        owner = f"user {started.user!r}" if started.user else "no user"
        raise ValueError(
            f"session {inp.session!r} belongs to {owner}, not {inp.user!r}; "
            "send without --user, or start another session"
        )


async def _started_with(client: Client, handle: WorkflowHandle[Any, Any]) -> SessionInput | None:
    """The `SessionInput` the session's current run started with."""
    async for event in handle.fetch_history_events():
        attrs = event.workflow_execution_started_event_attributes
        payloads = list(attrs.input.payloads)
        if not payloads:
            return None
        [inp] = await client.data_converter.decode(payloads, [SessionInput])
        return inp if isinstance(inp, SessionInput) else None
    return None


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
        title=f"session {tenant}/{session}: {plural(state.turns, 'turn')}"
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
    return data, Text(
        f"session {tenant}/{session} ended after {plural(end.turns, 'turn')} ({end.reason})"
    )
