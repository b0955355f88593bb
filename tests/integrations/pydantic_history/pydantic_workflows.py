"""A PydanticAI agent under ``TemporalDurability`` whose history is a Cairn conversation."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic_ai import Agent, RunContext
    from pydantic_ai.durable_exec.temporal import TemporalDurability
    from pydantic_ai.messages import (
        ModelMessage,
        ModelResponse,
        TextPart,
        ToolCallPart,
        ToolReturnPart,
        UserPromptPart,
    )
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    from cairn.integrations.pydantic_ai import CairnHistory
    from memory import MemoryRef


def recall(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Replies with every user prompt it was sent, so a test can see the history it got."""
    prompts = [
        str(part.content)
        for message in messages
        for part in message.parts
        if isinstance(part, UserPromptPart)
    ]
    return ModelResponse(parts=[TextPart(" | ".join(prompts))])


HISTORY = CairnHistory(tenant="acme")
AGENT = Agent(FunctionModel(recall), name="recall", capabilities=[HISTORY, TemporalDurability()])
PLAIN_AGENT = Agent(FunctionModel(recall), name="recall_plain", capabilities=[TemporalDurability()])


class Chat(BaseModel):
    conversation_id: str
    prompts: list[str]
    replies: list[str] = []
    continue_after: int | None = None


@workflow.defn
class ChatWorkflow:
    """One agent run per prompt in one Cairn conversation; continue-as-new carries its id."""

    __pydantic_ai_agents__ = (AGENT,)

    @workflow.run
    async def run(self, chat: Chat) -> list[str]:
        replies = list(chat.replies)
        for turn, prompt in enumerate(chat.prompts, start=1):
            result = await AGENT.run(prompt, conversation_id=chat.conversation_id)
            replies.append(result.output)
            if chat.continue_after == turn:
                rest = {"prompts": chat.prompts[turn:], "replies": replies, "continue_after": None}
                workflow.continue_as_new(chat.model_copy(update=rest))
        return replies


@workflow.defn
class PlainChatWorkflow:
    """The same conversation the usual way: the whole history passed to every run."""

    __pydantic_ai_agents__ = (PLAIN_AGENT,)

    @workflow.run
    async def run(self, chat: Chat) -> list[str]:
        history: list[ModelMessage] = []
        replies = []
        for prompt in chat.prompts:
            result = await PLAIN_AGENT.run(prompt, message_history=history)
            history = result.all_messages()
            replies.append(result.output)
        return replies


class ManualDeps(BaseModel):
    manual: MemoryRef
    """A large document, kept in Cairn: only this reference rides each activity."""


def measure_then_answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Calls ``manual_size``, then answers with what it returned."""
    returned = [p for p in messages[-1].parts if isinstance(p, ToolReturnPart)]
    if returned:
        return ModelResponse(parts=[TextPart(str(returned[0].content))])
    return ModelResponse(parts=[ToolCallPart("manual_size", {})])


MANUAL_AGENT = Agent(
    FunctionModel(measure_then_answer),
    name="manual",
    deps_type=ManualDeps,
    capabilities=[HISTORY, TemporalDurability()],
)


@MANUAL_AGENT.tool
async def manual_size(ctx: RunContext[ManualDeps]) -> int:
    """The manual's length in characters."""
    return len(await HISTORY.load(ctx.deps.manual))


@workflow.defn
class ManualWorkflow:
    """Keeps a large manual in Cairn once, then runs an agent whose tool reads it."""

    __pydantic_ai_agents__ = (MANUAL_AGENT,)

    @workflow.run
    async def run(self, chat: Chat) -> str:
        ref = await HISTORY.keep(chat.conversation_id, "manual", "m" * 200_000)
        deps = ManualDeps(manual=ref)
        result = await MANUAL_AGENT.run(
            chat.prompts[0], deps=deps, conversation_id=chat.conversation_id
        )
        return result.output
