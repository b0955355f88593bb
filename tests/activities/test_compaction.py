"""Transcript compaction: summarized once, nothing deleted, and used by later contexts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from temporalio.client import WorkflowFailureError

from activities.compaction import (
    EARLIER,
    NEW_TURNS,
    SCRIPTED_SUMMARY_CHARS,
    extractive_summary,
)
from activities.contracts import CompactInput, CompactResult
from activities.llm import ChatMessage, ToolSpec
from memory import MemoryStore, NotFound
from memory.context import SUMMARY_KEY, ContextSpec
from tests.activities.conftest import (
    TENANT,
    Harness,
    Recorder,
    agent,
    app_error,
    failure_types,
    step_input,
    transcript,
)
from tests.activities.workflows_for_tests import CompactWorkflow

SESSION = (TENANT, "session", "s-1")


def turn(i: int) -> str:
    """Turn ``i``'s content: exactly 240 characters, starting with its number."""
    return f"turn {i:02d} ".ljust(240, "x")


async def long_transcript(store: MemoryStore, n: int) -> None:
    await transcript(
        store, "s-1", *[("user" if i % 2 else "assistant", turn(i)) for i in range(1, n + 1)]
    )


async def compact(harness: Harness, **kw: object) -> CompactResult:
    inp = CompactInput(tenant=TENANT, session="s-1", **kw)  # type: ignore[arg-type]
    result: CompactResult = await (await harness.start(CompactWorkflow.run, inp)).result()
    return result


async def test_over_budget_transcript_is_summarized_once(harness: Harness) -> None:
    await long_transcript(harness.store, 30)
    async with harness.worker():
        first = await compact(harness, budget_tokens=1000, keep_recent=6)
        again = await compact(harness, budget_tokens=1000, keep_recent=6)

    assert (first.compacted, first.covers_until) == (True, 24)
    assert (again.compacted, again.summary, again.covers_until) == (False, first.summary, 24)
    (summary,) = await harness.store.history(SESSION, SUMMARY_KEY)
    assert first.summary == summary.ref
    assert summary.value["covers_until"] == 24 and summary.value["model"] == "scripted"
    assert summary.value["text"].startswith("[scripted summary] user: turn 01")
    assert "turn 24" in summary.value["text"] and "turn 25" not in summary.value["text"]
    assert summary.provenance is not None and summary.provenance.agent == "compactor"
    items = await harness.store.read_stream(SESSION, "transcript")
    assert [i.item["content"] for i in items] == [turn(i) for i in range(1, 31)]


async def test_within_budget_nothing_is_written(harness: Harness) -> None:
    await long_transcript(harness.store, 30)
    async with harness.worker():
        result = await compact(harness, budget_tokens=4000, keep_recent=6)
    assert result == CompactResult(compacted=False, summary=None, covers_until=0)
    with pytest.raises(NotFound):
        await harness.store.history(SESSION, SUMMARY_KEY)


async def test_each_run_folds_a_bounded_chunk_into_one_summary(harness: Harness) -> None:
    await long_transcript(harness.store, 60)
    async with harness.worker():
        first = await compact(harness, budget_tokens=200, keep_recent=4)
        second = await compact(harness, budget_tokens=200, keep_recent=4)

    assert (first.covers_until, second.covers_until) == (6, 12)
    v1, v2 = await harness.store.history(SESSION, SUMMARY_KEY)
    assert (v1.ref, v2.ref) == (first.summary, second.summary)
    assert v2.value["text"].startswith(v1.value["text"] + "\n")
    assert "turn 07" in v2.value["text"] and "turn 13" not in v2.value["text"]


class Barrier:
    """A compactor that waits until ``n`` compactions are calling it at once."""

    def __init__(self, n: int) -> None:
        self.n, self.calls, self.all_in = n, 0, asyncio.Event()

    async def __call__(
        self, system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
    ) -> str:
        self.calls += 1
        if self.calls >= self.n:
            self.all_in.set()
        await asyncio.wait_for(self.all_in.wait(), timeout=20)
        return extractive_summary(system, messages, tools)


async def test_concurrent_compactions_of_one_range_apply_once(harness: Harness) -> None:
    await long_transcript(harness.store, 30)
    barrier = Barrier(2)
    harness.registry.script("compactor")(barrier)
    inp = CompactInput(tenant=TENANT, session="s-1", budget_tokens=1000, keep_recent=6)
    async with harness.worker():
        handles = [await harness.start(CompactWorkflow.run, inp) for _ in range(2)]
        one, two = [await h.result() for h in handles]

    assert barrier.calls == 2, "both read the same state and summarized it"
    assert one == two and one.compacted and one.covers_until == 24
    assert len(await harness.store.history(SESSION, SUMMARY_KEY)) == 1
    assert [await failure_types(h) for h in handles] == [[], []]


async def test_concurrent_compactions_of_different_ranges_conflict(harness: Harness) -> None:
    await long_transcript(harness.store, 30)
    harness.registry.script("compactor")(Barrier(2))
    inputs = [
        CompactInput(tenant=TENANT, session="s-1", budget_tokens=1000, keep_recent=k)
        for k in (4, 6)
    ]
    async with harness.worker():
        handles = [await harness.start(CompactWorkflow.run, inp) for inp in inputs]
        results = [await h.result() for h in handles]

    (summary,) = await harness.store.history(SESSION, SUMMARY_KEY)
    assert sorted(r.compacted for r in results) == [False, True]
    assert all(r.summary == summary.ref for r in results)
    assert sorted([await failure_types(h) for h in handles]) == [[], ["ConflictError"]]


async def test_later_context_uses_the_summary_and_the_tail(harness: Harness) -> None:
    await long_transcript(harness.store, 30)
    model = Recorder(["ok"])
    harness.registry.script("support")(model)
    spec = agent("support", context=ContextSpec(last_messages=20))
    async with harness.worker():
        compacted = await compact(harness, budget_tokens=1000, keep_recent=6)
        wf, _ = await harness.steps(step_input(spec, "t31", task="next", session="s-1"))

    (call,) = model.calls
    assert [m.content for m in call.messages] == [turn(i) for i in range(25, 31)] + ["next"]
    assert '<summary source="acme/session/s-1" key="transcript-summary" v="1"' in call.system
    assert "turn 01" in call.system
    _, record = await harness.record(wf, "t31")
    assert compacted.summary in record.input_refs
    streams = [r.version for r in record.input_refs if r.kind == "stream"]
    assert streams == list(range(25, 31))


async def test_compaction_model_errors_fail_fast(harness: Harness) -> None:
    await long_transcript(harness.store, 30)
    async with harness.worker():
        with pytest.raises(WorkflowFailureError) as failed:
            await compact(harness, budget_tokens=1000, model="openai:gpt-test")
    error = app_error(failed.value)
    assert (error.type, error.non_retryable) == ("UnknownModel", True)


def test_the_offline_summary_stays_bounded_however_many_compactions() -> None:
    summary = ""
    for n in range(1, 2001):
        turns = f"user: turn {n} " + "word " * 30 + f"\nassistant: answer {n} " + "word " * 30
        prompt = f"{EARLIER}{summary}{NEW_TURNS}{turns}" if summary else turns
        summary = extractive_summary("", [ChatMessage(role="user", content=prompt)], [])
    assert len(summary) <= SCRIPTED_SUMMARY_CHARS
    assert summary.startswith("[scripted summary] user: turn ")
    assert summary.endswith(" | assistant: answer 2000 " + " ".join(["word"] * 11))
