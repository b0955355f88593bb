"""The soak load, closed-loop, and everything its clients were told (the recorded history).

Three kinds of client run until ``stop`` is set, each starting its next operation as soon as
the last one is acknowledged:

- chain drivers start chains (a parallel group, then one chain in `FULL_EVERY` a review loop
  and an approval, then a final step), answer each approval through the ``decide`` update,
  and wait for the result;
- session users, several per session, send turns through update-with-start, resending the
  same message id until a reply comes back; each session continues as new along the way;
- memory writers contend on a few shared keys with compare-and-set, appending each operation
  to a log in the same commit, and append to a shared stream alone.

Every call that fails for a reason a fault explains (an RPC error while the dev server is down,
`StoreUnavailable` while PostgreSQL is cut off) is retried until the phase's deadline.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from activities import AgentRegistry
from memory import ConflictError, MemoryStore, NotFound, StoreUnavailable
from memory.context import ContextSpec
from tests.fault.checker import History, Outcome
from tests.workflows.harness import Team, agent
from workflows.chain import ChainWorkflow, team_search_attributes
from workflows.contracts import (
    Approval,
    ChainResult,
    ChainSpec,
    Decision,
    Loop,
    Parallel,
    Reply,
    SessionEnd,
    SessionInput,
    Step,
)
from workflows.session import SessionWorkflow, session_workflow_id

TENANT = "soak"
DRIVER = "driver"
SHARED = (TENANT, "shared")
CAS_KEYS = tuple(f"k{i}" for i in range(4))
FULL_EVERY = 4
"""One chain in this many has a review loop and an approval; the rest are short, so that
minutes of load run hundreds of workflows while every kind of node still runs under faults."""
SESSION_TURNS = (2, 3)
"""How many turns a session takes, between them, before it is ended (inclusive range)."""
TURNS_PER_RUN = 2
"""Sessions continue as new every this many turns: each crosses at least one run boundary."""
WRITER_PAUSE = 0.1
"""Between a memory writer's operations. At this pace one compare-and-set in seven still
conflicts (four writers, four keys); faster, the writers only took CPU from the workflows (the
soak shares two cores with its dev server, workers and PostgreSQL)."""
APPROVAL_POLL = 1.0
"""Between a chain driver's queries for a pending approval (each is a query task on a worker)."""
TRANSIENT = (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError)
"""What a client sees while the dev server is down or restarting: worth retrying."""
T = TypeVar("T")


@dataclass
class ChainRun:
    id: str
    full: bool
    """With a review loop and an approval (every `FULL_EVERY`-th chain of a driver)."""
    result: ChainResult | None = None
    error: str | None = None


@dataclass
class SessionRun:
    session: str
    turns: int
    """How many turns its users take between them before it is ended."""
    sent: dict[str, str] = field(default_factory=dict)
    """Message id to turn text, for every turn sent."""
    replies: dict[str, Reply] = field(default_factory=dict)
    """Message id to the reply acknowledged."""
    end: SessionEnd | None = None
    error: str | None = None


@dataclass
class Writes:
    """Direct memory writers' history: compare-and-set per key, the log and the events."""

    keys: dict[str, str] = field(default_factory=dict)
    """CAS operation id to the key it wrote."""
    cas: History = field(default_factory=History)
    events: History = field(default_factory=History)
    conflicts: int = 0
    unavailable: int = 0


def chain_spec(name: str, full: bool, approve_first_review: bool) -> ChainSpec:
    """A parallel group, (``full``) a review loop and an approval, then a step."""
    nodes: list[Any] = [
        Parallel(steps=(Step(agent="soak", name="part-a"), Step(agent="soak", name="part-b")))
    ]
    if full:
        review = (Step(agent="soak", name="draft"), Step(agent="review", name="review"))
        nodes += [Loop(steps=review, max_rounds=2), Approval(timeout=timedelta(minutes=30))]
    return ChainSpec(
        name="soak",
        tenant=TENANT,
        agents=(agent("soak", "scripted"), agent("review", "scripted")),
        input=name + ("!" if approve_first_review else ""),
        nodes=(*nodes, Step(agent="soak", name="final")),
    )


