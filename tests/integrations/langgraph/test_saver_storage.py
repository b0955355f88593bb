"""`CairnSaver` under a real LangGraph graph: a conversation stores each message once, and
histories rebuilt from deltas are exact, across branches and across saver instances."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from cairn.integrations.langgraph.saver import CairnSaver
from memory import MemoryStore

ROOT = ("acme", "checkpoints")


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def reply(state: Chat) -> dict[str, Any]:
    return {"messages": [AIMessage(f"echo {len(state['messages'])}")]}


def chat(saver: CairnSaver) -> Any:
    graph = StateGraph(Chat)
    graph.add_node("reply", reply)
    graph.add_edge(START, "reply")
    graph.add_edge("reply", END)
    return graph.compile(checkpointer=saver)


def texts(state: dict[str, Any]) -> list[str]:
    return [str(m.content) for m in state["messages"]]


async def stored_items(memory: MemoryStore, thread_id: str) -> int:
    """How many serialized list items the thread's channel values hold in all."""
    total, cursor = 0, None
    while True:
        page = await memory.list(ROOT, limit=1000, cursor=cursor)
        for e in page.entries:
            if e.namespace[-1] == "b" and isinstance(e.value, dict) and e.value["t"] == "list":
                total += len(e.value["items"])
        if page.next_cursor is None:
            return total
        cursor = page.next_cursor


async def test_a_conversation_stores_each_message_once(module_memory: MemoryStore) -> None:
    saver = CairnSaver(module_memory, namespace=ROOT)
    graph = chat(saver)
    config = {"configurable": {"thread_id": "t-once"}}
    for turn in range(1, 13):
        state = await graph.ainvoke({"messages": [HumanMessage(f"q{turn}")]}, config)
    assert len(state["messages"]) == 24
    # Each checkpoint after a step holds the messages channel; each message is stored once.
    assert await stored_items(module_memory, "t-once") == 24
    saver.close()


async def test_a_fresh_saver_rebuilds_the_history_from_deltas(module_memory: MemoryStore) -> None:
    first = CairnSaver(module_memory, namespace=ROOT)
    config = {"configurable": {"thread_id": "t-cold"}}
    for turn in range(1, 6):
        expected = await chat(first).ainvoke({"messages": [HumanMessage(f"q{turn}")]}, config)
    first.close()
    cold = CairnSaver(module_memory, namespace=ROOT)
    state = await chat(cold).aget_state(config)
    assert texts(state.values) == texts(expected)
    after = await chat(cold).ainvoke({"messages": [HumanMessage("q6")]}, config)
    assert texts(after)[-2:] == ["q6", "echo 11"] and len(after["messages"]) == 12
    cold.close()


async def test_a_branch_from_an_earlier_checkpoint_keeps_both_histories(
    module_memory: MemoryStore,
) -> None:
    saver = CairnSaver(module_memory, namespace=ROOT)
    graph = chat(saver)
    config = {"configurable": {"thread_id": "t-branch"}}
    for turn in range(1, 4):
        await graph.ainvoke({"messages": [HumanMessage(f"q{turn}")]}, config)
    history = [s async for s in graph.aget_state_history(config)]
    at_two = next(s for s in history if len(s.values.get("messages", [])) == 4 and not s.next)
    branched = await graph.ainvoke({"messages": [HumanMessage("other")]}, at_two.config)
    assert texts(branched) == ["q1", "echo 1", "q2", "echo 3", "other", "echo 5"]
    main = await graph.aget_state(config)
    assert texts(main.values) == texts(branched)  # the branch is now the thread's latest
    old = await graph.aget_state(history[0].config)
    assert texts(old.values)[-2:] == ["q3", "echo 5"]
    saver.close()


def test_the_sync_api_runs_a_graph(module_memory: MemoryStore) -> None:
    saver = CairnSaver(module_memory, namespace=ROOT)
    config = {"configurable": {"thread_id": "t-sync"}}
    chat(saver).invoke({"messages": [HumanMessage("q1")]}, config)
    state = chat(saver).invoke({"messages": [HumanMessage("q2")]}, config)
    assert texts(state) == ["q1", "echo 1", "q2", "echo 3"]
    assert len(list(saver.list(config))) >= 4
    saver.close()
