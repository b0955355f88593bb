"""A workflow that schedules ``agent_step`` with whatever input it is given (deterministic).

A workflow of another version, or of another language, can send an activity an input that is
not its contract; this one does so on purpose, for tests/fault/test_malformed.py.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=4)


@workflow.defn
class SendRawStepInput:
    @workflow.run
    async def run(self, payload: dict[str, object]) -> None:
        await workflow.execute_activity(
            "agent_step",
            payload,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RETRY,
        )
