"""Stream activities that fail once after committing, as a worker does that dies between its
commit and reporting the activity complete (registered under the real activity names)."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities.streams import (
    APPEND_STREAM_ITEMS,
    POP_STREAM_ITEM,
    AppendedItems,
    AppendItems,
    LogChange,
    PoppedItem,
    StreamActivities,
)


class FailAfterCommit(StreamActivities):
    """Each append and pop fails on its first attempt, after its commit; ``attempts`` logs
    every attempt's number."""

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self.attempts: list[int] = []

    @activity.defn(name=APPEND_STREAM_ITEMS)
    async def append_stream_items(self, inp: AppendItems) -> AppendedItems:
        result = await super().append_stream_items(inp)
        return self._fail_first(result)

    @activity.defn(name=POP_STREAM_ITEM)
    async def pop_stream_item(self, inp: LogChange) -> PoppedItem:
        result = await super().pop_stream_item(inp)
        return self._fail_first(result)

    def _fail_first(self, result: Any) -> Any:
        self.attempts.append(activity.info().attempt)
        if activity.info().attempt == 1:
            raise RuntimeError("lost after the commit")
        return result
