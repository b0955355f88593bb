"""One multi-agent chain, planner -> researcher -> writer, as a Cairn team and as a LangGraph graph.

Both run the same deterministic agent functions (`output`), so they produce the same messages:
each run adds the user's question and three agent messages to one session's conversation.
Cairn keeps the conversation in its session transcript (memory, append-only) and passes
references through Temporal; LangGraph keeps it in the graph state, checkpointed after every
step by its checkpointer. ``on_call`` lets the crash test log and stop an agent mid-run.

LangGraph is imported inside `langgraph_chain`: it is a bench-only dependency.
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypedDict

from activities import AgentRegistry, AgentSpec
from activities.llm import ChatMessage, ToolSpec
from memory.context import ContextSpec
from workflows.contracts import ChainSpec, Step

AGENTS = ("planner", "researcher", "writer")
TENANT = "bench"
OUTPUT_CHARS = {"planner": 800, "researcher": 2000, "writer": 1500}
"""Characters each agent writes per run: a plan, findings and a draft."""

OnCall = Callable[[str, int], Awaitable[None] | None]


def question(turn: int) -> str:
    return f"Question {turn}: what changed since the last report?"


def turn_of(text: str) -> int:
    return int(text.split(":", 1)[0].split()[-1])


def output(agent: str, turn: int) -> str:
    """What ``agent`` answers in run ``turn``: deterministic, ``OUTPUT_CHARS[agent]`` long."""
    unit = f"[{agent} #{turn}] point, source, caveat and next step. "
    size = OUTPUT_CHARS[agent]
    return (unit * (size // len(unit) + 1))[:size]


# --- Cairn -------------------------------------------------------------------------------


def cairn_registry(on_call: OnCall | None = None) -> AgentRegistry:
    """Scripted agents answering `output` (after ``on_call(agent, turn)``, if given)."""
    registry = AgentRegistry()
    for agent in AGENTS:

        async def reply(
            system: str,
            messages: Sequence[ChatMessage],
            tools: Sequence[ToolSpec],
            agent: str = agent,
        ) -> str:
            turn = turn_of(messages[-1].content)
            if on_call is not None:
                result = on_call(agent, turn)
                if result is not None:
                    await result
            return output(agent, turn)

        registry.script(agent)(reply)
    return registry


def cairn_chain(session: str, turn: int) -> ChainSpec:
    """The chain for run ``turn`` of ``session``: each agent sees the conversation so far."""
    agents = tuple(
        AgentSpec(
            model="scripted",
            name=a,
            instructions=f"You are the {a}.",
            context=ContextSpec(last_messages=20, token_budget=20_000),
        )
        for a in AGENTS
    )
    nodes = tuple(Step(agent=a, sees=(AGENTS[i - 1],) if i else ()) for i, a in enumerate(AGENTS))
    return ChainSpec(
        name="trio",
        tenant=TENANT,
        agents=agents,
        nodes=nodes,
        input=question(turn),
        session=session,
    )


# --- LangGraph ---------------------------------------------------------------------------


class State(TypedDict):
    messages: Annotated[list[dict[str, str]], operator.add]
    turn: int


def langgraph_chain(checkpointer: Any, on_call: OnCall | None = None) -> Any:
    """The same chain as a compiled LangGraph ``StateGraph`` on ``checkpointer``."""
    from langgraph.graph import END, START, StateGraph

    def node(agent: str) -> Callable[[State], dict[str, Any]]:
        def run(state: State) -> dict[str, Any]:
            if on_call is not None:
                on_call(agent, state["turn"])
            text = output(agent, state["turn"])
            return {"messages": [{"role": "assistant", "name": agent, "content": text}]}

        return run

    graph = StateGraph(State)
    previous = START
    for agent in AGENTS:
        graph.add_node(agent, node(agent))
        graph.add_edge(previous, agent)
        previous = agent
    graph.add_edge(previous, END)
    return graph.compile(checkpointer=checkpointer)


def langgraph_input(turn: int) -> State:
    return {"messages": [{"role": "user", "content": question(turn)}], "turn": turn}
