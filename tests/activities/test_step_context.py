"""What an agent step shows its model is exactly what its commit records (StepRecord refs)."""

from __future__ import annotations

import html
import re

from memory import MemoryRef, MemoryStore
from memory.context import ContextSpec, Pinned, SearchSource
from memory.tokens import approx_tokens
from tests.activities.conftest import (
    TENANT,
    Call,
    Harness,
    Recorder,
    agent,
    seed,
    step_input,
    transcript,
)
from tests.activities.test_context import blocks

SESSION = (TENANT, "session", "s-9")


def block_body(system: str, ref: MemoryRef) -> str:
    source = "/".join(ref.namespace)
    attrs = f'source="{source}" key="{re.escape(ref.key)}" v="{ref.version}"'
    pattern = rf"<(\w+) {attrs}[^>]*>\n(.*?)\n</\1>"
    found = re.search(pattern, system, re.S)
    assert found is not None, ref
    return found[2]


async def assert_refs_are_what_the_model_saw(
    store: MemoryStore, refs: tuple[MemoryRef, ...], call: Call
) -> None:
    entries = [r for r in refs if r.kind == "entry"]
    assert [(b[1], b[2], b[3]) for b in blocks(call.system)] == [
        (r.namespace, r.key, r.version) for r in entries
    ]
    for ref in entries:
        (version,) = [
            v for v in await store.history(ref.namespace, ref.key) if v.version == ref.version
        ]
        assert version.commit_seq == ref.commit_seq
        text = version.value["text"] if isinstance(version.value, dict) else version.value
        assert block_body(call.system, ref) == html.escape(text, quote=False)
    seen = call.messages[:-1]  # the last message is the step's task
    streams = [r for r in refs if r.kind == "stream"]
    assert len(streams) == len(seen)
    for ref, message in zip(streams, seen, strict=True):
        (item,) = await store.read_stream(
            ref.namespace, ref.key, start=ref.version, end=ref.version + 1
        )
        assert item.commit_seq == ref.commit_seq
        assert (message.role, message.content) == (item.item["role"], item.item["content"])


async def test_step_records_exactly_the_context_its_model_saw(harness: Harness) -> None:
    store = harness.store
    await seed(
        store,
        (SESSION, "brief", {"text": "Audience: <b>children</b> & teachers."}),
        ((TENANT, "docs"), "zebra-stripes", {"text": "Zebra stripes deter biting flies."}),
        ((TENANT, "docs"), "tax-law", {"text": "Unrelated tax rules."}),
    )
    await transcript(
        store, "s-9", *[("user" if i % 2 else "assistant", f"turn {i}") for i in range(1, 9)]
    )
    research = Recorder(["Stripes confuse flies."])
    writer = Recorder(["Zebras wear stripes to confuse flies."])
    harness.registry.script("researcher")(research)
    harness.registry.script("writer")(writer)
    context = ContextSpec(
        pinned=(Pinned(key="brief"),),
        outputs=("research",),
        search=SearchSource(where="tenant", limit=2),
        last_messages=4,
        token_budget=2000,
    )
    steps = (
        step_input(
            agent("researcher", context=ContextSpec(transcript=None)), "research", task="flies"
        ),
        step_input(
            agent("writer", context=context),
            "write",
            task="Why do zebras have stripes?",
            session="s-9",
        ),
    )
    async with harness.worker():
        wf, (first, second) = await harness.steps(*steps)

    (call,) = writer.calls
    commit, record = await harness.record(wf, "write")
    assert second.commit_seq == commit.seq
    await assert_refs_are_what_the_model_saw(store, record.input_refs, call)
    kinds = [b[0] for b in blocks(call.system)]
    assert kinds[:2] == ["pinned", "output"] and "recalled" in kinds
    keys = {r.key for r in record.input_refs}
    assert {"brief", "output:research", "zebra-stripes", "transcript"} <= keys
    assert "tax-law" not in keys
    assert [m.content for m in call.messages] == [
        "turn 5",
        "turn 6",
        "turn 7",
        "turn 8",
        steps[1].task,
    ]
    assert record.context_tokens <= 2000
    assert approx_tokens(call.system) + sum(approx_tokens(m.content) for m in call.messages) <= 2000
    # The output ref the writer saw is the researcher's committed output.
    assert first.output.namespace == (TENANT, "run", wf)
    assert first.output in record.input_refs
    # The step's reply is now the session's newest turn, written by the same commit.
    (reply,) = await store.tail(SESSION, "transcript", 1)
    assert reply.item == {"role": "assistant", "content": second.preview, "name": "writer"}
    assert reply.commit_seq == commit.seq


async def test_user_turn_and_reply_are_recorded_and_seen_next_turn(harness: Harness) -> None:
    model = Recorder([lambda call: f"echo: {call.messages[-1].content}"])
    harness.registry.script("support")(model)
    spec = agent("support")
    async with harness.worker():
        _, results = await harness.steps(
            step_input(spec, "t1", task="hi there", session="s-9", user_message=True),
            step_input(spec, "t2", task="again", session="s-9", user_message=True),
        )
    items = await harness.store.tail(SESSION, "transcript", 10)
    assert [(i.item["role"], i.item["content"]) for i in items] == [
        ("user", "hi there"),
        ("assistant", "echo: hi there"),
        ("user", "again"),
        ("assistant", "echo: again"),
    ]
    assert [m.content for m in model.calls[1].messages] == ["hi there", "echo: hi there", "again"]
    assert items[0].commit_seq == items[1].commit_seq == results[0].commit_seq
