"""Scenario 13: 10,000 entries in one namespace, beside a 2,000-message transcript.

Paging through them finds every entry exactly once, in order, even while writers add keys
between pages; an agent's context over them (search hits, the transcript tail, pinned
entries) stays within its token budget, and says how much it left out.
"""

from __future__ import annotations

import pytest

from memory import MemoryStore
from memory.context import ContextSpec, Pinned, SearchSource, approx_tokens, build_context
from tests.fault.checker import History

pytestmark = pytest.mark.fault

N = 10_000
BATCH = 1_000
MESSAGES = 2_000
BIG = ("acme", "big")
SESSION = ("acme", "session", "big")
WORDS = ["durable", "memory", "context", "agents", "workflow", "retries", "budget", "summary"]


async def seed(store: MemoryStore) -> None:
    for start in range(0, N, BATCH):
        async with store.commit() as c:
            for i in range(start, start + BATCH):
                c.put(BIG, f"k{i:05}", {"text": f"entry {i} about {WORDS[i % len(WORDS)]}"})
                if i >= N - MESSAGES:
                    role = "user" if i % 2 == 0 else "assistant"
                    c.append(SESSION, "transcript", {"role": role, "content": f"message {i}"})


@pytest.mark.timeout(120)
async def test_ten_thousand_entries_page_completely_and_context_stays_in_budget(
    store: MemoryStore,
) -> None:
    await seed(store)
    history = History()
    for i in range(N):
        history.record(f"k{i:05}", "ok")

    for limit in (337,):
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = await store.list(BIG, limit=limit, cursor=cursor)
            seen += [e.key for e in page.entries]
            pages += 1
            # Writers add keys before, among and after the ones not yet listed.
            async with store.commit() as c:
                for key in (f"a-{limit}-{pages}", f"k{pages:05}x{limit}", f"z-{limit}-{pages}"):
                    c.put(BIG, key, "added while paging")
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == sorted(seen) and len(seen) == len(set(seen)), "a key came twice"
        history.check(k for k in seen if k.startswith("k") and "x" not in k)
        assert pages >= N // limit

    bindings = {"session": SESSION, "tenant": ("acme",)}
    for budget in (500, 4000):
        spec = ContextSpec(
            search=SearchSource(where="acme/big", limit=50),
            pinned=tuple(Pinned(where="acme/big", key=f"k{i:05}") for i in range(0, N, 500)),
            last_messages=1000,
            token_budget=budget,
        )
        context = await build_context(
            store, spec, instructions="Answer.", task="durable memory", bindings=bindings
        )
        text = context.system + "".join(m.content for m in context.messages)
        assert context.tokens <= budget and approx_tokens(text) <= budget
        assert context.omitted > 0 and context.refs
        # The newest messages are the ones kept, in order.
        kept = [m.content for m in context.messages]
        assert kept == [f"message {i}" for i in range(N - len(kept), N)]
