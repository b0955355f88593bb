"""`CairnSession`: an OpenAI Agents SDK `Session` kept in Cairn, usable inside Temporal workflows.

The session's items are the stream ``items`` of the namespace ``(tenant, "session", <id>)``, read
as a stream log (`activities.streams`): `cairn memory`, search and compaction see every item,
and a pop or clear hides items without deleting them. Inside a workflow (for instance under
``temporalio.openai_agents.OpenAIAgentsPlugin``, whose runner refuses ``SQLiteSession``) every
call runs as an activity, so it is deterministic and each write applies exactly once under
retries and worker crashes; outside a workflow the same object talks to the store directly.

Needs the ``openai-agents`` extra. In workflow code, import it inside
``workflow.unsafe.imports_passed_through()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from agents.memory import SessionSettings
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

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
from memory.errors import InvalidInput
from memory.namespace import check_segment
from memory.records import Provenance
from memory.values import encode_value

if TYPE_CHECKING:
    from agents import TResponseInputItem
    from agents.run_context import RunContextWrapper

    from memory.store import MemoryStore

__all__ = ["SESSION_ACTIVITY_RETRY", "SESSION_ACTIVITY_TIMEOUT", "CairnSession"]

SESSION_ACTIVITY_TIMEOUT = timedelta(minutes=1)
SESSION_ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=30,
)
DEFAULT_MAX_ITEM_BYTES = 1024 * 1024
"""The size cap on one item's JSON, checked before anything is sent or written."""


class CairnSession:
    """An OpenAI Agents `Session` whose items live in Cairn (see the module docstring).

    Args:
        session_id: The session's id: a namespace segment (1-64 letters, digits or ``._:-``).
        tenant: The tenant the session belongs to (the namespace's first segment).
        store: The memory store, used outside workflows; leave it None in workflow code.
        session_settings: The SDK's settings (``limit`` caps what `get_items` returns).
        agent: Recorded as the writer in every commit's provenance.
        max_item_bytes: The size cap on one item's JSON encoding.

    Raises:
        InvalidInput: ``session_id`` or ``tenant`` is not a valid namespace segment.
    """

    def __init__(
        self,
        session_id: str,
        *,
        tenant: str,
        store: MemoryStore | None = None,
        session_settings: SessionSettings | None = None,
        agent: str = "openai-agents",
        max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
    ) -> None:
        try:
            check_segment(session_id, "session id")
            check_segment(tenant, "tenant")
        except InvalidInput as error:
            raise self._refused(error) from None
        self.session_id = session_id
        self.session_settings = session_settings or SessionSettings()
        self.store = store
        self.max_item_bytes = max_item_bytes
        self.log = StreamLogRef(
            namespace=(tenant, "session", session_id), stream="items", agent=agent
        )

    @property
    def namespace(self) -> tuple[str, ...]:
        """The session's namespace, ``(tenant, "session", <id>)``."""
        return self.log.namespace

    # -- the Session protocol (each also takes the SDK's context-aware ``wrapper``) ----------

    async def get_items(
        self, limit: int | None = None, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> list[TResponseInputItem]:
        """The session's items, oldest first: the latest ``limit`` (default: settings' limit)."""
        if limit is None:
            limit = self.session_settings.limit
        if workflow.in_workflow():
            read: LogItems = await self._activity(
                READ_STREAM_ITEMS, ReadItems(log=self.log, limit=limit), LogItems, "read"
            )
        else:
            read = await read_log(self._store(), self.log, limit)
        return cast("list[TResponseInputItem]", read.items)

    async def add_items(
        self,
        items: Sequence[TResponseInputItem],
        *,
        wrapper: RunContextWrapper[Any] | None = None,
    ) -> None:
        """Append ``items`` in one commit; a bad item is refused and nothing is written."""
        values = self._checked(items)
        if not values:
            return
        inp = AppendItems(log=self.log, items=values)
        if workflow.in_workflow():
            await self._activity(APPEND_STREAM_ITEMS, inp, AppendedItems, f"add {len(values)}")
        else:
            await append_log(self._store(), inp, provenance=self._provenance())

    async def pop_item(
        self, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> TResponseInputItem | None:
        """Remove and return the newest item (None when the session is empty)."""
        if workflow.in_workflow():
            popped: PoppedItem = await self._activity(
                POP_STREAM_ITEM, LogChange(log=self.log), PoppedItem, "pop"
            )
        else:
            popped = await pop_log(self._store(), self.log, provenance=self._provenance())
        return cast("TResponseInputItem | None", popped.item)

    async def clear_session(self, *, wrapper: RunContextWrapper[Any] | None = None) -> None:
        """Hide every item added so far."""
        if workflow.in_workflow():
            await self._activity(CLEAR_STREAM, LogChange(log=self.log), type(None), "clear")
        else:
            await clear_log(self._store(), self.log, provenance=self._provenance())

    # -- plumbing -------------------------------------------------------------------------

    def _checked(self, items: Sequence[TResponseInputItem]) -> list[Any]:
        if isinstance(items, (str, bytes, dict)) or not isinstance(items, Sequence):
            raise self._refused(InvalidInput(f"items must be a list, got {type(items).__name__}"))
        values = []
        for index, item in enumerate(items):
            try:
                encode_value(self.namespace, f"items[{index}]", item, self.max_item_bytes)
            except InvalidInput as error:
                raise self._refused(error) from None
            values.append(item)
        return values

    @staticmethod
    def _refused(error: InvalidInput) -> Exception:
        # In a workflow, a plain exception would fail the workflow task and retry it forever;
        # a non-retryable ApplicationError fails the workflow with the same message.
        if workflow.in_workflow():
            return ApplicationError(str(error), type=type(error).__name__, non_retryable=True)
        return error

    def _store(self) -> MemoryStore:
        if self.store is None:
            raise RuntimeError(
                "CairnSession outside a workflow needs a store: CairnSession(..., store=store)"
            )
        return self.store

    def _provenance(self) -> Provenance:
        return Provenance(tenant=self.namespace[0], agent=self.log.agent)

    async def _activity(self, name: str, arg: Any, result_type: type[Any], what: str) -> Any:
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=SESSION_ACTIVITY_TIMEOUT,
            retry_policy=SESSION_ACTIVITY_RETRY,
            summary=f"session {self.session_id}: {what}",
        )
