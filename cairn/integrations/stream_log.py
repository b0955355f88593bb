"""How the integrations reach a stream log (`activities.streams`) from wherever they run.

Inside a workflow each call is an activity, with the options below; anywhere else it goes to
the store directly. Each call takes the store (None in workflow code) and a summary for the
Temporal UI.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy

from activities.streams import (
    APPEND_STREAM_ITEMS,
    CLEAR_STREAM,
    POP_STREAM_ITEM,
    READ_STREAM_ITEMS,
    AppendedItems,
    AppendItems,
    LogChange,
    LogItems,
    PoppedItem,
    ReadItems,
    StreamLogRef,
    append_log,
    clear_log,
    pop_log,
    read_log,
)
from memory.records import Provenance

if TYPE_CHECKING:
    from memory.store import MemoryStore

STREAM_ACTIVITY_TIMEOUT = timedelta(minutes=1)
STREAM_ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=30,
)


def require_store(store: MemoryStore | None, owner: str) -> MemoryStore:
    """``store``, or a clear error naming ``owner`` when it has none (outside a workflow)."""
    if store is None:
        raise RuntimeError(f"{owner} outside a workflow needs a store (pass store=...)")
    return store


def _provenance(log: StreamLogRef) -> Provenance:
    return Provenance(tenant=log.namespace[0], agent=log.agent)


async def _activity(name: str, arg: Any, result_type: type[Any], summary: str) -> Any:
    return await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=STREAM_ACTIVITY_TIMEOUT,
        retry_policy=STREAM_ACTIVITY_RETRY,
        summary=summary,
    )


async def append(store: MemoryStore | None, inp: AppendItems, summary: str) -> AppendedItems:
    """Append items to a log (exactly once per activity execution inside a workflow)."""
    if workflow.in_workflow():
        result: AppendedItems = await _activity(APPEND_STREAM_ITEMS, inp, AppendedItems, summary)
        return result
    return await append_log(require_store(store, summary), inp, provenance=_provenance(inp.log))


async def read(
    store: MemoryStore | None, log: StreamLogRef, limit: int | None, summary: str
) -> LogItems:
    """A log's live items (the last ``limit``, or all), oldest first."""
    if workflow.in_workflow():
        result: LogItems = await _activity(
            READ_STREAM_ITEMS, ReadItems(log=log, limit=limit), LogItems, summary
        )
        return result
    return await read_log(require_store(store, summary), log, limit)


async def pop(store: MemoryStore | None, log: StreamLogRef, summary: str) -> PoppedItem:
    """Hide a log's newest item and return it."""
    if workflow.in_workflow():
        result: PoppedItem = await _activity(
            POP_STREAM_ITEM, LogChange(log=log), PoppedItem, summary
        )
        return result
    return await pop_log(require_store(store, summary), log, provenance=_provenance(log))


async def clear(store: MemoryStore | None, log: StreamLogRef, summary: str) -> None:
    """Hide every item of a log appended so far."""
    if workflow.in_workflow():
        await _activity(CLEAR_STREAM, LogChange(log=log), type(None), summary)
    else:
        await clear_log(require_store(store, summary), log, provenance=_provenance(log))
