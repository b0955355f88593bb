"""LangGraph side by side: the same planner -> researcher -> writer chain (`bench.multiagent`).

``langgraph``: runs of a growing conversation in one session, alternating LangGraph with a
``SqliteSaver`` (its default durability) and Cairn on SQLite (a `ChainWorkflow` per run on a
local dev server): time per step, and storage after the runs (each SQLite file plus its WAL,
after a WAL checkpoint). Cairn's durable state also includes its Temporal histories, reported
beside it. The quick profile runs 20 of the 100 runs and extrapolates the storage to 100
(quadratic for LangGraph, which checkpoints the whole state after every step; linear for Cairn,
which appends each message once), labelled as such.

``langgraph_crash``: each side runs in a child process (`bench.crash_child`), which is
SIGKILLed while the writer (step 3) runs; it signals on a pipe once the writer starts, no
sleeps. LangGraph is then resumed from its checkpointer; Cairn's workflow is finished by a
fresh worker. Every agent call is logged, so the steps that ran again are counted. LangGraph
runs with its default durability ("async": a step's checkpoint is written while the next step
runs) and with "sync", killed 3 times each (``--full``: 5); Cairn once (``--full``: twice), as
each Cairn kill waits out the step's heartbeat timeout (5 s; 30 s before issue 21).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from statistics import median

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.databases import scratch
from bench.devserver import RUN_TIMEOUT, cairn_worker, dev_server, task_queue
from bench.multiagent import (
    AGENTS,
    cairn_chain,
    cairn_registry,
    langgraph_chain,
    langgraph_input,
)
from bench.runner import Profile, Row, benchmark
from memory import MemoryStore
from workflows.chain import ChainWorkflow, team_search_attributes

ROOT = Path(__file__).parents[1]
FULL_RUNS = 100
FITS = {1: "linear", 2: "quadratic"}


def sqlite_bytes(path: Path) -> int:
    """The database file plus its WAL, after checkpointing the WAL into the file."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(
        Path(f"{path}{suffix}").stat().st_size
        for suffix in ("", "-wal")
        if Path(f"{path}{suffix}").exists()
    )


def fit(points: list[tuple[int, int]], degree: int, at: int) -> float:
    """Least-squares polynomial through ``points`` (x, bytes), evaluated at ``at``."""
    import numpy as np

    xs, ys = zip(*points, strict=True)
    return float(np.polyval(np.polyfit(xs, ys, degree), at))


