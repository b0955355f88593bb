"""The PydanticAI agents and workflows `bench.pydantic_history` measures (imported lazily: the
``pydantic-ai`` extra is optional)."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic_ai import Agent
    from pydantic_ai.durable_exec.temporal import TemporalDurability
    from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    from cairn.integrations.pydantic_ai import CairnHistory

REPLY = "Noted; " + "details follow. " * 6


def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """A reply of fixed size, so only the history grows from turn to turn."""
    return ModelResponse(parts=[TextPart(REPLY)])


HISTORY = CairnHistory(tenant="bench")
BY_REFERENCE = Agent(
    FunctionModel(answer), name="bench_ref", capabilities=[HISTORY, TemporalDurability()]
)
BY_VALUE = Agent(FunctionModel(answer), name="bench_value", capabilities=[TemporalDurability()])


class Turns(BaseModel):
    conversation_id: str
    turns: int


def prompt(turn: int) -> str:
    return f"Turn {turn}: what changed since the last report?"


@workflow.defn
class HistoryByReferenceWorkflow:
    """``turns`` runs in one Cairn conversation: each request carries a reference."""

    __pydantic_ai_agents__ = (BY_REFERENCE,)

    @workflow.run
    async def run(self, inp: Turns) -> int:
        for turn in range(1, inp.turns + 1):
            await BY_REFERENCE.run(prompt(turn), conversation_id=inp.conversation_id)
        return inp.turns


@workflow.defn
class HistoryByValueWorkflow:
    """The same turns the usual way: every run is given the whole history."""

    __pydantic_ai_agents__ = (BY_VALUE,)

    @workflow.run
    async def run(self, inp: Turns) -> int:
        history: list[ModelMessage] = []
        for turn in range(1, inp.turns + 1):
            history = (await BY_VALUE.run(prompt(turn), message_history=history)).all_messages()
        return inp.turns
