"""The contracts workflows pass to activities and get back: frozen pydantic models only.

Workflows import this module (through ``imports_passed_through``), so it imports nothing that
does I/O. Results carry references and short previews, never whole contexts or outputs, so a
workflow's history stays small whatever the size of its memory.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from string import Formatter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from memory.context import ContextSpec, Pinned, SearchSource
from memory.namespace import check_segment
from memory.records import MemoryRef, StoreIdentity
from memory.values import to_json

PREVIEW_CHARS = 280
# A step result names at most this many of the entry versions its step read (the full list is
# the step's lineage, stored with its commit): enough for the UI, small in history.
RESULT_READS = 32
MAX_TASK_CHARS = 32_000


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


GRANT_SCOPES = ("tenant", "run", "session", "user")
"""The placeholders a grant pattern may use; each is bound per step to a namespace path."""


def run_namespace(tenant: str, workflow_id: str) -> tuple[str, str, str]:
    """A workflow's run namespace ``(tenant, "run", <workflow id>)``.

    A workflow id that is not a valid namespace segment (too long, or with ``/`` or spaces) is
    replaced by a stable digest of it, so any id works.
    """
    try:
        segment = check_segment(workflow_id)
    except ValueError:
        segment = "wf-" + hashlib.blake2b(workflow_id.encode(), digest_size=12).hexdigest()
    return (tenant, "run", segment)


def _segment(value: str) -> str:
    return check_segment(value, "name")


def grant_scopes(pattern: str) -> tuple[str, ...]:
    """The placeholders of a grant pattern, in order; `ValueError` for a malformed pattern.

    A pattern is ``/``-separated segments, each literal, ``*`` or a placeholder such as
    ``{run}``, e.g. ``"{tenant}/docs"`` or ``"acme/session/*"``; the first is not ``*``.
    """
    try:
        parts = list(Formatter().parse(pattern))
    except ValueError as error:
        raise ValueError(f"grant {pattern!r} is malformed: {error}") from None
    scopes = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in GRANT_SCOPES or spec or conversion:
            raise ValueError(
                f"grant {pattern!r} uses {{{name}}}; placeholders are "
                + ", ".join(f"{{{s}}}" for s in GRANT_SCOPES)
            )
        scopes.append(name)
    # Check the shape with every placeholder standing for a valid namespace.
    sample = pattern.format_map({s: f"t/{s}/x" if s != "tenant" else "t" for s in GRANT_SCOPES})
    segments = sample.strip("/").split("/")
    if segments[0] == "*":
        raise ValueError(f"grant {pattern!r} must start with a tenant, not '*'")
    for segment in segments:
        if segment != "*":
            check_segment(segment, f"segment of grant {pattern!r}")
    return tuple(scopes)


MODEL_IDS = (
    '"openai:<model>" (any OpenAI-compatible endpoint)',
    '"anthropic:<model>"',
    '"python:<agent>" (a Python agent registered on the worker)',
    '"scripted" (offline: the script registered for the agent\'s name, else an echo)',
    '"scripted:<script>" (offline: the script registered under that name)',
)
"""The forms of model id an agent may name, as error messages list them."""
_PROVIDERS = ("openai", "anthropic", "python", "scripted")


def check_model_id(model: str, agent: str) -> str:
    """``model`` if it is a well-formed model id; `ValueError` naming ``agent`` otherwise."""
    provider, colon, name = model.partition(":")
    if model == "scripted" or (provider in _PROVIDERS and colon and name and name == name.strip()):
        return model
    if provider in _PROVIDERS and colon:
        problem = f"no model name after {provider + ':'!r}"
    elif colon:
        problem = f"unknown provider {provider!r}"
    else:
        problem = "no provider" + (f' (did you mean "openai:{model}"?)' if model.strip() else "")
    raise ValueError(
        f"agent {agent!r} has model {model!r}: {problem}. Valid model ids: {', '.join(MODEL_IDS)}"
    )


class AgentSpec(_Contract):
    """An agent: who it is, which model runs it, what it sees and what it may touch.

    ``model`` is required: see `MODEL_IDS`. The offline ``"scripted"`` model replies with the
    script a worker registered for the agent's name (`AgentRegistry.script` or
    `AgentRegistry.script_replies`), or echoes the task when there is none; it is for tests
    and demos and is never chosen for you.

    Grant patterns may use ``{tenant}``, ``{run}``, ``{session}`` and ``{user}``, bound per step
    to that step's namespaces (a pattern naming an unbound one is dropped).
    """

    name: str
    instructions: str = Field(max_length=MAX_TASK_CHARS)
    model: str
    context: ContextSpec = ContextSpec()
    reads: tuple[str, ...] = ("{run}", "{session}", "{user}", "{tenant}/docs")
    writes: tuple[str, ...] = ("{run}", "{session}")
    tools: tuple[str, ...] = ()
    max_tool_rounds: int = Field(default=4, ge=0, le=32)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return _segment(value)

    @field_validator("reads", "writes")
    @classmethod
    def _check_grants(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            grant_scopes(pattern)
        return patterns

    @model_validator(mode="before")
    @classmethod
    def _require_model(cls, data: Any) -> Any:
        # Checked before the fields, so the message names the agent and the valid ids rather
        # than pydantic's bare "Field required".
        if isinstance(data, dict) and "model" not in data:
            raise ValueError(
                f"agent {data.get('name', '?')!r} names no model; set model= to one of: "
                + ", ".join(MODEL_IDS)
            )
        return data

    @model_validator(mode="after")
    def _check_model(self) -> AgentSpec:
        check_model_id(self.model, self.name)
        return self


class StepInput(_Contract):
    """One agent step. The run namespace is ``(tenant, "run", <workflow id>)``."""

    agent: AgentSpec
    step: str
    task: str = Field(max_length=MAX_TASK_CHARS)
    tenant: str
    session: str | None = None
    user: str | None = None
    user_message: bool = False
    """Record ``task`` in the session transcript as the user's turn (in the step's commit)."""
    preview_chars: int = Field(default=PREVIEW_CHARS, ge=0, le=8000)
    """How much of the output `StepResult.preview` carries (a session's reply needs it all)."""
    store: StoreIdentity | None = None
    """The memory store the workflow began on (None until a step told it); checked."""

    @field_validator("step", "tenant", "session", "user")
    @classmethod
    def _check_names(cls, value: str | None) -> str | None:
        return value if value is None else _segment(value)


class StepUsage(_Contract):
    """Tokens a step used, summed over its model calls (each one's is an `activities.llm.Usage`)."""

    input_tokens: int = 0
    output_tokens: int = 0


class ToolCallRecord(_Contract):
    """A tool call made inside a step (arguments and result are in the run's ``tools`` stream)."""

    name: str
    ok: bool


class StepRecord(_Contract):
    """What a step did: stored with its commit, so any step can be inspected and reconstructed."""

    step: str
    agent: str
    model: str
    offline: bool
    input_refs: tuple[MemoryRef, ...]
    """Everything the step read: its context's references, then what its tools read."""
    tool_calls: tuple[ToolCallRecord, ...] = ()
    usage: StepUsage = StepUsage()
    latency_ms: int = 0
    context_tokens: int = 0
    preview: str = ""
    handoff: str | None = None
    verdict: str | None = None


class StepResult(_Contract):
    """An agent step's outcome as the workflow sees it: references and a preview."""

    step: str
    agent: str
    output: MemoryRef
    commit_seq: int
    preview: str
    handoff: str | None = None
    verdict: str | None = None
    usage: StepUsage = StepUsage()
    model: str
    offline: bool
    store: StoreIdentity | None = None
    """The memory store the step ran against (None in results recorded before it was added)."""
    reads: tuple[MemoryRef, ...] = ()
    """The entry versions the step read, through its context or its tools (at most
    `RESULT_READS`; transcript items and the rest are in `StepRecord.input_refs`)."""


class CompactInput(_Contract):
    """Summarize the oldest part of a session transcript when it exceeds ``budget_tokens``."""

    tenant: str
    session: str
    stream: str = "transcript"
    budget_tokens: int = Field(default=4000, ge=100)
    keep_recent: int = Field(default=10, ge=1)
    model: str = "scripted"
    store: StoreIdentity | None = None
    """The memory store the workflow began on, when known; checked."""

    @field_validator("tenant", "session", "stream")
    @classmethod
    def _check_names(cls, value: str) -> str:
        return _segment(value)


class CompactResult(_Contract):
    """Whether a summary was written, and the reference to it."""

    compacted: bool
    summary: MemoryRef | None = None
    covers_until: int = 0


class MemoryWrite(_Contract):
    """One put for `MemoryActivities.write_memory`: ``namespace`` is a ``tenant/...`` path."""

    namespace: str
    key: str
    value: JsonValue
    tags: tuple[str, ...] = ()

    @field_validator("value")
    @classmethod
    def _check_value(cls, value: JsonValue) -> JsonValue:
        # Refused here, where it is made, rather than changed on the way: the payload
        # converter silently replaces a lone surrogate in an object key with U+FFFD.
        to_json(value, "value")
        return value


class WriteInput(_Contract):
    """Writes a workflow makes directly (ingesting documents, recording a human decision)."""

    tenant: str
    writes: tuple[MemoryWrite, ...]
    agent: str = "workflow"
    store: StoreIdentity | None = None
    """The memory store the workflow began on, when known; checked."""

    @field_validator("tenant")
    @classmethod
    def _check_tenant(cls, value: str) -> str:
        return _segment(value)


SESSION_KEY = "session"
"""The key of a session's `SessionRecord`, in the session's namespace."""


class SessionRecord(_Contract):
    """What memory knows of a session (``<tenant>/session/<id>``, key `SESSION_KEY`).

    Written when the session opens and again when it ends or goes idle, so that a later
    start under the same id continues its turn numbering, or is refused once it has ended.
    """

    agent: str
    user: str | None = None
    turns: int = 0
    ended: bool = False
    ended_at: datetime | None = None


class OpenSession(_Contract):
    """Open a session that starts fresh (not continued as new): see `SessionOpened`."""

    tenant: str
    session: str
    agent: str
    user: str | None = None
    store: StoreIdentity | None = None

    @field_validator("tenant", "session", "agent", "user")
    @classmethod
    def _check_names(cls, value: str | None) -> str | None:
        return value if value is None else _segment(value)


class SessionOpened(_Contract):
    """The turns the session already had (it resumes after them); its memory store."""

    turns: int
    store: StoreIdentity | None = None


class WriteResult(_Contract):
    """References to what `write_memory` wrote."""

    commit_seq: int
    refs: tuple[MemoryRef, ...]
    store: StoreIdentity | None = None
    """The memory store written to."""


__all__ = [
    "AGENT_STEP",
    "COMPACT_TRANSCRIPT",
    "GRANT_SCOPES",
    "MODEL_IDS",
    "OPEN_SESSION",
    "SESSION_KEY",
    "WRITE_MEMORY",
    "AgentSpec",
    "CompactInput",
    "CompactResult",
    "ContextSpec",
    "MemoryRef",
    "MemoryWrite",
    "OpenSession",
    "Pinned",
    "SearchSource",
    "SessionOpened",
    "SessionRecord",
    "StepInput",
    "StepRecord",
    "StepResult",
    "StepUsage",
    "ToolCallRecord",
    "WriteInput",
    "WriteResult",
    "check_model_id",
    "grant_scopes",
]

# Activity names: workflows call activities by these, never by importing their implementations.
AGENT_STEP = "agent_step"
COMPACT_TRANSCRIPT = "compact_transcript"
OPEN_SESSION = "open_session"
WRITE_MEMORY = "write_memory"
