"""The ``agent_step`` and ``compact_transcript`` activities: exactly-once agent steps.

A step's commit key is derived from ``activity.info()``: workflow id, run id (activity ids
restart after continue-as-new) and activity id. The whole step runs inside
``store.commit(key=...)``, whose entry already tells whether the key was applied: a retry after
a crash that followed the commit returns the stored result without calling the model again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import JsonValue, ValidationError
from temporalio import activity

from activities import telemetry
from activities.compaction import compact, extractive_summary
from activities.contracts import (
    RESULT_READS,
    CompactInput,
    CompactResult,
    StepInput,
    StepRecord,
    StepResult,
    StepUsage,
    ToolCallRecord,
    grant_scopes,
    run_namespace,
)
from activities.failures import temporal_failures
from activities.heartbeat import heartbeating
from activities.lineage import RecordingStore, lineage
from activities.llm import (
    SCRIPTED,
    ChatMessage,
    ModelClient,
    ProviderSettings,
    ScriptedModel,
    resolve_model,
)
from activities.provenance import activity_commit_key, activity_provenance, check_store
from activities.registry import (
    AgentContext,
    AgentOutput,
    AgentRegistry,
    Tool,
    ToolContext,
    UnknownAgent,
)
from memory import Grants, MemoryStoreError, StoreIdentity
from memory.context import AssembledContext, build_context, default_counter
from memory.errors import InvalidInput
from memory.namespace import Namespace, parse
from memory.policy import ScopedCommit, ScopedStore

if TYPE_CHECKING:
    from memory.store import MemoryStore

MAX_TOOL_RESULT_CHARS = 8000


def bindings_for(
    tenant: str, workflow_id: str, session: str | None, user: str | None
) -> dict[str, Namespace]:
    """The namespaces a step's symbolic names (``run``, ``session``, ...) stand for."""
    bound: dict[str, Namespace] = {"tenant": (tenant,), "run": run_namespace(tenant, workflow_id)}
    if session:
        bound["session"] = (tenant, "session", session)
    if user:
        bound["user"] = (tenant, "user", user)
    return bound


def expand_grants(patterns: tuple[str, ...], bindings: Mapping[str, Namespace]) -> tuple[str, ...]:
    """Substitute ``{run}``-style placeholders; drop patterns naming an unbound one."""
    values = {name: "/".join(ns) for name, ns in bindings.items()}
    return tuple(
        pattern.format_map(values)
        for pattern in patterns
        if all(scope in values for scope in grant_scopes(pattern))
    )


def _tool_text(result: JsonValue) -> str:
    """A tool's result as the model reads it: JSON (or the string itself), capped in size."""
    text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
    if len(text) > MAX_TOOL_RESULT_CHARS:
        return text[:MAX_TOOL_RESULT_CHARS] + " ...[truncated]"
    return text


def _markers(text: str) -> tuple[str | None, str | None]:
    """``HANDOFF: <agent>`` and ``VERDICT: <word>`` lines a model may end its reply with."""
    handoff = verdict = None
    for line in text.splitlines():
        head, _, tail = line.strip().partition(":")
        word = tail.strip().split()[0].strip(".").lower() if tail.strip() else None
        if head.upper() == "HANDOFF" and word:
            handoff = word
        elif head.upper() == "VERDICT" and word:
            verdict = word
    return handoff, verdict


