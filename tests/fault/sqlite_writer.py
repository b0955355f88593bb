"""A writer process for the two-process SQLite scenario: ``python -m tests.fault.sqlite_writer``.

Arguments: memory URL, writer name, seconds. After printing ``ready`` it waits for a line on
stdin, then four tasks commit for the given time, each commit appending its operation id to a
shared stream and compare-and-setting a shared counter (retrying conflicts). Each operation's
outcome is printed as a JSON line: ``{"op", "outcome", "error"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from memory import ConflictError, MemoryStore, StoreUnavailable

NS = ("acme", "shared")
TASKS = 4
CAS_ATTEMPTS = 200


async def main(url: str, name: str, seconds: float) -> None:
    store = await MemoryStore.open(url, pool_size=TASKS)
    print("ready", flush=True)
    sys.stdin.readline()
    deadline = time.monotonic() + seconds

    async def task(t: int) -> None:
        i = 0
        while time.monotonic() < deadline:
            op, outcome, error = f"{name}/{t}/{i}", "failed", None
            try:
                for _ in range(CAS_ATTEMPTS):
                    counter = await store.get(NS, "counter")
                    try:
                        async with store.commit(key=op) as c:
                            c.append(NS, "log", op)
                            value, version = counter.value + 1, counter.version
                            c.put(NS, "counter", value, expected_version=version)
                    except ConflictError:
                        continue
                    outcome = "ok"
                    break
            except StoreUnavailable as e:
                outcome, error = "unknown", f"{type(e).__name__}: {e}"
            except Exception as e:
                error = f"{type(e).__name__}: {e}"
            print(json.dumps({"op": op, "outcome": outcome, "error": error}), flush=True)
            i += 1

    await asyncio.gather(*(task(t) for t in range(TASKS)))
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
