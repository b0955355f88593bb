"""The example teams the demo runs, as data: a research team and a support agent.

Their model is given explicitly; ``"scripted"`` here means the demo's own offline scripts
(`activities.demo`, as ``scripted:demo-<agent>``), which answer only these agents.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import AgentSpec, MemoryWrite
    from activities.demo import demo_model
    from memory.context import ContextSpec, Pinned, SearchSource
    from workflows.contracts import ChainSpec, Loop, Parallel, Step, Write

ANGLES = ("failure and recovery", "memory and context", "operations and cost")

CORPUS = {
    "durable-execution": "Durable execution records every step of a workflow in an event "
    "history, so a crashed worker resumes exactly where it stopped instead of starting over.",
    "activity-retries": "Activities are retried automatically with exponential backoff; an "
    "idempotency key makes a retried write apply once, so failure and recovery lose nothing.",
    "context-windows": "Agents see a bounded context window: recent messages, pinned facts and "
    "retrieved documents must share a token budget, so memory must be searchable and summarised.",
    "shared-memory": "A shared, versioned memory lets agents hand context to each other across "
    "steps and sessions; every version records which agent wrote it and when.",
    "history-limits": "Workflow histories have size limits, so large context must live outside "
    "the history and only references should cross the orchestrator; continue-as-new keeps "
    "long sessions small.",
    "operating-costs": "Operations cost grows with model tokens and storage; compaction "
    "summarises old turns and expiry removes stale entries, keeping cost and latency flat.",
}


def corpus_writes(tenant: str) -> tuple[MemoryWrite, ...]:
    """The demo's document collection, ingested into ``<tenant>/docs``."""
    return tuple(
        MemoryWrite(namespace=f"{tenant}/docs", key=key, value={"text": text}, tags=("demo",))
        for key, text in CORPUS.items()
    )


def _model(model: str, agent: str) -> str:
    return demo_model(agent) if model == "scripted" else model


def research_team(tenant: str, question: str, *, model: str) -> ChainSpec:
    """Planner, three researchers in parallel, then a writer and reviewer loop.

    ``model`` runs every agent; ``"scripted"`` gives each the demo's offline script.
    """
    docs = f"{tenant}/docs"
    no_transcript = ContextSpec(transcript=None)
    agents = (
        AgentSpec(
            name="planner",
            instructions="Break the question into three research angles, one per line.",
            model=_model(model, "planner"),
            context=no_transcript,
        ),
        AgentSpec(
            name="researcher",
            instructions="Answer from the recalled documents only; cite each document's key.",
            model=_model(model, "researcher"),
            context=ContextSpec(
                # Every document that matches: which of them rank first can change with what
                # else the index holds (SQLite's bm25 counts words across all namespaces).
                transcript=None,
                search=SearchSource(where=docs, limit=len(CORPUS)),
                outputs=("planner",),
            ),
        ),
        AgentSpec(
            name="writer",
            instructions="Write a short report from the research; address the reviewer's notes.",
            model=_model(model, "writer"),
            context=ContextSpec(
                transcript=None,
                outputs=tuple(f"research-{i}" for i in range(1, len(ANGLES) + 1)),
            ),
        ),
        AgentSpec(
            name="reviewer",
            instructions="Review the report. End with 'VERDICT: approve' or 'VERDICT: revise'.",
            model=_model(model, "reviewer"),
            context=ContextSpec(transcript=None, pinned=(Pinned(where=docs, key="shared-memory"),)),
        ),
    )
    research = Parallel(
        steps=tuple(
            Step(agent="researcher", name=f"research-{i}", task=f"{{input}} Focus: {angle}.")
            for i, angle in enumerate(ANGLES, start=1)
        )
    )
    review = Loop(
        steps=(
            Step(agent="writer", sees=("reviewer",)),
            Step(agent="reviewer", sees=("writer",)),
        ),
        until="approve",
        max_rounds=3,
    )
    return ChainSpec(
        name="research",
        tenant=tenant,
        agents=agents,
        nodes=(Write(writes=corpus_writes(tenant)), Step(agent="planner"), research, review),
        input=question,
    )


def support_agent(*, model: str) -> AgentSpec:
    """A support agent that remembers facts about the user across sessions.

    ``"scripted"`` gives it the demo's offline script.
    """
    return AgentSpec(
        name="support",
        instructions="You are a helpful support agent. Remember facts the user tells you about "
        "themselves and recall them when useful.",
        model=_model(model, "support"),
        context=ContextSpec(last_messages=20),
        tools=("remember", "recall"),
        writes=("{run}", "{session}", "{user}"),
    )
