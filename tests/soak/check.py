"""The soak's checker: the final memory state against what clients were told and the call log.

It reports anomalies (strings) instead of raising, so one run lists them all:

- every chain completed, and each step it acknowledged is committed exactly once, its output
  written once per commit (a retry never wrote a second version);
- no model call happened after its step's commit (calls are logged by tests/soak/agents.py);
- every acknowledged session turn is in the transcript exactly once, in turn order, with no
  gap, followed by its reply; the session ended with as many turns as were acknowledged;
- no compare-and-set update was lost: each key's versions are the acknowledged operations,
  each naming the one before it; the log and the events stream hold each operation once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import JsonValue

from activities.contracts import StepRecord
from memory import CommitRecord, Entry, MemoryStore, NotFound
from tests.fault.checker import History
from tests.soak.load import CAS_KEYS, DRIVER, SHARED, TENANT, ChainRun, Load, SessionRun


@dataclass
class Findings:
    anomalies: list[str] = field(default_factory=list)
    steps: int = 0
    calls: int = 0
    calls_without_commit: int = 0
    step_times: list[float] = field(default_factory=list)
    """Wall-clock times of every step commit, sorted: when work got done."""

    def add(self, problem: str) -> None:
        self.anomalies.append(problem)


async def all_commits(store: MemoryStore) -> dict[str, CommitRecord]:
    """Every commit, by key."""
    out: dict[str, CommitRecord] = {}
    after = 0
    while page := await store.list_commits(tenant=TENANT, after_seq=after, limit=1000):
        out.update((c.key, c) for c in page)
        after = page[-1].seq
    return out


async def versions_of(store: MemoryStore, ns: tuple[str, ...], key: str) -> list[Entry]:
    """Every version of a key, oldest first; none for a key never written."""
    try:
        return await store.history(ns, key, limit=100_000)
    except NotFound:
        return []


async def read_stream(store: MemoryStore, ns: tuple[str, ...], stream: str) -> list[JsonValue]:
    """Every item of a stream, oldest first."""
    items: list[JsonValue] = []
    start = 1
    while page := await store.read_stream(ns, stream, start=start):
        items += [i.item for i in page]
        start = page[-1].seq + 1
    return items


async def check(
    store: MemoryStore, loads: list[Load], calls: Path, findings: Findings | None = None
) -> Findings:
    """Check every phase's load against ``store``; see the module docstring."""
    found = findings or Findings()
    commits = await all_commits(store)
    found.step_times = sorted(
        c.created_at.timestamp() for c in commits.values() if c.key.startswith("step:")
    )
    by_workflow: dict[str, list[CommitRecord]] = {}
    for c in commits.values():
        if c.key.startswith("step:"):
            by_workflow.setdefault(c.key.split(":")[1], []).append(c)
    for load in loads:
        for run in load.chains:
            await _chain(store, run, by_workflow.get(run.id, []), found)
        for session in load.sessions:
            await _session(store, session, found)
        await _writes(store, load, found)
    _calls(calls, commits, found)
    return found


async def _chain(
    store: MemoryStore, run: ChainRun, commits: list[CommitRecord], found: Findings
) -> None:
    if run.result is None:
        found.add(f"chain {run.id} did not complete: {run.error}")
        return
    if run.result.status != "completed":
        found.add(f"chain {run.id} ended {run.result.status}")
    acked = Counter(s.step for s in run.result.steps)
    stored = Counter(StepRecord.model_validate(c.result).step for c in commits)
    found.steps += sum(acked.values())
    if acked != stored:
        found.add(f"chain {run.id}: steps acknowledged {dict(acked)} but committed {dict(stored)}")
    seqs = {c.seq for c in commits}
    if {s.commit_seq for s in run.result.steps} != seqs:
        found.add(f"chain {run.id}: acknowledged commits differ from the stored ones")
    ns = (TENANT, "run", run.id)
    if run.full:
        decisions = [v.value for v in await versions_of(store, ns, "approval:approval")]
        if decisions != [{"approved": True, "by": DRIVER, "edited": False}]:
            found.add(f"chain {run.id}: approval recorded as {decisions}, not the driver's once")
    for step, n in stored.items():
        versions = await versions_of(store, ns, f"output:{step}")
        if len(versions) != n or not {v.commit_seq for v in versions} <= seqs:
            found.add(f"chain {run.id}: output:{step} has {len(versions)} versions for {n} commits")


async def _session(store: MemoryStore, run: SessionRun, found: Findings) -> None:
    if run.error:
        found.add(f"session {run.session}: {run.error}")
    replies = sorted(run.replies.values(), key=lambda r: r.turn)
    turns = [r.turn for r in replies]
    if turns != list(range(1, len(turns) + 1)):
        found.add(f"session {run.session}: acknowledged turns are not 1..{len(turns)}")
    items = await read_stream(store, (TENANT, "session", run.session), "transcript")
    expected = []
    for reply in replies:
        expected += [
            {"role": "user", "content": run.sent[reply.message_id]},
            {"role": "assistant", "content": reply.text, "name": "soak"},
        ]
    if items != expected:
        first = next(
            (i for i, (a, b) in enumerate(zip(items, expected, strict=False)) if a != b),
            min(len(items), len(expected)),
        )
        found.add(
            f"session {run.session}: transcript of {len(items)} items differs from the "
            f"{len(expected)} acknowledged, first at item {first + 1}"
        )
    if run.replies and (run.end is None or run.end.turns != len(replies)):
        found.add(f"session {run.session}: ended with {run.end} after {len(replies)} turns")


async def _writes(store: MemoryStore, load: Load, found: Findings) -> None:
    writes = load.writes
    for key in CAS_KEYS:
        per_key = History()
        for op, outcome in writes.cas.outcomes.items():
            if writes.keys.get(str(op)) == key:
                per_key.record(op, outcome)
        values = [v.value for v in await versions_of(store, SHARED, key)]
        versions = [(str(v["op"]), v["prev"]) for v in values if isinstance(v, dict)]
        mine = [op for op, _ in versions if op in per_key]
        found.anomalies += [f"{key}: {p}" for p in per_key.problems(mine)]
        # Oldest first: each version names the one it replaced, so none was overwritten blind.
        older: object = None
        for op, prev in versions:
            if prev != older:
                found.add(f"{key}: {op} replaced {older} but had read {prev} (a lost update)")
            older = op
    for stream, history in (("log", writes.cas), ("events", writes.events)):
        items = [str(item) for item in await read_stream(store, SHARED, stream)]
        mine = [op for op in items if op in history]  # conflicts appended nothing
        found.anomalies += [f"{stream}: {p}" for p in history.problems(mine)]


def _calls(path: Path, commits: dict[str, CommitRecord], found: Findings) -> None:
    lines = path.read_text().splitlines() if path.exists() else []
    for line in lines:
        at, workflow, run, activity, attempt = line.split()
        found.calls += 1
        commit = commits.get(f"step:{workflow}:{run}:{activity}")
        if commit is None:
            found.calls_without_commit += 1
        elif float(at) > commit.created_at.timestamp():
            found.add(
                f"model call of {workflow} activity {activity} (attempt {attempt}) came "
                f"{float(at) - commit.created_at.timestamp():.3f}s after its step's commit"
            )