def described(error: BaseException) -> str:
    """The error's type and message, and its cause's (a failed update's says why)."""
    cause = getattr(error, "cause", None) or error.__cause__
    text = f"{type(error).__name__}: {error}"
    return f"{text} ({type(cause).__name__}: {cause})" if cause else text


class Load:
    """One phase of the load against one task queue; see the module docstring."""

    def __init__(
        self,
        client: Client,
        task_queue: str,
        store: MemoryStore,
        *,
        seed: int,
        phase: str,
        chains: int,
        sessions: int,
        users: int,
        writers: int,
    ) -> None:
        self.client, self.task_queue, self.store = client, task_queue, store
        self.team = Team(client, task_queue, store, AgentRegistry())
        self.rng = random.Random(seed)
        self.phase = phase
        self.shape = (chains, sessions, users, writers)
        self.stop = asyncio.Event()
        self.deadline = float("inf")
        """Monotonic time after which retries give up (set when the phase drains)."""
        self.chains: list[ChainRun] = []
        self.sessions: list[SessionRun] = []
        self.writes = Writes()
        self.refusals: list[str] = []
        """Approvals refused on their first send while the chain said it waited (and why)."""
        self.acks: list[tuple[float, str]] = []
        """(monotonic time, kind) of every acknowledged operation."""

    async def run(self) -> None:
        """Run every client until `stop`; then end the sessions and wait for the chains."""
        chains, sessions, users, writers = self.shape
        await asyncio.gather(
            *(self._chain_driver(c) for c in range(chains)),
            *(self._conversations(s, users) for s in range(sessions)),
            *(self._writer(w) for w in range(writers)),
        )

    async def retry(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` until it returns, through transient errors, until the deadline."""
        delay = 0.2
        while True:
            try:
                return await asyncio.wait_for(call(), 60)
            except TRANSIENT:
                if time.monotonic() > self.deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _ack(self, kind: str) -> None:
        self.acks.append((time.monotonic(), kind))

    async def _chain_driver(self, c: int) -> None:
        n = 0
        while not self.stop.is_set():
            run = ChainRun(
                f"soak-{self.phase}-c{c}-{n}-{uuid.uuid4().hex[:6]}", (n + c) % FULL_EVERY == 0
            )
            n += 1
            self.chains.append(run)
            try:
                run.result = await self._chain(run.id, run.full, self.rng.random() < 0.5)
                self._ack("chain")
            except Exception as error:  # recorded; the checker reports it
                run.error = described(error)

    async def _chain(self, id: str, full: bool, approve_first: bool) -> ChainResult:
        spec = chain_spec(id, full, approve_first)
        handle: WorkflowHandle[Any, ChainResult] = await self.retry(
            lambda: self.client.start_workflow(
                ChainWorkflow.run,
                spec,
                id=id,
                task_queue=self.task_queue,
                search_attributes=team_search_attributes(spec),
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
        )
        while full:
            progress = await self.retry(lambda: handle.query(ChainWorkflow.progress))
            if progress.waiting_for == "approval":
                await self._decide(handle)
                self._ack("approval")
                break
            await asyncio.sleep(APPROVAL_POLL)  # polling a query: there is no push for "waiting"
        return await self.retry(
            lambda: self.client.get_workflow_handle(id, result_type=ChainResult).result()
        )

    async def _decide(self, handle: WorkflowHandle[Any, ChainResult]) -> None:
        """Approve, resending through transient errors; a resend may find it decided.

        A first send refused although the chain said it waits is recorded in `refusals`
        (the report lists them) and sent again while the chain still waits, as a person
        would: the checker then finds the approval recorded once, by the driver, or reports it.
        """
        resent = False
        while True:
            try:
                await asyncio.wait_for(
                    handle.execute_update(ChainWorkflow.decide, Decision(approve=True, by=DRIVER)),
                    60,
                )
                return
            except TRANSIENT:
                if time.monotonic() > self.deadline:
                    raise
                resent = True
                await asyncio.sleep(0.5)
            except WorkflowUpdateFailedError as error:
                cause = str(error.cause)
                # An earlier send was applied unseen: the approval is decided, or already past.
                if resent and any(m in cause for m in ("already", "no pending")):
                    return
                self.refusals.append(f"{handle.id}: {cause}")
                if len(self.refusals) > 50 or time.monotonic() > self.deadline:
                    raise RuntimeError(f"decide refused: {cause}") from error
                progress = await self.retry(lambda: handle.query(ChainWorkflow.progress))
                if progress.waiting_for != "approval":
                    return  # decided by the refused send after all, or past the approval
                resent = True
                await asyncio.sleep(0.5)

    def _session_input(self, run: SessionRun) -> SessionInput:
        return SessionInput(
            tenant=TENANT,
            session=run.session,
            agent=agent("soak", "scripted", context=ContextSpec(last_messages=6)),
            turns_per_run=TURNS_PER_RUN,
        )

    async def _conversations(self, slot: int, users: int) -> None:
        """Sessions one after another, each of a few turns by ``users`` users at once."""
        n = 0
        while not self.stop.is_set():
            run = SessionRun(f"{self.phase}-s{slot}-{n}", self.rng.randint(*SESSION_TURNS))
            n += 1
            self.sessions.append(run)
            inp = self._session_input(run)
            await asyncio.gather(*(self._user(run, inp, u) for u in range(users)))
            await self._end(run)

    async def _end(self, run: SessionRun) -> None:
        handle = self.client.get_workflow_handle(
            session_workflow_id(TENANT, run.session), result_type=SessionEnd
        )
        try:
            if not run.replies:
                return
            await self.retry(lambda: handle.signal(SessionWorkflow.end))
            run.end = await self.retry(
                lambda: self.client.get_workflow_handle(handle.id, result_type=SessionEnd).result()
            )
            self._ack("session")
        except Exception as error:
            run.error = described(error)

    async def _user(self, run: SessionRun, inp: SessionInput, user: int) -> None:
        k = 0
        while not self.stop.is_set() and len(run.sent) < run.turns:
            msg = f"{run.session}-u{user}-{k}"
            text = f"user {user} of {run.session} says {k}"
            k += 1
            run.sent[msg] = text
            try:
                run.replies[msg] = await self.retry(lambda: self.team.send(inp, msg, text))  # noqa: B023
                self._ack("turn")
            except Exception as error:
                run.error = f"{msg}: {described(error)}"
                return

    async def _writer(self, w: int) -> None:
        i = 0
        while not self.stop.is_set():
            op = f"{self.phase}-w{w}-{i}"
            i += 1
            if i % 3:
                self.writes.cas.record(op, await self._cas(op, self.rng.choice(CAS_KEYS)))
            else:
                self.writes.events.record(op, await self._append(op))
            await asyncio.sleep(WRITER_PAUSE)

    async def _cas(self, op: str, key: str) -> Outcome:
        self.writes.keys[op] = key
        try:
            entry = await self.store.get(SHARED, key)
            version, prev = entry.version, entry.value["op"]  # type: ignore[index,call-overload]
        except NotFound:
            version, prev = 0, None
        except StoreUnavailable:
            self.writes.unavailable += 1
            return "failed"  # nothing was attempted
        return await self._commit(op, lambda c: self._put(c, key, op, prev, version))

    @staticmethod
    def _put(commit: Any, key: str, op: str, prev: object, version: int) -> None:
        commit.put(SHARED, key, {"op": op, "prev": prev}, expected_version=version)
        commit.append(SHARED, "log", op)

    async def _append(self, op: str) -> Outcome:
        return await self._commit(op, lambda c: c.append(SHARED, "events", op))

    async def _commit(self, op: str, body: Callable[[Any], None]) -> Outcome:
        """Commit under key ``op``, retrying the same key through outages (a replay is a
        success seen late); `ConflictError` means nothing was applied."""
        while True:
            try:
                async with self.store.commit(key=op) as commit:
                    if not commit.replayed:
                        body(commit)
            except ConflictError:
                self.writes.conflicts += 1
                return "failed"
            except StoreUnavailable:
                self.writes.unavailable += 1
                if time.monotonic() > self.deadline:
                    return "unknown"
                await asyncio.sleep(0.3)
                continue
            self._ack("memory")
            return "ok"
