"""Workflow inputs, outputs, updates and queries: frozen pydantic models, small by design.

A team is data: a `ChainSpec` holds its agents and a list of nodes (agent steps, parallel
groups, handoff routing, review loops, human approvals, memory writes and sub-teams). Every
model here crosses Temporal, so each holds references and previews, never whole contexts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from activities.contracts import MAX_TASK_CHARS, AgentSpec, MemoryWrite, StepResult
from memory.namespace import check_segment
from memory.records import StoreIdentity
from workflows.links import DEFAULT_UI_URL


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _name(value: str) -> str:
    return check_segment(value, "name")


class Step(_Contract):
    """Run one agent.

    ``task`` may use ``{input}`` (the chain's input); ``sees`` names earlier steps whose outputs
    the agent reads (by reference, through memory).
    """

    kind: Literal["step"] = "step"
    agent: str
    name: str | None = None
    task: str = "{input}"
    sees: tuple[str, ...] = ()

    @property
    def step_name(self) -> str:
        """The step's name in memory (``output:<name>``); defaults to the agent's name."""
        return self.name or self.agent


class Parallel(_Contract):
    """Fan out: run the steps at once, continue when all are done (fan in)."""

    kind: Literal["parallel"] = "parallel"
    steps: tuple[Step, ...] = Field(min_length=1, max_length=64)


class Handoff(_Contract):
    """Routing by handoff.

    Run ``start``; while an agent's output hands off to another agent of the team, run that
    one next (it sees the previous output), at most ``max_hops`` times.
    """

    kind: Literal["handoff"] = "handoff"
    start: Step
    max_hops: int = Field(default=4, ge=1, le=32)


class Loop(_Contract):
    """A review loop: run ``steps`` in order until the last one's verdict is ``until``."""

    kind: Literal["loop"] = "loop"
    steps: tuple[Step, ...] = Field(min_length=1)
    until: str = "approve"
    max_rounds: int = Field(default=3, ge=1, le=100)


class Approval(_Contract):
    """Wait for a person.

    The ``decide`` update approves or rejects (optionally editing the output of the step named
    by ``edits``); when ``timeout`` passes first, ``default`` applies.
    """

    kind: Literal["approval"] = "approval"
    name: str = "approval"
    prompt: str = "Approve the result?"
    edits: str | None = None
    timeout: timedelta = timedelta(hours=24)
    default: Literal["approve", "reject"] = "reject"


class Write(_Contract):
    """Write values to memory directly (e.g. ingest documents for later recall)."""

    kind: Literal["write"] = "write"
    writes: tuple[MemoryWrite, ...] = Field(min_length=1)


class SubTeam(_Contract):
    """Run another team as a child workflow: its own run namespace, the same session."""

    kind: Literal["team"] = "team"
    team: ChainSpec
    task: str = "{input}"


Node = Annotated[
    Step | Parallel | Handoff | Loop | Approval | Write | SubTeam, Field(discriminator="kind")
]


class ChainResume(_Contract):
    """Where a chain that continued as new resumes: what its earlier runs did."""

    next_node: int = Field(ge=1)
    """The index of the first node this run has to run."""
    results: tuple[StepResult, ...] = ()
    children: tuple[str, ...] = ()


class ChainSpec(_Contract):
    """A team as data: its agents and what they do, in order."""

    name: str
    tenant: str
    agents: tuple[AgentSpec, ...] = Field(min_length=1)
    nodes: tuple[Node, ...] = Field(min_length=1)
    input: str = Field(default="", max_length=MAX_TASK_CHARS)
    session: str | None = None
    user: str | None = None
    resume: ChainResume | None = None
    """Set by the workflow itself when it continues as new; never by a starter."""
    store: StoreIdentity | None = None
    """The memory store the chain began on: set by the workflow for its next run after
    continue-as-new and for its sub-teams, so that each of their steps checks it."""
    ui_url: str | None = DEFAULT_UI_URL
    """The Cairn UI its current details link to (``CAIRN_UI_URL``); None: no link."""

    @field_validator("name", "tenant")
    @classmethod
    def _check_names(cls, value: str) -> str:
        return _name(value)

    @field_validator("user")
    @classmethod
    def _check_user(cls, value: str | None) -> str | None:
        # The user names the namespace its facts go to and, with encryption, the data key
        # its payloads are sealed under (`workflows.ids.chain_workflow_id`).
        return value if value is None else check_segment(value, "user")

    @model_validator(mode="after")
    def _agents_known(self) -> ChainSpec:
        if self.resume is not None and self.resume.next_node >= len(self.nodes):
            raise ValueError(
                f"resume.next_node must name one of the {len(self.nodes)} nodes, "
                f"got {self.resume.next_node}"
            )
        known = {a.name for a in self.agents}
        if len(known) != len(self.agents):
            raise ValueError("agent names must be unique within a team")
        steps = _steps(self.nodes)
        for step in steps:
            if step.agent not in known:
                raise ValueError(f"step uses agent {step.agent!r}, which the team does not define")
        step_names = _step_names(self.nodes, steps, known)
        for step in steps:
            for seen in step.sees:
                if seen not in step_names:
                    raise ValueError(
                        f"step {step.step_name!r} sees {seen!r}, which names no step of team "
                        f"{self.name!r}; its steps are {sorted(step_names)}"
                    )
        for node in self.nodes:
            if isinstance(node, Parallel):
                names = [s.step_name for s in node.steps]
                if len(set(names)) != len(names):
                    # Parallel steps of one name would race for one output key.
                    raise ValueError(f"parallel steps need distinct names, got {names}")
            elif (
                isinstance(node, Approval)
                and node.edits is not None
                and (node.edits not in step_names)
            ):
                raise ValueError(
                    f"approval {node.name!r} edits {node.edits!r}, which names no step of team "
                    f"{self.name!r}; its steps are {sorted(step_names)}"
                )
            elif isinstance(node, SubTeam) and node.team.tenant != self.tenant:
                raise ValueError(
                    f"sub-team {node.team.name!r} is in tenant {node.team.tenant!r}, "
                    f"not {self.tenant!r}"
                )
        return self

    def agent(self, name: str) -> AgentSpec:
        """The team's agent called ``name``."""
        return next(a for a in self.agents if a.name == name)


def _steps(nodes: tuple[Node, ...]) -> list[Step]:
    out: list[Step] = []
    for node in nodes:
        if isinstance(node, Step):
            out.append(node)
        elif isinstance(node, (Parallel, Loop)):
            out.extend(node.steps)
        elif isinstance(node, Handoff):
            out.append(node.start)
    return out


def _step_names(nodes: tuple[Node, ...], steps: list[Step], agents: set[str]) -> set[str]:
    """The names a step of these nodes may be known by, handoff hops (``<agent>-hop<n>``) too."""
    names = {s.step_name for s in steps}
    for node in nodes:
        if isinstance(node, Handoff):
            # Any agent may be handed to; hops take the names the workflow gives them.
            hops = range(1, node.max_hops + 1)
            names.update(f"{agent}-hop{n}" for agent in agents for n in hops)
    return names


STEP_PREVIEW_CHARS = 80
"""How much of each step's preview `ChainResult.steps` keeps (``final`` keeps all of its own)."""


class ChainResult(_Contract):
    """How a chain ended, with a reference to every step's output.

    ``steps`` hold each step's `StepResult` with its preview cut to `STEP_PREVIEW_CHARS` and
    without the store identity (``final`` has it), since this result grows with every step and
    is recorded in the workflow's history; the outputs themselves are in memory.
    """

    status: Literal["completed", "rejected"]
    steps: tuple[StepResult, ...]
    final: StepResult | None = None
    children: tuple[str, ...] = ()


class ChainProgress(_Contract):
    """The ``progress`` query's answer."""

    status: str
    done: int
    current: tuple[str, ...]
    waiting_for: str | None = None


class Decision(_Contract):
    """The ``decide`` update: a person's answer to a pending approval."""

    approval: str = "approval"
    approve: bool
    edit: str | None = Field(default=None, max_length=32_000)
    by: str = "someone"

    @field_validator("edit", "by")
    @classmethod
    def _check_text(cls, value: str | None) -> str | None:
        # Refused here, as the update arrives: the workflow writes both to memory, and a lone
        # surrogate (JSON can carry one) is not text memory can store.
        if value is not None:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("must be valid Unicode (no lone surrogates)") from None
        return value


class DecisionAck(_Contract):
    """What ``decide`` returns."""

    approval: str
    approved: bool


class Turn(_Contract):
    """A user's turn in a session: the ``send`` update.

    Resending the same ``message_id`` returns the first reply instead of processing the turn
    again.
    """

    message_id: str
    text: str = Field(min_length=1, max_length=32_000)
    user: str | None = None
    """Who sends it, when the sender knows: a turn for another user than the session's is
    refused."""

    @field_validator("message_id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        return _name(value)

    @field_validator("user")
    @classmethod
    def _check_user(cls, value: str | None) -> str | None:
        return value if value is None else check_segment(value, "user")


class Reply(_Contract):
    """The agent's reply to a turn (the ``send`` update's result)."""

    message_id: str
    text: str
    output: StepResult
    turn: int


class SessionInput(_Contract):
    """Start (or continue) a session. Carried across continue-as-new, so it stays small."""

    tenant: str
    session: str
    agent: AgentSpec
    user: str | None = None
    idle_timeout: timedelta = timedelta(hours=1)
    turns_per_run: int = Field(default=500, ge=1)
    compact_budget: int = Field(default=4000, ge=100)
    turns: int = 0
    replies: tuple[Reply, ...] = ()
    """The most recent replies, for answering resent turns after continue-as-new."""
    store: StoreIdentity | None = None
    """The memory store the session began on, carried across continue-as-new."""
    ui_url: str | None = DEFAULT_UI_URL
    """The Cairn UI its current details link to (``CAIRN_UI_URL``); None: no link."""

    @field_validator("tenant", "session")
    @classmethod
    def _check_names(cls, value: str) -> str:
        return _name(value)

    @field_validator("user")
    @classmethod
    def _check_user(cls, value: str | None) -> str | None:
        # Checked before the workflow exists: the user names the namespace its facts go to.
        return value if value is None else check_segment(value, "user")


class SessionState(_Contract):
    """The ``state`` query's answer."""

    tenant: str
    session: str
    turns: int
    turns_this_run: int
    last_reply: str | None
    closed: bool


class SessionEnd(_Contract):
    """How a session ended."""

    turns: int
    reason: Literal["ended", "idle", "refused"]
    """``refused``: memory says the session had ended (or belongs to another user); it
    served no turn."""


SubTeam.model_rebuild()
