"""What a worker knows how to run besides model ids: Python agents, scripted behaviours, tools.

>>> agents = AgentRegistry()
>>> @agents.agent("triage")
... async def triage(ctx: AgentContext) -> AgentOutput:
...     return AgentOutput(text="route to billing", handoff="billing")
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from activities.contracts import AgentSpec, MemoryWrite, StepInput
from activities.llm import ModelClient, ScriptedReply, ScriptFunction, ToolSpec
from memory.context import SUMMARY_KEY, AssembledContext, search_readable
from memory.namespace import Namespace, check_key
from memory.policy import ScopedStore


class AgentOutput(BaseModel):
    """What an agent produced: its text, an optional handoff or verdict, and memory writes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    text: str
    handoff: str | None = None
    verdict: str | None = None
    data: dict[str, JsonValue] = Field(default_factory=dict)
    writes: tuple[MemoryWrite, ...] = ()


@dataclass
class AgentContext:
    """Everything a Python agent function gets for one step."""

    spec: AgentSpec
    input: StepInput
    context: AssembledContext
    memory: ScopedStore
    model: ModelClient
    bindings: Mapping[str, Namespace]


@dataclass
class ToolContext:
    """What a tool sees: the step's scoped memory and a buffer of writes for the step's commit."""

    memory: ScopedStore
    bindings: Mapping[str, Namespace]
    writes: list[MemoryWrite] = field(default_factory=list)


AgentFunction = Callable[[AgentContext], Awaitable[AgentOutput]]
ToolFunction = Callable[[Any, ToolContext], Awaitable[JsonValue] | JsonValue]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Tool:
    """A Python function the model may call, with pydantic-validated arguments."""

    name: str
    description: str
    args: type[BaseModel]
    fn: ToolFunction

    @property
    def spec(self) -> ToolSpec:
        """The tool as offered to a model."""
        return ToolSpec(
            name=self.name, description=self.description, parameters=self.args.model_json_schema()
        )

    async def __call__(self, arguments: Mapping[str, JsonValue], ctx: ToolContext) -> JsonValue:
        """Validate ``arguments`` and run the tool."""
        result = self.fn(self.args.model_validate(dict(arguments)), ctx)
        return await result if inspect.isawaitable(result) else result


class UnknownAgent(LookupError):
    """A step named a Python agent, script or tool this worker does not have."""


class RememberArgs(BaseModel):
    """Arguments of the built-in ``remember`` tool."""

    key: str = Field(min_length=1, max_length=200, description="a short name for the fact")
    text: str = Field(min_length=1, max_length=8000, description="the fact to remember")
    where: str = Field(default="user", description='"user", "session" or "run"')


class RecallArgs(BaseModel):
    """Arguments of the built-in ``recall`` tool."""

    query: str = Field(min_length=1, max_length=2000, description="what to look for")
    where: str = Field(default="tenant", description='"tenant", "user", "session" or "run"')
    limit: int = Field(default=5, ge=1, le=20)


def _where(ctx: ToolContext, where: str) -> Namespace:
    if where not in ctx.bindings:
        raise ValueError(f"unknown memory scope {where!r}; use one of {sorted(ctx.bindings)}")
    return ctx.bindings[where]


def remember(args: RememberArgs, ctx: ToolContext) -> JsonValue:
    """Write a fact to long-term memory, within the agent's write grants, in the step's commit."""
    ns = ctx.memory.check("write", _where(ctx, args.where))
    # Checked now, so that a bad key is the model's tool error, not the whole step's failure.
    check_key(args.key)
    if args.key.startswith("output:") or args.key == SUMMARY_KEY:
        raise ValueError(f"key {args.key!r} is reserved for Cairn's own entries")
    ctx.writes.append(MemoryWrite(namespace="/".join(ns), key=args.key, value={"text": args.text}))
    return f"remembered {args.key!r}"


async def recall(args: RecallArgs, ctx: ToolContext) -> JsonValue:
    """Search long-term memory within the agent's read grants."""
    hits = await search_readable(ctx.memory, _where(ctx, args.where), args.query, limit=args.limit)
    return [{"source": "/".join(h.namespace), "key": h.key, "value": h.value} for h in hits]


BUILTIN_TOOLS = (
    Tool(
        "remember",
        "Store a fact in long-term memory for later steps and sessions.",
        RememberArgs,
        remember,
    ),
    Tool("recall", "Search long-term memory for facts and documents.", RecallArgs, recall),
)


class AgentRegistry:
    """The Python agents, scripted behaviours and tools a worker offers to agent steps."""

    def __init__(self) -> None:
        self._agents: dict[str, AgentFunction] = {}
        self._scripts: dict[str, ScriptFunction | tuple[ScriptedReply, ...]] = {}
        self._tools: dict[str, Tool] = {t.name: t for t in BUILTIN_TOOLS}

    def agent(self, name: str) -> Callable[[F], F]:
        """Register ``async def fn(ctx: AgentContext) -> AgentOutput`` as the agent ``name``.

        A step whose `AgentSpec.model` is ``"python:<name>"`` runs it.
        """

        def register(fn: F) -> F:
            self._agents[name] = fn
            return fn

        return register

    def script(self, name: str) -> Callable[[F], F]:
        """Register the offline reply function the ``"scripted"`` model uses for agent ``name``."""

        def register(fn: F) -> F:
            self._scripts[name] = fn
            return fn

        return register

    def tool(
        self, fn: ToolFunction, *, name: str | None = None, description: str | None = None
    ) -> Tool:
        """Register ``fn(args: SomeModel, ctx: ToolContext)`` as a tool.

        The first parameter's annotation, a pydantic model, defines the tool's arguments.
        """
        params = list(inspect.signature(fn, eval_str=True).parameters.values())
        args = params[0].annotation if params else None
        if not (isinstance(args, type) and issubclass(args, BaseModel)):
            raise TypeError(f"tool {fn!r}: annotate the first parameter with a pydantic model")
        tool = Tool(name or fn.__name__, description or inspect.getdoc(fn) or "", args, fn)
        self._tools[tool.name] = tool
        return tool

    def merge(self, other: AgentRegistry) -> None:
        """Add ``other``'s agents, scripts and tools (``other`` wins on equal names)."""
        self._agents.update(other._agents)
        self._scripts.update(other._scripts)
        self._tools.update(other._tools)

    def python_agent(self, name: str) -> AgentFunction:
        """The function registered as agent ``name``."""
        try:
            return self._agents[name]
        except KeyError:
            raise UnknownAgent(f"no Python agent {name!r} is registered on this worker") from None

    def script_replies(self, name: str, replies: Sequence[ScriptedReply]) -> None:
        """Register fixed replies as agent ``name``'s scripted behaviour (see `ScriptedModel`)."""
        self._scripts[name] = tuple(replies)

    def script_for(self, agent: str) -> ScriptFunction | tuple[ScriptedReply, ...] | None:
        """The scripted behaviour registered for ``agent``, if any."""
        return self._scripts.get(agent)

    def tools(self, names: tuple[str, ...]) -> dict[str, Tool]:
        """The tools named, by name."""
        missing = [n for n in names if n not in self._tools]
        if missing:
            raise UnknownAgent(f"tools not registered on this worker: {', '.join(missing)}")
        return {n: self._tools[n] for n in names}
