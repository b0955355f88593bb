"""`CairnHistory`: PydanticAI message history kept in Cairn, sent to model requests by reference.

Under ``TemporalDurability`` every model request is an activity whose input carries the whole
message history, so a conversation's dispatches grow with every turn. With this capability
the conversation is the stream ``messages`` of ``(tenant, "conversation", <conversation id>)``
(a stream log, `activities.streams`): before each model request the messages not yet stored
are appended to it (through an activity inside a workflow, so exactly once under retries), and
the request carries only a reference to them plus its own newest message. On the worker, the
model the activity runs is wrapped so that it reads the referenced messages back before it is
called; outside Temporal the same wrapper reads them from the store directly.

A conversation is like a session: start each run with ``conversation_id=`` and no
``message_history`` (the stored conversation is the history), one run at a time per
conversation. Continue-as-new needs to carry only the conversation id. Put `CairnHistory`
before ``TemporalDurability`` in ``capabilities=[...]``, and give the worker's instance the
store with `CairnHistory.bind`.

Deps are sent with every activity too. Mark a large one by keeping it in Cairn
(`CairnHistory.keep`, from the workflow) and putting the `MemoryRef` it returns in the deps;
tools (which run in activities) read it back with `CairnHistory.load`.

Needs the ``pydantic-ai`` extra. In workflow code, import it inside
``workflow.unsafe.imports_passed_through()``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from pydantic import JsonValue
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.exceptions import UserError
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
)
from pydantic_ai.models.wrapper import WrapperModel
from temporalio import workflow

from activities.contracts import WRITE_MEMORY, MemoryWrite, WriteInput, WriteResult
from activities.streams import AppendItems, StreamLogRef
from cairn.integrations import stream_log
from memory.errors import InvalidInput
from memory.namespace import check_segment
from memory.records import MemoryRef, Provenance

if TYPE_CHECKING:
    from pydantic_ai.models import (
        Model,
        ModelRequestContext,
        ModelRequestParameters,
        StreamedResponse,
    )
    from pydantic_ai.run import AgentRunResult
    from pydantic_ai.settings import ModelSettings
    from pydantic_ai.tools import RunContext

    from memory.store import MemoryStore

__all__ = ["REFERENCE_KEY", "CairnHistory"]

REFERENCE_KEY = "cairn_history"
"""The metadata key of the placeholder message that stands for the stored history."""


@dataclass
class CairnHistory(AbstractCapability[Any]):
    """Keep each conversation's messages in Cairn and send model requests references to them.

    Args:
        tenant: The tenant the conversations belong to (the namespace's first segment).
        store: The memory store; None until `bind` in processes that only run workflows.
        agent: Recorded as the writer in every commit's provenance.
    """

    tenant: str
    store: MemoryStore | None = None
    agent: str = "pydantic-ai"
    _stored: int = field(default=0, repr=False)
    """How many of this run's messages (``ctx.messages``) are in the conversation's stream."""

    def __post_init__(self) -> None:
        check_segment(self.tenant, "tenant")

    def bind(self, store: MemoryStore) -> CairnHistory:
        """Give this (the worker's) instance the store it reads and writes; returns ``self``."""
        self.store = store
        return self

    def log(self, conversation_id: str) -> StreamLogRef:
        """The stream log holding one conversation.

        Raises:
            UserError: ``conversation_id`` is not a namespace segment (PydanticAI's Temporal
                plugin fails the workflow on it, rather than retrying its task forever).
        """
        try:
            check_segment(conversation_id, "conversation id")
        except InvalidInput as error:
            raise UserError(str(error)) from None
        ns = (self.tenant, "conversation", conversation_id)
        return StreamLogRef(namespace=ns, stream="messages", agent=self.agent)

    async def history(self, conversation_id: str) -> list[ModelMessage]:
        """A conversation's stored messages (outside workflows), e.g. for display."""
        read = await stream_log.read(self.store, self.log(conversation_id), None, "history")
        return ModelMessagesTypeAdapter.validate_python(read.items)

    async def keep(self, conversation_id: str, key: str, value: object) -> MemoryRef:
        """Store a large value (for deps) beside a conversation; returns its reference.

        Inside a workflow this is the ``write_memory`` activity, applied once per activity.
        """
        ns = self.log(conversation_id).namespace
        if workflow.in_workflow():
            write = MemoryWrite(namespace="/".join(ns), key=key, value=cast("JsonValue", value))
            result: WriteResult = await workflow.execute_activity(
                WRITE_MEMORY,
                WriteInput(tenant=self.tenant, writes=(write,), agent=self.agent),
                result_type=WriteResult,
                start_to_close_timeout=stream_log.STREAM_ACTIVITY_TIMEOUT,
                retry_policy=stream_log.STREAM_ACTIVITY_RETRY,
                summary=f"history {conversation_id}: keep {key}",
            )
            return result.refs[0]
        provenance = Provenance(tenant=self.tenant, agent=self.agent)
        async with stream_log.require_store(self.store, "CairnHistory").commit(
            provenance=provenance
        ) as commit:
            commit.put(ns, key, value)
        return commit.writes[0]

    async def load(self, ref: MemoryRef) -> Any:
        """The value `keep` stored under ``ref`` (in activities, tools, or outside Temporal)."""
        if workflow.in_workflow():
            raise UserError(
                "CairnHistory.load reads the store: call it from a tool, not workflow code"
            )
        entry = await stream_log.require_store(self.store, "CairnHistory").get(
            ref.namespace, ref.key, as_of=ref.commit_seq
        )
        return entry.value

    # -- capability hooks -------------------------------------------------------------------

    async def for_run(self, ctx: RunContext[Any]) -> AbstractCapability[Any]:
        """A fresh instance per run: it counts the run's stored messages."""
        return replace(self, _stored=0)

    async def before_model_request(
        self, ctx: RunContext[Any], request_context: ModelRequestContext
    ) -> ModelRequestContext:
        """Store the run's messages before the newest exchange, and send a reference to them.

        The newest exchange (the last request, and the response whose tool calls it may answer)
        goes inline; the placeholder is of the other kind than the message after it, so
        PydanticAI's history cleaning neither merges it away nor orphans a tool result.
        """
        messages = list(request_context.messages)
        if not messages:
            return request_context
        log = self.log(self._conversation(ctx))
        start = len(messages) - 1
        if start > 0 and isinstance(messages[start - 1], ModelResponse):
            start -= 1
        await self._store_messages(log, messages[:start])
        ref = {REFERENCE_KEY: log.model_dump(mode="json")}
        placeholder: ModelMessage = (
            ModelRequest(parts=[], metadata=ref)
            if isinstance(messages[start], ModelResponse)
            else ModelResponse(parts=[], metadata=ref)
        )
        request_context.messages = [placeholder, *messages[start:]]
        return request_context

    async def after_run(
        self, ctx: RunContext[Any], *, result: AgentRunResult[Any]
    ) -> AgentRunResult[Any]:
        """Store what the run added since its last model request (its final response)."""
        await self._store_messages(self.log(self._conversation(ctx)), list(result.new_messages()))
        return result

    def get_wrapper_model(self, model: Model) -> Model | None:
        """Wrap the model that serves each request so it reads the referenced history."""
        return _ReadsReferencedHistory(model, self)

    # -- plumbing ---------------------------------------------------------------------------

    @staticmethod
    def _conversation(ctx: RunContext[Any]) -> str:
        if ctx.conversation_id is None:
            raise ValueError(
                "CairnHistory needs a conversation: agent.run(..., conversation_id=...)"
            )
        return ctx.conversation_id

    async def _store_messages(self, log: StreamLogRef, messages: Sequence[ModelMessage]) -> None:
        new = list(messages[self._stored :])
        if not new:
            return
        items = ModelMessagesTypeAdapter.dump_python(new, mode="json")
        inp = AppendItems(log=log, items=items)
        await stream_log.append(self.store, inp, f"history {log.namespace[-1]}: store {len(new)}")
        self._stored += len(new)

    async def resolve(self, messages: list[ModelMessage]) -> list[ModelMessage]:
        """``messages`` with the placeholder replaced by the stored messages it stands for."""
        ref = (messages[0].metadata or {}).get(REFERENCE_KEY) if messages else None
        if ref is None:
            return messages
        log = StreamLogRef.model_validate(ref)
        read = await stream_log.read(self.store, log, None, "history")
        return [*ModelMessagesTypeAdapter.validate_python(read.items), *messages[1:]]


class _ReadsReferencedHistory(WrapperModel):
    """The model a request is served by, fed the stored history its placeholder stands for."""

    def __init__(self, wrapped: Model, history: CairnHistory) -> None:
        super().__init__(wrapped)
        self._history = history

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        messages = await self._history.resolve(messages)
        return await self.wrapped.request(messages, model_settings, model_request_parameters)

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncGenerator[StreamedResponse]:
        messages = await self._history.resolve(messages)
        async with self.wrapped.request_stream(
            messages, model_settings, model_request_parameters, run_context
        ) as stream:
            yield stream
