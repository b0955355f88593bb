"""Workflows that run an OpenAI Agents agent under Temporal's plugin with a `CairnSession`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from agents import Agent, Runner

    from cairn.integrations.openai_agents import CairnSession


class Conversation(BaseModel):
    tenant: str
    session_id: str
    prompts: list[str]
    replies: list[str] = []
    continue_after: int | None = None
    """Continue as new after this many turns of this run."""
    extra_item_bytes: int = 0
    """Add one item of this many bytes before the turns (to exercise the size cap)."""


@workflow.defn
class ConversationWorkflow:
    """One user turn per prompt, all in one `CairnSession`; the replies in order."""

    @workflow.run
    async def run(self, conv: Conversation) -> list[str]:
        session = CairnSession(conv.session_id, tenant=conv.tenant, max_item_bytes=64 * 1024)
        if conv.extra_item_bytes:
            await session.add_items([{"role": "user", "content": "x" * conv.extra_item_bytes}])
        agent = Agent(name="assistant", instructions="Answer briefly.", model="gpt-test")
        replies = list(conv.replies)
        for turn, prompt in enumerate(conv.prompts, start=1):
            result = await Runner.run(agent, prompt, session=session)
            replies.append(str(result.final_output))
            if conv.continue_after == turn:
                rest = conv.prompts[turn:]
                workflow.continue_as_new(
                    conv.model_copy(
                        update={"prompts": rest, "replies": replies, "continue_after": None}
                    )
                )
        return replies


@workflow.defn
class PopWorkflow:
    """Pops the newest item of a session and returns it."""

    @workflow.run
    async def run(self, conv: Conversation) -> dict[str, Any] | None:
        popped = await CairnSession(conv.session_id, tenant=conv.tenant).pop_item()
        return None if popped is None else dict(popped)
