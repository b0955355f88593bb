"""What the MCP tools and resources hand back: memory as quoted, attributed data.

Every result has two forms. The structured one (a model below) is data for the client
application. The text one is what a model reads: each value quoted by `memory.context.quote`
with its source (namespace, key, version) and who wrote it, after the same preface agents get,
so text someone stored can never pose as an instruction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeVar

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, ConfigDict, JsonValue

from memory import Entry, Provenance, SearchHit, StreamItem
from memory.context import PREFACE, SEPARATOR, quote


class _View(BaseModel):
    # Built from the store's records, whose fields a view may leave out.
    model_config = ConfigDict(frozen=True, extra="ignore")


V = TypeVar("V", bound=_View)


class Fact(_View):
    """One version of an entry and where it came from."""

    namespace: str
    key: str
    version: int
    commit_seq: int
    value: JsonValue
    deleted: bool = False
    created_at: datetime
    tags: tuple[str, ...] = ()
    written_by: Provenance | None = None


class Hit(_View):
    """A search match: a current entry or a stream item."""

    namespace: str
    key: str
    kind: Literal["entry", "stream"]
    version: int
    commit_seq: int
    score: float
    value: JsonValue


class Turn(_View):
    """One item of a stream (a transcript turn, an event)."""

    namespace: str
    stream: str
    seq: int
    commit_seq: int
    created_at: datetime
    item: JsonValue


class Facts(_View):
    """Entries, or the versions of one key (oldest first)."""

    facts: tuple[Fact, ...]


class Hits(_View):
    """Search matches, best first."""

    hits: tuple[Hit, ...]


class Turns(_View):
    """A stream's last items, oldest first."""

    turns: tuple[Turn, ...]


def author(provenance: Provenance | None) -> str | None:
    """Who wrote a version, as the quote's ``written_by`` shows it."""
    if provenance is None:
        return None
    who = provenance.agent or "unknown agent"
    return f"{who} in {provenance.workflow_id}" if provenance.workflow_id else who


def _flat(view: type[V], record: BaseModel, **fields: object) -> V:
    """``record`` as ``view``: its namespace written as a path, ``fields`` added."""
    data = record.model_dump()
    data["namespace"] = "/".join(data["namespace"])
    return view.model_validate({**data, **fields})


def fact(entry: Entry) -> Fact:
    """An entry version as a `Fact`."""
    return _flat(Fact, entry, written_by=entry.provenance)


def hit(found: SearchHit) -> Hit:
    """A search hit as a `Hit`."""
    return _flat(Hit, found)


def turn(item: StreamItem) -> Turn:
    """A stream item as a `Turn`."""
    return _flat(Turn, item)


def quoted_entry(entry: Entry) -> str:
    """An entry version quoted with its source; a deletion says so instead of a value."""
    value: JsonValue = "(deleted)" if entry.deleted else entry.value
    return quote("recalled", entry.ref, value, author(entry.provenance))


def quoted_hit(found: SearchHit) -> str:
    """A search hit quoted with its source."""
    return quote("recalled", found.ref, found.value, None)


def quoted_item(item: StreamItem) -> str:
    """A stream item quoted with its source (its ``version`` is its sequence number)."""
    return quote("recalled", item.ref, item.item, None)


def text(blocks: list[str], empty: str) -> str:
    """Quoted blocks after the preface, or ``empty`` when there are none."""
    return SEPARATOR.join([PREFACE, *blocks]) if blocks else empty


def result(data: BaseModel, blocks: list[str], empty: str) -> CallToolResult:
    """A tool result: the quoted text for the model, ``data`` as structured content."""
    return CallToolResult(
        content=[TextContent(type="text", text=text(blocks, empty))],
        structured_content=data.model_dump(mode="json"),
    )
