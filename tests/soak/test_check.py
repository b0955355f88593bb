"""The soak's checker finds what it exists to find (the soak itself is ``make soak``, not here).

Each test stores a state that a fault could leave behind, records what the clients were told,
and expects the checker to name the problem; the same records over a sound state find none.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

from memory import MemoryStore, Provenance
from tests.soak.check import check
from tests.soak.load import SHARED, TENANT, Load, SessionRun
from workflows.contracts import Reply


def load() -> Load:
    return Load(
        cast(Any, None),  # the checker never talks to Temporal
        "tq",
        cast(Any, None),
        seed=1,
        phase="t",
        chains=0,
        sessions=0,
        users=0,
        writers=0,
    )


async def cas(store: MemoryStore, op: str, prev: str | None) -> None:
    async with store.commit(key=op) as c:
        c.put(SHARED, "k0", {"op": op, "prev": prev})
        c.append(SHARED, "log", op)


async def test_a_lost_compare_and_set_update_is_found(
    sqlite_store: MemoryStore, tmp_path: Path
) -> None:
    run = load()
    for op in ("a", "b"):
        run.writes.keys[op] = "k0"
        run.writes.cas.record(op, "ok")
        # b read "no entry" and should have conflicted, yet replaced a.
        await cas(sqlite_store, op, None)
        found = await check(sqlite_store, [run], tmp_path / "calls")
    assert found.anomalies == ["k0: b replaced a but had read None (a lost update)"]


async def test_a_sound_compare_and_set_history_passes(
    sqlite_store: MemoryStore, tmp_path: Path
) -> None:
    run = load()
    for op, prev in (("a", None), ("b", "a")):
        run.writes.keys[op] = "k0"
        run.writes.cas.record(op, "ok")
        await cas(sqlite_store, op, prev)
    run.writes.keys["c"] = "k0"
    run.writes.cas.record("c", "failed")  # a conflict: nothing of it may be present
    assert (await check(sqlite_store, [run], tmp_path / "calls")).anomalies == []


async def test_an_acknowledged_turn_missing_or_twice_in_the_transcript_is_found(
    sqlite_store: MemoryStore, tmp_path: Path
) -> None:
    run = load()
    session = SessionRun("t-s0", turns=2)
    run.sessions.append(session)
    ns = (TENANT, "session", session.session)
    for turn, msg in enumerate(("m1", "m2"), start=1):
        session.sent[msg] = f"hello {turn}"
        session.replies[msg] = Reply.model_construct(
            message_id=msg, text=f"reply {turn}", output=cast(Any, None), turn=turn
        )
        async with sqlite_store.commit() as c:
            c.append(ns, "transcript", {"role": "user", "content": f"hello {turn}"})
            c.append(ns, "transcript", {"role": "assistant", "content": "reply 1", "name": "soak"})
    found = await check(sqlite_store, [run], tmp_path / "calls")
    assert found.anomalies == [
        "session t-s0: transcript of 4 items differs from the 4 acknowledged, first at item 4",
        "session t-s0: ended with None after 2 turns",
    ]


async def test_a_model_call_after_its_steps_commit_is_found(
    sqlite_store: MemoryStore, tmp_path: Path
) -> None:
    before = time.time()
    async with sqlite_store.commit(key="step:wf:run:1", provenance=Provenance(tenant=TENANT)) as c:
        c.put((TENANT, "run", "wf"), "output:s", {"text": "x"})
    calls = tmp_path / "calls"
    calls.write_text(f"{before:.6f} wf run 1 1\n{time.time() + 1:.6f} wf run 1 2\n")
    found = await check(sqlite_store, [load()], calls)
    assert found.calls == 2
    assert len(found.anomalies) == 1
    assert found.anomalies[0].startswith("model call of wf activity 1 (attempt 2) came")
