"""A workflow as a user writes one from the README: plain Temporal code calling `run_step`."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ConfigDict

    from activities.contracts import AgentSpec, StepResult
    from workflows.steps import run_step


class Ask(BaseModel):
    """Two questions for one agent in one session."""

    model_config = ConfigDict(frozen=True)
    tenant: str
    session: str
    agent: AgentSpec
    questions: tuple[str, ...]


@workflow.defn
class AskTwice:
    @workflow.run
    async def run(self, ask: Ask) -> list[StepResult]:
        results = []
        for i, question in enumerate(ask.questions, start=1):
            result = await run_step(
                ask.agent, f"ask-{i}", question, tenant=ask.tenant, session=ask.session
            )
            results.append(result)
        return results