async def growing_conversation(profile: Profile, runs: int) -> list[Row]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    lg_path = profile.workdir / f"langgraph-{uuid.uuid4().hex[:8]}.db"
    lg_conn = sqlite3.connect(lg_path, check_same_thread=False)
    graph = langgraph_chain(SqliteSaver(lg_conn))
    config = {"configurable": {"thread_id": "session-1"}}
    session = f"conv-{uuid.uuid4().hex[:8]}"
    every = max(1, runs // 5)
    times: dict[str, list[float]] = {"langgraph": [], "cairn": []}
    storage: dict[str, list[tuple[int, int]]] = {"langgraph": [], "cairn": []}
    with scratch(profile, "sqlite", "langgraph") as db:
        assert db.path is not None
        store = await MemoryStore.open(db.url)
        try:
            async with dev_server() as client:
                queue = task_queue("trio")
                async with cairn_worker(client, store, queue, cairn_registry()):
                    handles = []

                    async def lg(turn: int) -> None:
                        result = await asyncio.to_thread(
                            graph.invoke, langgraph_input(turn), config
                        )
                        assert len(result["messages"]) == 4 * turn

                    async def cairn(turn: int) -> None:
                        spec = cairn_chain(session, turn)
                        handle = await client.start_workflow(
                            ChainWorkflow.run,
                            spec,
                            id=f"trio-{turn}-{uuid.uuid4().hex[:8]}",
                            task_queue=queue,
                            execution_timeout=RUN_TIMEOUT,
                            search_attributes=team_search_attributes(spec),
                        )
                        handles.append(handle)
                        assert len((await handle.result()).steps) == len(AGENTS)

                    for turn in range(1, runs + 1):
                        order = (("langgraph", lg), ("cairn", cairn))
                        for name, fn in order if turn % 2 else order[::-1]:
                            t0 = time.perf_counter()
                            await fn(turn)
                            times[name].append((time.perf_counter() - t0) / len(AGENTS))
                        if turn % every == 0 or turn == runs:
                            storage["langgraph"].append((turn, sqlite_bytes(lg_path)))
                            storage["cairn"].append((turn, sqlite_bytes(db.path)))
                    history = 0
                    for handle in handles:
                        events = (await handle.fetch_history()).events
                        history += sum(e.ByteSize() for e in events)
        finally:
            await store.close()
            lg_conn.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{lg_path}{suffix}").unlink(missing_ok=True)
    step_ms = {k: median(v) * 1000 for k, v in times.items()}
    out: list[Row] = []
    for name, backend, degree in (("langgraph", "SqliteSaver", 2), ("cairn", "MemoryStore", 1)):
        last = storage[name][-1][1]
        at_full = last if runs >= FULL_RUNS else fit(storage[name], degree, FULL_RUNS)
        out.append(
            {
                "side": name,
                "stores": backend + " (SQLite)",
                "runs": runs,
                "step_ms": step_ms[name],
                "step_ms_range": (min(times[name]) * 1000, max(times[name]) * 1000),
                "x_langgraph": step_ms[name] / step_ms["langgraph"],
                "db_bytes": last,
                "bytes_per_run_last": (last - storage[name][-2][1])
                / (storage[name][-1][0] - storage[name][-2][0])
                if len(storage[name]) > 1
                else None,
                f"db_bytes_{FULL_RUNS}_runs": at_full,
                "note": "measured"
                if runs >= FULL_RUNS
                else f"{FULL_RUNS} runs extrapolated ({FITS[degree]} fit)",
                "temporal_history_bytes": history if name == "cairn" else None,
            }
        )
    return out


@benchmark("langgraph", "LangGraph (SqliteSaver) vs Cairn (SQLite): one chain, growing session")
async def langgraph_side(profile: Profile) -> list[Row]:
    return await growing_conversation(profile, FULL_RUNS if profile.full else 20)


# --- crash ---------------------------------------------------------------------------------


async def _child(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.crash_child",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def _expect(proc: asyncio.subprocess.Process, line: str) -> None:
    assert proc.stdout is not None
    while True:
        got = (await asyncio.wait_for(proc.stdout.readline(), 120)).decode().strip()
        if got == line:
            return
        if not got and proc.stdout.at_eof():
            raise RuntimeError(f"child exited before printing {line!r}")


async def _kill(proc: asyncio.subprocess.Process) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()


def _calls(log: Path) -> Counter[str]:
    return Counter(line.split()[0] for line in log.read_text().splitlines())


Outcome = tuple[Counter[str], float, float | None]
"""Calls per agent, seconds from the kill to the run's end, and to the killed step's rerun."""
"""One kill: the agent calls logged across both processes, and seconds from kill to done."""


def _crash_row(side: str, outcomes: list[Outcome], note: str) -> Row:
    kills = len(outcomes)
    reran = {a: sum(1 for calls, _, _ in outcomes if calls[a] > 1) for a in AGENTS}
    kept = sum(1 for calls, _, _ in outcomes if all(calls[a] == 1 for a in AGENTS[:2]))
    reruns = [r for _, _, r in outcomes if r is not None]
    return {
        "side": side,
        "kills": kills,
        "killed_during": "step 3 (writer)",
        "kept_steps_1_2": f"{kept}/{kills}",
        "re_ran": ", ".join(f"{a} {reran[a]}/{kills}" for a in reversed(AGENTS)),
        "rerun_s": median(reruns) if reruns else None,
        "recovery_s": median(r for _, r, _ in outcomes),
        "note": note,
    }


async def langgraph_crash(workdir: Path, durability: str, attempt: int) -> Outcome:
    from langgraph.checkpoint.sqlite import SqliteSaver

    name = f"lg-crash-{durability}-{attempt}"
    db, log = workdir / f"{name}.db", workdir / f"{name}.log"
    args: tuple[str, ...] = ("langgraph", "--db", str(db), "--log", str(log), "--thread", "crash")
    args += ("--durability", durability)
    proc = await _child(*args, "--block", "writer")
    await _expect(proc, "writer-started")
    await _kill(proc)
    killed = time.perf_counter()
    proc = await _child(*args, "--resume")
    await _expect(proc, "done")
    await proc.wait()
    recovery = time.perf_counter() - killed
    with sqlite3.connect(db, check_same_thread=False) as conn:
        state = langgraph_chain(SqliteSaver(conn)).get_state(
            {"configurable": {"thread_id": "crash"}}
        )
    assert len(state.values["messages"]) == 4, state.values["messages"]
    return _calls(log), recovery, None


async def cairn_crash(client: Client, workdir: Path, attempt: int) -> Outcome:
    db, log = workdir / f"cairn-crash-{attempt}.db", workdir / f"cairn-crash-{attempt}.log"
    queue = task_queue("crash")
    address = client.service_client.config.target_host
    proc = await _child(
        "cairn", "--db", str(db), "--log", str(log), "--block", "writer",
        "--address", address, "--queue", queue,
    )  # fmt: skip
    try:
        await _expect(proc, "ready")
        spec = cairn_chain(f"crash-{uuid.uuid4().hex[:6]}", 1)
        handle = await client.start_workflow(
            ChainWorkflow.run,
            spec,
            id=f"crash-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
            execution_timeout=RUN_TIMEOUT,
            search_attributes=team_search_attributes(spec),
        )
        await _expect(proc, "writer-started")
    finally:
        await _kill(proc)
    killed, killed_at = time.perf_counter(), time.time()

    def on_call(agent: str, turn: int) -> None:
        with log.open("a") as f:
            f.write(f"{agent} {turn} {os.getpid()}\n")

    store = await MemoryStore.open(f"sqlite:///{db}")
    try:
        async with cairn_worker(client, store, queue, cairn_registry(on_call)):
            result = await handle.result()
        recovery = time.perf_counter() - killed
        commits = await store.list_commits(workflow_id=handle.id, limit=100)
    finally:
        await store.close()
    assert [s.step for s in result.steps] == list(AGENTS)
    steps = [c for c in commits if c.key.startswith("step:")]
    assert len(steps) == len(AGENTS), [c.key for c in steps]
    # The server's clock is this machine's: when the killed step's second attempt started.
    rerun = next(
        e.event_time.ToMicroseconds() / 1e6 - killed_at
        for e in (await handle.fetch_history()).events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.attempt > 1
    )
    return _calls(log), recovery, rerun


@benchmark("langgraph_crash", "Process killed mid-run: what LangGraph and Cairn keep and redo")
async def crash(profile: Profile) -> list[Row]:
    lg_kills, cairn_kills = (5, 2) if profile.full else (3, 1)
    rows = []
    for durability in ("async", "sync"):
        outcomes = [await langgraph_crash(profile.workdir, durability, i) for i in range(lg_kills)]
        default = " (LangGraph's default)" if durability == "async" else ""
        rows.append(
            _crash_row(
                f"langgraph, durability={durability}",
                outcomes,
                f"resumed by invoking the graph again on its thread, in a new process{default}",
            )
        )
    async with dev_server() as client:
        outcomes = [await cairn_crash(client, profile.workdir, i) for i in range(cairn_kills)]
    rows.append(
        _crash_row(
            "cairn",
            outcomes,
            "Temporal retried the step on a fresh worker after its 5 s heartbeat timeout; "
            "every step committed exactly once",
        )
    )
    return rows
