"""Tiny workflows that run the activities on the real dev server (deterministic)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ConfigDict

    from activities.contracts import (
        AGENT_STEP,
        COMPACT_TRANSCRIPT,
        WRITE_MEMORY,
        CompactInput,
        CompactResult,
        StepInput,
        StepResult,
        WriteInput,
        WriteResult,
    )

RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5)
TIMEOUT = timedelta(seconds=30)


class Steps(BaseModel):
    """Agent steps to run one after another."""

    model_config = ConfigDict(frozen=True)
    steps: tuple[StepInput, ...]


class StepResults(BaseModel):
    model_config = ConfigDict(frozen=True)
    results: tuple[StepResult, ...]


@workflow.defn
class StepsWorkflow:
    @workflow.run
    async def run(self, plan: Steps) -> StepResults:
        results = []
        for step in plan.steps:
            result = await workflow.execute_activity(
                AGENT_STEP,
                step,
                result_type=StepResult,
                start_to_close_timeout=TIMEOUT,
                retry_policy=RETRY,
            )
            results.append(result)
        return StepResults(results=tuple(results))


@workflow.defn
class CompactWorkflow:
    @workflow.run
    async def run(self, inp: CompactInput) -> CompactResult:
        result: CompactResult = await workflow.execute_activity(
            COMPACT_TRANSCRIPT,
            inp,
            result_type=CompactResult,
            start_to_close_timeout=TIMEOUT,
            retry_policy=RETRY,
        )
        return result


@workflow.defn
class WriteWorkflow:
    @workflow.run
    async def run(self, inp: WriteInput) -> WriteResult:
        result: WriteResult = await workflow.execute_activity(
            WRITE_MEMORY,
            inp,
            result_type=WriteResult,
            start_to_close_timeout=TIMEOUT,
            retry_policy=RETRY,
        )
        return result


WORKFLOWS = [StepsWorkflow, CompactWorkflow, WriteWorkflow]
