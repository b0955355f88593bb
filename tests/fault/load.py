"""Randomized multi-key transactions from several clients, recorded for the history checker.

Each transaction writes its id to one to four random keys and appends it to a log, in one
commit whose idempotency key is the id. When the store is unavailable, most clients retry the
same commit (its key makes a retry of an applied commit a replay); some give up, leaving the
outcome unknown. Between transactions, clients read a random key and record what they saw.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Sequence

from memory import MemoryStore, NotFound, StoreUnavailable
from tests.fault.checker import History, Outcome

NS = ("acme", "load")
KEYS = tuple(f"k{i}" for i in range(8))


class Transactions:
    """The load, and everything its clients saw."""

    def __init__(self, stores: Sequence[MemoryStore], clients: int = 6, seed: int = 8) -> None:
        self.stores = stores
        self.clients = clients
        self.rng = random.Random(seed)
        self.keys: dict[str, tuple[str, ...]] = {}
        self.history = History()
        self.replays = 0
        self.unavailable = 0
        self.slowest = 0.0
        self.stop = asyncio.Event()

    async def run(self) -> None:
        """Run every client until `stop` is set."""
        await asyncio.gather(*(self._client(c) for c in range(self.clients)))

    async def _client(self, c: int) -> None:
        store = self.stores[c % len(self.stores)]
        i = 0
        while not self.stop.is_set():
            op = f"c{c}-{i}"
            i += 1
            self.keys[op] = tuple(sorted(self.rng.sample(KEYS, self.rng.randint(1, 4))))
            started = time.monotonic()
            self.history.record(op, await self._commit(store, op, self.rng.random() < 0.25))
            self.slowest = max(self.slowest, time.monotonic() - started)
            try:
                entry = await store.get(NS, self.rng.choice(KEYS))
                self.history.read(entry.value)  # type: ignore[arg-type]
            except (NotFound, StoreUnavailable):
                pass
            await asyncio.sleep(0.01)

    async def _commit(self, store: MemoryStore, op: str, give_up: bool) -> Outcome:
        while True:
            try:
                async with store.commit(key=op) as commit:
                    for key in self.keys[op]:
                        commit.put(NS, key, op)
                    commit.append(NS, "log", op)
            except StoreUnavailable:
                self.unavailable += 1
                if give_up or self.stop.is_set():
                    return "unknown"
                await asyncio.sleep(0.5)
                continue
            self.replays += commit.replayed
            return "ok"

    async def check(self, store: MemoryStore) -> None:
        """Nothing lost, nothing duplicated, nothing half-applied, no read of an unwritten value."""
        log = await store.tail(NS, "log", 10_000)
        self.history.check(item.item for item in log)  # type: ignore[misc]
        in_log = {item.item for item in log}
        present: dict[str, list[str]] = defaultdict(list)
        for key in KEYS:
            per_key = History()
            for op, outcome in self.history.outcomes.items():
                if key in self.keys[op]:  # type: ignore[index]
                    per_key.record(op, outcome)
            versions = [v.value for v in await store.history(NS, key)]
            per_key.check(versions)  # type: ignore[arg-type]
            for op in versions:
                present[op].append(key)  # type: ignore[index]
        # A transaction is all there or not at all.
        for op, keys in self.keys.items():
            assert tuple(sorted(present.get(op, []))) == (keys if op in in_log else ()), op
