"""Transcript compaction: fold the oldest turns of a long transcript into a summary entry.

The summary entry (``transcript-summary`` in the session namespace) records which stream
sequence it covers; context assembly then shows the summary plus the turns after it. No
transcript item is ever deleted. Each compaction rewrites the summary from the previous one
plus the newly covered turns, so the summary stays about one summary long however long the
session. The commit key names the covered range, and the summary is written with
compare-and-set, so concurrent or retried compactions apply exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from activities.contracts import CompactInput, CompactResult
from activities.heartbeat import heartbeating
from activities.llm import ChatMessage, ModelClient, ToolSpec
from activities.provenance import activity_provenance
from memory import NotFound
from memory.context import SUMMARY_KEY
from memory.records import StreamItem
from memory.tokens import approx_tokens

if TYPE_CHECKING:
    from memory.store import MemoryStore

INSTRUCTIONS = (
    "Summarize the conversation below for a colleague who will continue it. Keep every fact "
    "about the user, every decision and every open question; drop pleasantries. Be brief. "
    "When a summary so far is given, write one summary that replaces it and covers the new "
    "turns too."
)
EARLIER = "Summary so far:\n"
NEW_TURNS = "\n\nNew turns:\n"
CHUNK_FACTOR = 2
"""One compaction folds in at most ``CHUNK_FACTOR * budget_tokens`` of turns (at least one
turn), so a transcript far over budget is caught up over several runs, never by one prompt
larger than the model can read."""


SCRIPTED_SUMMARY_CHARS = 8000
"""The offline summarizer's cap: it drops its oldest lines past this, as a model would condense
them. Without it the summary grows with every compaction and, some 6,000 turns into a
session, passes the store's 1 MiB value limit."""


def extractive_summary(
    system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
) -> str:
    """The offline summarizer: the earlier summary plus the first words of each new turn.

    One line per compaction, the oldest dropped beyond `SCRIPTED_SUMMARY_CHARS`.
    """
    text = messages[-1].content if messages else ""
    earlier = ""
    if text.startswith(EARLIER) and NEW_TURNS in text:
        earlier, _, text = text.removeprefix(EARLIER).partition(NEW_TURNS)
    gist = " | ".join(" ".join(line.split()[:14]) for line in text.splitlines() if line.strip())
    lines = [*(earlier.split("\n") if earlier else []), f"[scripted summary] {gist}"]
    while len(lines) > 1 and sum(len(line) + 1 for line in lines) > SCRIPTED_SUMMARY_CHARS:
        del lines[0]
    return "\n".join(lines)[:SCRIPTED_SUMMARY_CHARS]


def _line(item: StreamItem) -> str:
    value = item.item
    if isinstance(value, dict):
        return f"{value.get('name') or value.get('role', '?')}: {value.get('content', '')}"
    return str(value)


async def compact(store: MemoryStore, model: ModelClient, inp: CompactInput) -> CompactResult:
    """Compact ``inp``'s transcript if its unsummarized part exceeds the budget."""
    ns = (inp.tenant, "session", inp.session)
    try:
        summary = await store.get(ns, SUMMARY_KEY)
    except NotFound:
        summary = None
    previous = summary.value if summary is not None and isinstance(summary.value, dict) else {}
    covered = previous.get("covers_until", 0)
    covered = covered if isinstance(covered, int) else 0
    items = await store.read_stream(ns, inp.stream, start=covered + 1, limit=10_000)
    lines = [_line(i) for i in items]
    costs = [approx_tokens(line) for line in lines]
    if len(items) <= inp.keep_recent or sum(costs) <= inp.budget_tokens:
        return CompactResult(
            compacted=False, summary=summary.ref if summary else None, covers_until=covered
        )

    old = 1
    spent = costs[0]
    while old < len(items) - inp.keep_recent and spent + costs[old] <= (
        CHUNK_FACTOR * inp.budget_tokens
    ):
        spent += costs[old]
        old += 1
    until = items[old - 1].seq
    text = "\n".join(lines[:old])
    earlier = previous.get("text")
    if isinstance(earlier, str) and earlier:
        text = f"{EARLIER}{earlier}{NEW_TURNS}{text}"
    reply = await heartbeating(
        model.complete(system=INSTRUCTIONS, messages=[ChatMessage(role="user", content=text)]),
        f"compacting {'/'.join(ns)} {inp.stream} up to {until}",
    )

    key = f"compact:{'/'.join(ns)}:{inp.stream}:{until}"
    provenance = activity_provenance(inp.tenant, "compactor")
    async with store.commit(key=key, provenance=provenance) as commit:
        if not commit.replayed:
            value = {
                "text": reply.text,
                "covers_until": until,
                "stream": inp.stream,
                "model": reply.model,
            }
            commit.put(ns, SUMMARY_KEY, value, expected_version=summary.version if summary else 0)
            commit.result = {"covers_until": until}
    ref = next(w for w in commit.writes if w.key == SUMMARY_KEY)
    return CompactResult(compacted=True, summary=ref, covers_until=until)
