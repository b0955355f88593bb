"""Stateful property test: random commits against both backends agree with a plain model.

Each example works in a namespace of its own, so examples can share one database; the model
records every version of every key (tombstones included) with the commit that wrote it, which
is enough to predict `get`, `history` and `get(as_of=...)` exactly.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from memory import ConflictError, InvalidInput, MemoryStore, NotFound

KEYS = ("a", "b", "c")
MISSING = object()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
# (kind, key, value, cas): cas is None (no check), "exact" (the current version), "zero"
# (create-only) or "wrong" (a version the key does not have).
ops = st.tuples(
    st.sampled_from(["put", "put", "append", "delete"]),
    st.sampled_from(KEYS),
    json_values,
    st.sampled_from([None, None, "exact", "zero", "wrong"]),
)

SETTINGS = settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class Version:
    def __init__(self, seq: int, value: Any, deleted: bool) -> None:
        self.seq, self.value, self.deleted = seq, value, deleted


class StoreMachine(RuleBasedStateMachine):
    commit_keys = Bundle("commit_keys")
    seqs = Bundle("seqs")

    def __init__(self, loop: asyncio.AbstractEventLoop, store: MemoryStore) -> None:
        super().__init__()
        self.loop, self.store = loop, store
        self.ns = ("acme", "model", uuid.uuid4().hex)
        self.versions: dict[str, list[Version]] = {k: [] for k in KEYS}

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def _live(self, versions: list[Version]) -> bool:
        return bool(versions) and not versions[-1].deleted

    def _plan(self, batch: list[tuple[str, str, Any, str | None]]) -> tuple[list[Any], Any]:
        """The calls to make and the outcome the model predicts: new versions, or the errors
        one of which must be raised (the store may meet them in another order)."""
        scratch = {k: list(v) for k, v in self.versions.items()}
        calls: list[Any] = []
        failures: set[type[Exception]] = set()
        for kind, key, value, cas in batch:
            history = scratch[key]
            live = self._live(history)
            expected = {
                None: None,
                "exact": len(history) if live else 0,
                "zero": 0,
                "wrong": len(history) + 1,
            }[cas if kind != "append" else None]
            calls.append((kind, key, value, expected))
            if expected is not None and (expected != (len(history) if live else 0)):
                failures.add(ConflictError)
            if kind == "delete":
                history.append(Version(-1, None, True))
            elif kind == "append":
                current = history[-1].value if live else None
                if current is not None and not isinstance(current, list):
                    failures.add(InvalidInput)
                    current = []
                history.append(Version(-1, [*(current or []), value], False))
            else:
                history.append(Version(-1, value, False))
        return calls, (tuple(failures) or scratch)

    @rule(target=commit_keys, batch=st.lists(ops, min_size=1, max_size=4))
    def commit(self, batch: list[tuple[str, str, Any, str | None]]) -> Any:
        calls, outcome = self._plan(batch)
        key = f"{self.ns[-1]}/{uuid.uuid4().hex}"

        async def apply() -> Any:
            async with self.store.commit(key=key) as c:
                for kind, k, value, expected in calls:
                    if kind == "delete":
                        c.delete(self.ns, k, expected_version=expected)
                    elif kind == "append":
                        c.put(self.ns, k, value, merge="append")
                    else:
                        c.put(self.ns, k, value, expected_version=expected)
            return c

        if isinstance(outcome, tuple):
            with pytest.raises(outcome):
                self.run(apply())
            return multiple()
        c = self.run(apply())
        assert not c.replayed
        for k, history in outcome.items():
            for v in history[len(self.versions[k]) :]:
                v.seq = c.seq
        self.versions = outcome
        return (key, c.seq)

    @rule(target=seqs, written=commit_keys)
    def remember_seq(self, written: tuple[str, int]) -> int:
        return written[1]

    @rule(written=consumes(commit_keys), value=json_values)
    def replay(self, written: tuple[str, int], value: Any) -> None:
        key, seq = written

        async def apply() -> Any:
            async with self.store.commit(key=key) as c:
                assert c.replayed
                c.put(self.ns, "a", value)
            return c

        c = self.run(apply())
        assert c.replayed and c.seq == seq

    @rule(seq=seqs)
    def as_of(self, seq: int) -> None:
        for key, history in self.versions.items():
            visible = [v for v in history if v.seq <= seq]
            try:
                got = self.run(self.store.get(self.ns, key, as_of=seq)).value
            except NotFound:
                got = MISSING
            want = visible[-1].value if visible and not visible[-1].deleted else MISSING
            assert got == want, (key, seq)

    @invariant()
    def current_state_and_history_match(self) -> None:
        for key, history in self.versions.items():
            try:
                entry = self.run(self.store.get(self.ns, key))
                got = (entry.version, entry.value)
            except NotFound:
                got = MISSING
            want = (len(history), history[-1].value) if self._live(history) else MISSING
            assert got == want, key
            try:
                stored = self.run(self.store.history(self.ns, key))
            except NotFound:
                stored = []
            assert [(h.version, h.value, h.deleted, h.commit_seq) for h in stored] == [
                (i + 1, v.value, v.deleted, v.seq) for i, v in enumerate(history)
            ]


def test_store_agrees_with_a_plain_model(store_url: str) -> None:
    loop = asyncio.new_event_loop()
    try:
        store = loop.run_until_complete(MemoryStore.open(store_url))
        try:
            run_state_machine_as_test(lambda: StoreMachine(loop, store), settings=SETTINGS)
        finally:
            loop.run_until_complete(store.close())
            loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
