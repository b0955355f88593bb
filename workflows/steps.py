"""The one helper every workflow runs agent steps with (deterministic).

Activity options are named constants here, so every workflow retries and times out the same
way: transient failures (a model's 429/5xx, an unreachable database) back off and retry.
Which failures are caller mistakes is decided once, by the activities
(`activities.failures`), which raise those as non-retryable ``ApplicationError``s; the retry
policy does not keep a second list of them.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        AGENT_STEP,
        COMPACT_TRANSCRIPT,
        PREVIEW_CHARS,
        WRITE_MEMORY,
        AgentSpec,
        CompactInput,
        CompactResult,
        StepInput,
        StepResult,
        WriteInput,
        WriteResult,
    )

STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=20,
)
STEP_START_TO_CLOSE = timedelta(minutes=10)
# Activities heartbeat every few seconds while a model call runs; a silent worker is dead.
STEP_HEARTBEAT = timedelta(seconds=30)
MEMORY_START_TO_CLOSE = timedelta(minutes=1)


async def run_step(
    agent: AgentSpec,
    step: str,
    task: str,
    *,
    tenant: str,
    session: str | None = None,
    user: str | None = None,
    user_message: bool = False,
    preview_chars: int = PREVIEW_CHARS,
) -> StepResult:
    """Run one agent step as an activity and return its `StepResult` (references only)."""
    result: StepResult = await workflow.execute_activity(
        AGENT_STEP,
        StepInput(
            agent=agent,
            step=step,
            task=task,
            tenant=tenant,
            session=session,
            user=user,
            user_message=user_message,
            preview_chars=preview_chars,
        ),
        result_type=StepResult,
        start_to_close_timeout=STEP_START_TO_CLOSE,
        heartbeat_timeout=STEP_HEARTBEAT,
        retry_policy=STEP_RETRY,
        summary=f"{agent.name}: {step}",
    )
    return result


async def compact(inp: CompactInput) -> CompactResult:
    """Run transcript compaction (a no-op when the transcript is within budget)."""
    result: CompactResult = await workflow.execute_activity(
        COMPACT_TRANSCRIPT,
        inp,
        result_type=CompactResult,
        start_to_close_timeout=STEP_START_TO_CLOSE,
        heartbeat_timeout=STEP_HEARTBEAT,
        retry_policy=STEP_RETRY,
        summary=f"compact transcript of {inp.session}",
    )
    return result


async def write_memory(inp: WriteInput, summary: str) -> WriteResult:
    """Write values to memory directly, exactly once."""
    result: WriteResult = await workflow.execute_activity(
        WRITE_MEMORY,
        inp,
        result_type=WriteResult,
        start_to_close_timeout=MEMORY_START_TO_CLOSE,
        retry_policy=STEP_RETRY,
        summary=summary,
    )
    return result
