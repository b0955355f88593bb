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
from typing import TYPE_CHECKING, Any, cast

from agents.memory import SessionSettings
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from activities.streams import AppendItems, StreamLogRef
from cairn.integrations import stream_log
from memory.errors import InvalidInput
from memory.namespace import check_segment
from memory.values import encode_value

if TYPE_CHECKING:
    from agents import TResponseInputItem
    from agents.run_context import RunContextWrapper

    from memory.store import MemoryStore

__all__ = ["DEFAULT_MAX_ITEM_BYTES", "CairnSession"]

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
        read = await stream_log.read(self.store, self.log, limit, self._summary("read"))
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
        await stream_log.append(self.store, inp, self._summary(f"add {len(values)}"))

    async def pop_item(
        self, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> TResponseInputItem | None:
        """Remove and return the newest item (None when the session is empty)."""
        popped = await stream_log.pop(self.store, self.log, self._summary("pop"))
        return cast("TResponseInputItem | None", popped.item)

    async def clear_session(self, *, wrapper: RunContextWrapper[Any] | None = None) -> None:
        """Hide every item added so far."""
        await stream_log.clear(self.store, self.log, self._summary("clear"))

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

    def _summary(self, what: str) -> str:
        return f"session {self.session_id}: {what}"
