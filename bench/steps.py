"""Step overhead: a Cairn chain of agent steps against a bare Temporal workflow of no-op activities.

All sides run on one dev server and in one worker process (`Worker`s on one client, configured
alike). ``cairn``: `ChainWorkflow` and the real `agent_step`: the scripted model, context
assembled from memory (the previous step's output, read by reference) and the step's
exactly-once commit on SQLite. ``orchestration``: the same workflow with `stub_step` registered
as ``agent_step`` (same contract, no memory, no model), which splits Cairn's cost between the
workflow and the step's memory work. ``bare``: `BareChainWorkflow`, whose activity returns its
input. Rounds alternate the sides (A B C C B A ...); each round runs ``concurrency`` workflows
of `STEPS` steps at once.

Reported per side: the step time (round wall time / `STEPS`: what one workflow waits per step),
throughput, and CPU per step of the worker process and of the dev server. Target (reported,
not asserted): Cairn's step time at most 1.15x the bare one, at concurrency 1, 20 and 100.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from temporalio import activity
from temporalio.client import Client

from activities import AgentRegistry, AgentSpec
from activities.contracts import (
    AGENT_STEP,
    PREVIEW_CHARS,
    StepInput,
    StepResult,
    run_namespace,
)
from activities.llm import ChatMessage, ToolSpec
from bench.baselines import BareChainWorkflow, BareInput, noop
from bench.databases import scratch
from bench.devserver import (
    RUN_TIMEOUT,
    cairn_worker,
    dev_server,
    plain_worker,
    process_cpu,
    server_cpu,
    task_queue,
)
from bench.runner import Profile, Row, benchmark
from memory import MemoryStore
from memory.context import ContextSpec
from memory.records import MemoryRef
from workflows.chain import ChainWorkflow, team_search_attributes
from workflows.contracts import ChainSpec, Step

STEPS = 20
TARGET = 1.15
TENANT = "bench"
AGENT = "stepper"


def reply(system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
    """The scripted model: a deterministic answer of a few hundred characters."""
    task = messages[-1].content
    return f"Step result for {task!r}: " + "observed, checked and summarised. " * 8


def register(registry: AgentRegistry) -> AgentRegistry:
    registry.script(AGENT)(reply)
    return registry


def chain_spec(steps: int = STEPS) -> ChainSpec:
    """``steps`` agent steps in a row, each reading the previous step's output from memory."""
    agent = AgentSpec(
        model="scripted",
        name=AGENT,
        instructions="One step of a chain.",
        context=ContextSpec(transcript=None),
    )
    nodes = tuple(
        Step(agent=AGENT, name=f"s{i}", sees=(f"s{i - 1}",) if i > 1 else ())
        for i in range(1, steps + 1)
    )
    return ChainSpec(name="overhead", tenant=TENANT, agents=(agent,), nodes=nodes, input="go")


@dataclass
class Side:
    name: str
    run_one: Callable[[], Awaitable[Any]]
    walls: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)

    async def round(self, concurrency: int, record: bool = True) -> None:
        loop = asyncio.get_running_loop()
        cpu0, srv0, t0 = process_cpu(), server_cpu(), loop.time()
        await asyncio.gather(*(self.run_one() for _ in range(concurrency)))
        wall, cpu, srv = loop.time() - t0, process_cpu() - cpu0, server_cpu() - srv0
        if record:
            steps = concurrency * STEPS
            self.walls.append(wall)
            self.cpu.append(cpu / steps)
            self.server.append(srv / steps)


def sides(client: Client, queues: dict[str, str]) -> list[Side]:
    """One `Side` per queue: ``cairn`` and ``orchestration`` run the chain, ``bare`` the floor."""
    spec = chain_spec()

    def chain(queue: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            handle = await client.start_workflow(
                ChainWorkflow.run,
                spec,
                id=f"overhead-{uuid.uuid4().hex[:12]}",
                task_queue=queue,
                execution_timeout=RUN_TIMEOUT,
                search_attributes=team_search_attributes(spec),
            )
            assert len((await handle.result()).steps) == STEPS

        return run

    async def bare() -> None:
        handle = await client.start_workflow(
            BareChainWorkflow.run,
            BareInput(steps=STEPS),
            id=f"bare-{uuid.uuid4().hex[:12]}",
            task_queue=queues["bare"],
            execution_timeout=RUN_TIMEOUT,
        )
        assert (await handle.result()).steps == STEPS

    return [Side(name, bare if name == "bare" else chain(queue)) for name, queue in queues.items()]


@activity.defn(name=AGENT_STEP)
async def stub_step(inp: StepInput) -> StepResult:
    """`agent_step`'s contract without its work (no memory, no model): orchestration alone."""
    run = run_namespace(inp.tenant, activity.info().workflow_id or "")
    return StepResult(
        step=inp.step,
        agent=inp.agent.name,
        output=MemoryRef(namespace=run, key=f"output:{inp.step}", version=1, commit_seq=1),
        commit_seq=1,
        preview=reply("", [ChatMessage(role="user", content=inp.task)], [])[:PREVIEW_CHARS],
        model="scripted",
        offline=True,
    )


async def measure(
    client: Client, store: MemoryStore, plan: Sequence[tuple[int, int]]
) -> list[tuple[int, list[Side]]]:
    """Run every (concurrency, rounds) of ``plan`` on one set of workers, warmed up once."""
    queues = {name: task_queue(name) for name in ("cairn", "orchestration", "bare")}
    out = []
    async with (
        cairn_worker(client, store, queues["cairn"], register(AgentRegistry())),
        plain_worker(client, queues["orchestration"], [ChainWorkflow], [stub_step]),
        plain_worker(client, queues["bare"], [BareChainWorkflow], [noop]),
    ):
        for side in sides(client, queues):
            await side.round(2, record=False)  # warm-up: imports, sandbox, caches
        for concurrency, rounds in plan:
            measured = sides(client, queues)
            for i in range(rounds):
                for side in measured if i % 2 == 0 else measured[::-1]:
                    await side.round(concurrency)
            out.append((concurrency, measured))
    return out


def rows(concurrency: int, measured: list[Side]) -> list[Row]:
    step_ms = {s.name: median(s.walls) * 1000 / STEPS for s in measured}
    out = []
    for side in measured:
        ratio = step_ms[side.name] / step_ms["bare"]
        out.append(
            {
                "concurrency": concurrency,
                "side": side.name,
                "rounds": len(side.walls),
                "step_ms": step_ms[side.name],
                "step_ms_range": (
                    min(side.walls) * 1000 / STEPS,
                    max(side.walls) * 1000 / STEPS,
                ),
                "steps_s": concurrency * STEPS / median(side.walls),
                "worker_cpu_ms_step": median(side.cpu) * 1000,
                "server_cpu_ms_step": median(side.server) * 1000,
                "x_bare": ratio,
                "target_met": ratio <= TARGET if side.name == "cairn" else None,
            }
        )
    return out


@benchmark("step_overhead", "Step overhead: Cairn agent steps vs bare Temporal activities")
async def step_overhead(profile: Profile) -> list[Row]:
    plan = ((1, 10), (20, 6), (100, 3)) if profile.full else ((1, 3), (20, 2), (100, 1))
    out: list[Row] = []
    with scratch(profile, "sqlite", "steps") as db:
        store = await MemoryStore.open(db.url, pool_size=16)
        try:
            async with dev_server() as client:
                for concurrency, measured in await measure(client, store, plan):
                    out += rows(concurrency, measured)
        finally:
            await store.close()
    return out
