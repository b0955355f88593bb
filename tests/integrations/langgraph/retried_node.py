"""A workflow running one activity, by name, that fails its first attempt (deterministic)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy


@workflow.defn
class RetriedNode:
    @workflow.run
    async def run(self, run: str) -> int:
        result: int = await workflow.execute_activity(
            "write_then_fail_once",
            run,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50)),
        )
        return result