class AgentActivities:
    """Agent steps and transcript compaction over one memory store.

    Args:
        store: The shared memory.
        registry: Python agents, scripted behaviours and tools this worker offers.
        providers: Credentials and endpoints of real model providers.
        capture_content: Record prompts and replies in spans (off unless asked for).

    Extension point: a subclass may override `checkpoint`; a ``CAIRN_EXTENSIONS`` module
    hands the worker such a subclass as ``agent_activities``.
    """

    def __init__(
        self,
        store: MemoryStore,
        registry: AgentRegistry | None = None,
        providers: ProviderSettings | None = None,
        capture_content: bool = False,
    ) -> None:
        self.store = store
        self.capture_content = capture_content
        self.registry = registry or AgentRegistry()
        self.providers = providers or ProviderSettings()
        self.count = default_counter()

    async def checkpoint(self, point: str) -> None:
        """Called at the points of a step where it may be observed or interrupted; a no-op here.

        ``"before_commit"``: the step's output is computed and its commit not yet applied.
        ``"after_commit"``: the commit is applied (or was, on an earlier attempt) and the
        result not yet returned. Subclasses override this, e.g. a test extension that crashes
        the process there to prove that a retried step never writes or calls its model twice.

        Args:
            point: ``"before_commit"`` or ``"after_commit"``.
        """

    def model_for(self, agent: str, model_id: str) -> ModelClient:
        """The client for an agent's model.

        ``scripted`` uses the script registered for the agent's name (an echo without one);
        ``scripted:<script>`` the script registered under that name, which must exist.
        """
        if model_id == SCRIPTED:
            return ScriptedModel(self.registry.script_for(agent))
        if model_id.startswith(SCRIPTED + ":"):
            name = model_id.removeprefix(SCRIPTED + ":")
            script = self.registry.script_for(name)
            if script is None:
                raise UnknownAgent(f"no script {name!r} is registered on this worker")
            return ScriptedModel(script)
        return resolve_model(model_id, providers=self.providers)

    @activity.defn(name="agent_step")
    async def agent_step(self, inp: StepInput) -> StepResult:
        """Build context, run the agent, and commit its output and memory writes exactly once."""
        with (
            temporal_failures(),
            telemetry.step_span(inp.agent.name, inp.step, capture_content=self.capture_content),
        ):
            # The whole step heartbeats (context, tools, commit too): its heartbeat timeout is
            # a few seconds, so that a killed worker's step runs again soon.
            return await heartbeating(self._step(inp), f"{inp.agent.name}: {inp.step}")

    async def _step(self, inp: StepInput) -> StepResult:
        info = activity.info()
        assert info.workflow_id is not None, "agent_step runs inside a workflow"
        identity = check_store(self.store, inp.store)
        agent = inp.agent
        bindings = bindings_for(inp.tenant, info.workflow_id, inp.session, inp.user)
        grants = Grants(
            read=expand_grants(agent.reads, bindings), write=expand_grants(agent.writes, bindings)
        )
        memory = self.store.scoped(agent.name, grants)
        provenance = activity_provenance(inp.tenant, agent.name)
        key = activity_commit_key("step")
        async with memory.commit(key=key, provenance=provenance) as commit:
            if not commit.replayed:
                started = time.monotonic()
                record = await self._run(inp, bindings, memory, commit)
                await self.checkpoint("before_commit")
                latency = int((time.monotonic() - started) * 1000)
                commit.result = record.model_copy(update={"latency_ms": latency}).model_dump(
                    mode="json"
                )
        await self.checkpoint("after_commit")
        return self._result(commit, bindings["run"], identity)

    @staticmethod
    def _result(commit: ScopedCommit, run: Namespace, store: StoreIdentity) -> StepResult:
        if commit.result is None:
            raise InvalidInput(f"step commit {commit.key!r} was forgotten; its result is gone")
        record = StepRecord.model_validate(commit.result)
        # A tool may have written a key of the same name elsewhere in the same commit.
        output = next(
            w
            for w in commit.writes
            if w.kind == "entry" and w.namespace == run and w.key == f"output:{record.step}"
        )
        assert commit.seq is not None
        return StepResult(
            step=record.step,
            agent=record.agent,
            output=output,
            commit_seq=commit.seq,
            preview=record.preview,
            handoff=record.handoff,
            verdict=record.verdict,
            usage=record.usage,
            model=record.model,
            offline=record.offline,
            store=store,
            reads=tuple(r for r in record.input_refs if r.kind == "entry")[:RESULT_READS],
        )

    async def _run(
        self,
        inp: StepInput,
        bindings: dict[str, Namespace],
        memory: ScopedStore,
        commit: ScopedCommit,
    ) -> StepRecord:
        agent = inp.agent
        # The step's own writes: a spec that cannot make them fails before any model call.
        memory.check("write", bindings["run"])
        if "session" in bindings:
            memory.check("write", bindings["session"])
        with telemetry.context_span(agent.name, capture_content=self.capture_content) as span:
            context = await build_context(
                memory,
                agent.context,
                instructions=agent.instructions,
                task=inp.task,
                bindings=bindings,
                count=self.count,
            )
            span.set_attribute("cairn.context.tokens", context.tokens)
            span.set_attribute("cairn.context.refs", len(context.refs))
        # Reads past the context (tools, agent code) go through this, into the lineage.
        reading = RecordingStore(memory)
        tool_ctx = ToolContext(memory=reading, bindings=bindings)
        if agent.model.startswith("python:"):
            fn = self.registry.python_agent(agent.model.removeprefix("python:"))
            model = self.model_for(agent.name, SCRIPTED)
            ctx = AgentContext(agent, inp, context, reading, model, bindings)
            output = await heartbeating(fn(ctx), agent.name)
            model_id, offline, usage = agent.model, True, StepUsage()
            calls: list[ToolCallRecord] = []
        else:
            output, model_id, offline, usage, calls = await self._model_loop(
                inp, context, tool_ctx, commit
            )

        for write in (*tool_ctx.writes, *output.writes):
            commit.put(parse(write.namespace), write.key, write.value, tags=write.tags)
        value = {
            "text": output.text,
            "agent": agent.name,
            "step": inp.step,
            "handoff": output.handoff,
            "verdict": output.verdict,
            "data": output.data,
        }
        commit.put(bindings["run"], f"output:{inp.step}", value)
        if "session" in bindings:
            transcript = bindings["session"], agent.context.transcript_stream
            if inp.user_message:
                commit.append(*transcript, {"role": "user", "content": inp.task})
            reply = {"role": "assistant", "content": output.text, "name": agent.name}
            commit.append(*transcript, reply)
        return StepRecord(
            step=inp.step,
            agent=agent.name,
            model=model_id,
            offline=offline,
            input_refs=lineage(context.refs, reading.reads),
            tool_calls=tuple(calls),
            usage=usage,
            context_tokens=context.tokens,
            preview=output.text[: inp.preview_chars],
            handoff=output.handoff,
            verdict=output.verdict,
        )

    async def _model_loop(
        self, inp: StepInput, context: AssembledContext, tool_ctx: ToolContext, commit: ScopedCommit
    ) -> tuple[AgentOutput, str, bool, StepUsage, list[ToolCallRecord]]:
        """Call the model, running the tools it asks for, at most ``max_tool_rounds`` times."""
        agent = inp.agent
        model = self.model_for(agent.name, agent.model)
        tools = self.registry.tools(agent.tools)
        convo = [ChatMessage(role=m.role, content=m.content, name=m.name) for m in context.messages]
        convo.append(ChatMessage(role="user", content=inp.task))
        usage = StepUsage()
        calls: list[ToolCallRecord] = []
        for round_ in range(agent.max_tool_rounds + 1):
            # The last round offers no tools, so the loop ends with an answer.
            offered = [t.spec for t in tools.values()] if round_ < agent.max_tool_rounds else []
            reply = await heartbeating(
                telemetry.complete(
                    model,
                    agent.name,
                    system=context.system,
                    messages=convo,
                    tools=offered,
                    capture_content=self.capture_content,
                ),
                f"{agent.name}: model call {round_ + 1}",
            )
            usage = StepUsage(
                input_tokens=usage.input_tokens + reply.usage.input_tokens,
                output_tokens=usage.output_tokens + reply.usage.output_tokens,
            )
            if not reply.tool_calls or not offered:
                break  # tool calls in a reply offered no tools are not run
            convo.append(
                ChatMessage(role="assistant", content=reply.text, tool_calls=reply.tool_calls)
            )
            for call in reply.tool_calls:
                result, ok = await self._call_tool(tools, call.name, call.arguments, tool_ctx)
                calls.append(ToolCallRecord(name=call.name, ok=ok))
                text = _tool_text(result)
                record = {"step": inp.step, "tool": call.name, "arguments": call.arguments}
                commit.append(tool_ctx.bindings["run"], "tools", {**record, "result": text})
                convo.append(
                    ChatMessage(role="tool", content=text, tool_call_id=call.id, name=call.name)
                )
        handoff, verdict = _markers(reply.text)
        output = AgentOutput(text=reply.text, handoff=handoff, verdict=verdict)
        return output, reply.model, reply.offline, usage, calls

    @staticmethod
    async def _call_tool(
        tools: Mapping[str, object], name: str, arguments: Mapping[str, JsonValue], ctx: ToolContext
    ) -> tuple[JsonValue, bool]:

        tool = tools.get(name)
        if not isinstance(tool, Tool):
            return f"error: no tool named {name!r}", False
        try:
            return await tool(arguments, ctx), True
        except (ValidationError, ValueError, MemoryStoreError) as error:
            # The model sees the error and may correct itself; the step goes on.
            return f"error: {error}", False

    @activity.defn(name="compact_transcript")
    async def compact_transcript(self, inp: CompactInput) -> CompactResult:
        """Summarize the oldest part of a transcript over budget into the summary entry, once."""
        with temporal_failures():
            check_store(self.store, inp.store)
            # An agent's own script (``scripted:<script>``) answers as the agent, not as a
            # summarizer: every offline model compacts with the compactor's script.
            model_id = SCRIPTED if inp.model.startswith(SCRIPTED + ":") else inp.model
            model = self.model_for("compactor", model_id)
            if model_id == SCRIPTED and self.registry.script_for("compactor") is None:
                model = ScriptedModel(extractive_summary)
            return await heartbeating(compact(self.store, model, inp), "compacting")
