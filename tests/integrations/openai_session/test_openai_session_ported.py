"""The OpenAI Agents SDK's own session scenarios, run against `CairnSession` on both backends.

Ported from openai/openai-agents-python:

- ``tests/memory/test_session.py`` at commit 063581f55d08951b5684008ef12408261bd25377
- ``tests/extensions/memory/test_sqlalchemy_session.py`` at commit
  01e48e6f4de67ce350e07d00157fe3efb655c056

Changes in porting: the SDK's ``FakeModel``/``ScriptedModel`` become its real
``OpenAIChatCompletionsModel`` on a local chat-completions server (what the model received is
read from the request); session ids use ``-`` where the SDK's use ``_`` (Cairn namespace segments
allow letters, digits and ``._:-``); thread-pool writers become concurrent tasks on one loop
(the store is bound to its event loop). Left out: ``run_sync``/``run_streamed`` variants, and
cases about SQLite/SQLAlchemy internals (file locks, connections, MySQL collation, DDL,
corrupt rows written behind the session's back, statement ordering).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest
from agents import RunConfig, Runner, TResponseInputItem
from agents.memory import SessionSettings
from openai import AsyncOpenAI

from cairn.integrations.openai_agents import CairnSession
from memory import MemoryStore
from tests.activities.fake_providers import FakeProvider
from tests.integrations.openai_session.openai_model import agent_on, last_messages, reply

HELLO: list[TResponseInputItem] = [
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "Hi there!"},
]


Open = Callable[..., CairnSession]


@pytest.fixture
def session(store: MemoryStore, tenant: str) -> Callable[..., CairnSession]:
    def open_session(session_id: str, **kwargs: Any) -> CairnSession:
        return CairnSession(session_id, tenant=tenant, store=store, **kwargs)

    return open_session


def contents(items: list[TResponseInputItem]) -> list[Any]:
    return [cast(dict[str, Any], item).get("content") for item in items]


def message(item_id: str, text: str) -> TResponseInputItem:
    content = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    item = {"id": item_id, "type": "message", "role": "assistant", "status": "completed"}
    return cast(TResponseInputItem, {**item, "content": [content]})


def reasoning(item_id: str, text: str) -> TResponseInputItem:
    summary = [{"type": "summary_text", "text": text}]
    return cast(TResponseInputItem, {"id": item_id, "type": "reasoning", "summary": summary})


# -- tests/memory/test_session.py ------------------------------------------------------------


async def test_session_memory_basic_functionality(
    session: Open,
    model_client: AsyncOpenAI,
    store: MemoryStore,
    provider: FakeProvider,
):
    s, agent = session("test-session-123"), agent_on(model_client)
    reply(provider, "San Francisco")
    result1 = await Runner.run(agent, "What city is the Golden Gate Bridge in?", session=s)
    assert result1.final_output == "San Francisco"
    reply(provider, "California")
    result2 = await Runner.run(agent, "What state is it in?", session=s)
    assert result2.final_output == "California"
    assert len(last_messages(provider)) > 1


async def test_session_memory_with_explicit_instance(
    session: Open,
    model_client: AsyncOpenAI,
    store: MemoryStore,
    provider: FakeProvider,
):
    s, agent = session("test-session-456"), agent_on(model_client)
    reply(provider, "Hello")
    assert (await Runner.run(agent, "Hi there", session=s)).final_output == "Hello"
    reply(provider, "I remember you said hi")
    result = await Runner.run(agent, "Do you remember what I said?", session=s)
    assert result.final_output == "I remember you said hi"
    assert [m["content"] for m in last_messages(provider)] == [
        "Hi there",
        "Hello",
        "Do you remember what I said?",
    ]


async def test_session_memory_disabled(model_client: AsyncOpenAI, provider: FakeProvider):
    agent = agent_on(model_client)
    reply(provider, "Hello")
    await Runner.run(agent, "Hi there")
    reply(provider, "I don't remember")
    await Runner.run(agent, "Do you remember what I said?")
    assert len(last_messages(provider)) == 1


async def test_session_memory_different_sessions(
    session: Open,
    model_client: AsyncOpenAI,
    store: MemoryStore,
    provider: FakeProvider,
):
    # Also the SQLAlchemy file's test_session_isolation, the same scenario.
    agent = agent_on(model_client)
    s1, s2 = session("session-1"), session("session-2")
    reply(provider, "I like cats")
    await Runner.run(agent, "I like cats", session=s1)
    reply(provider, "I like dogs")
    await Runner.run(agent, "I like dogs", session=s2)
    reply(provider, "Yes, you mentioned cats")
    result = await Runner.run(agent, "What did I say I like?", session=s1)
    assert result.final_output == "Yes, you mentioned cats"
    sent = " ".join(str(m["content"]) for m in last_messages(provider))
    assert "cats" in sent and "dogs" not in sent


async def test_session_memory_direct(session: Open):
    s = session("direct-test")
    await s.add_items(HELLO)
    retrieved = await s.get_items()
    assert [(i.get("role"), i.get("content")) for i in retrieved] == [  # type: ignore[union-attr]
        ("user", "Hello"),
        ("assistant", "Hi there!"),
    ]
    await s.clear_session()
    assert await s.get_items() == []


async def test_session_memory_pop_item(session: Open):
    s = session("pop-test")
    assert await s.pop_item() is None
    await s.add_items(
        [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi there!"},
            {"role": "user", "content": "How are you?"},
        ]
    )
    assert len(await s.get_items()) == 3
    assert contents([await s.pop_item()]) == ["How are you?"]  # type: ignore[list-item]
    assert contents(await s.get_items()) == ["Hello", "Hi there!"]
    assert contents([await s.pop_item()]) == ["Hi there!"]  # type: ignore[list-item]
    assert contents([await s.pop_item()]) == ["Hello"]  # type: ignore[list-item]
    assert await s.pop_item() is None
    assert await s.get_items() == []


async def test_session_memory_pop_different_sessions(session: Open):
    s1, s2 = session("session-1"), session("session-2")
    await s1.add_items([{"role": "user", "content": "Session 1 message"}])
    await s2.add_items(
        [
            {"role": "user", "content": "Session 2 message 1"},
            {"role": "user", "content": "Session 2 message 2"},
        ]
    )
    assert contents([await s2.pop_item()]) == ["Session 2 message 2"]  # type: ignore[list-item]
    assert contents(await s1.get_items()) == ["Session 1 message"]
    assert contents(await s2.get_items()) == ["Session 2 message 1"]


async def test_session_get_items_with_limit(session: Open):
    s = session("count-test")
    texts = ["Message 1", "Response 1", "Message 2", "Response 2", "Message 3", "Response 3"]
    await s.add_items([{"role": "user", "content": t} for t in texts])
    assert contents(await s.get_items()) == texts
    assert contents(await s.get_items(limit=2)) == texts[-2:]
    assert contents(await s.get_items(limit=4)) == texts[-4:]
    assert contents(await s.get_items(limit=10)) == texts
    assert await s.get_items(limit=0) == []


async def test_session_memory_appends_list_input_by_default(
    session: Open,
    model_client: AsyncOpenAI,
    store: MemoryStore,
    provider: FakeProvider,
):
    s, agent = session("test-validation-parametrized"), agent_on(model_client)
    history: list[TResponseInputItem] = [
        {"role": "user", "content": "Earlier message"},
        {"role": "assistant", "content": "Saved reply"},
    ]
    await s.add_items(history)
    reply(provider, "This should run")
    await Runner.run(agent, [{"role": "user", "content": "Test message"}], session=s)
    assert [(m["role"], m["content"]) for m in last_messages(provider)] == [
        ("user", "Earlier message"),
        ("assistant", "Saved reply"),
        ("user", "Test message"),
    ]


async def test_session_callback_prepared_input(
    session: Open,
    model_client: AsyncOpenAI,
    store: MemoryStore,
    provider: FakeProvider,
):
    s, agent = session("session-1"), agent_on(model_client)
    await s.add_items(
        [
            {"role": "user", "content": "Hello there."},
            {"role": "assistant", "content": "Hi, I'm here to assist you."},
        ]
    )

    def only_user_history(history: list[Any], new_input: list[Any]) -> list[Any]:
        return [item for item in history if item["role"] == "user"] + new_input

    reply(provider, "I'm gpt-4o")
    await Runner.run(
        agent,
        [{"role": "user", "content": "What your name?"}],
        session=s,
        run_config=RunConfig(session_input_callback=only_user_history),
    )
    assert [m["content"] for m in last_messages(provider)] == ["Hello there.", "What your name?"]


async def test_session_unicode_content(session: Open):
    s = session("unicode-test")
    texts = ["こんにちは", "😊👍", "Привет"]
    await s.add_items([{"role": "user", "content": t} for t in texts])
    assert contents(await s.get_items()) == texts


async def test_session_special_characters_and_sql_injection(session: Open):
    s = session("special-chars-test")
    texts = [
        "O'Reilly",
        "DROP TABLE sessions;",
        '"SELECT * FROM users WHERE name = "admin";"',
        "Robert'); DROP TABLE students;--",
        "Normal message",
    ]
    await s.add_items([{"role": "user", "content": t} for t in texts])
    assert contents(await s.get_items()) == texts


async def test_session_concurrent_access(session: Open):
    s = session("concurrent-test")
    await asyncio.gather(
        *(s.add_items([{"role": "user", "content": f"Message {i}"}]) for i in range(10))
    )
    assert set(contents(await s.get_items())) == {f"Message {i}" for i in range(10)}


async def test_session_settings_default(session: Open):
    s = session("default-settings-test")
    assert isinstance(s.session_settings, SessionSettings)
    assert s.session_settings.limit is None


async def test_session_settings_constructor(session: Open):
    s = session("constructor-settings-test", session_settings=SessionSettings(limit=5))
    assert s.session_settings is not None and s.session_settings.limit == 5


async def test_get_items_uses_session_settings_limit(session: Open):
    s = session("uses-settings-limit-test", session_settings=SessionSettings(limit=3))
    await s.add_items([{"role": "user", "content": f"Message {i}"} for i in range(5)])
    assert contents(await s.get_items()) == ["Message 2", "Message 3", "Message 4"]


async def test_get_items_explicit_limit_overrides_session_settings(session: Open):
    s = session("explicit-override-test", session_settings=SessionSettings(limit=5))
    await s.add_items([{"role": "user", "content": f"Message {i}"} for i in range(10)])
    assert contents(await s.get_items(limit=2)) == ["Message 8", "Message 9"]


async def test_runner_with_session_settings_override(
    session: Open,
    model_client: AsyncOpenAI,
    store: MemoryStore,
    provider: FakeProvider,
):
    s = session("runner-override-test", session_settings=SessionSettings(limit=100))
    await s.add_items([{"role": "user", "content": f"Turn {i}"} for i in range(10)])
    reply(provider, "Got it")
    await Runner.run(
        agent_on(model_client),
        "New question",
        session=s,
        run_config=RunConfig(session_settings=SessionSettings(limit=2)),
    )
    sent = [m["content"] for m in last_messages(provider)]
    assert sent == ["Turn 8", "Turn 9", "New question"]


# -- tests/extensions/memory/test_sqlalchemy_session.py -----------------------------------------


async def test_direct_ops(session: Open):
    s = session("direct-ops-test")
    await s.add_items(HELLO)
    assert contents(await s.get_items()) == ["Hello", "Hi there!"]
    assert contents([await s.pop_item()]) == ["Hi there!"]  # type: ignore[list-item]
    assert contents(await s.get_items()) == ["Hello"]
    await s.clear_session()
    assert await s.get_items() == []


async def test_runner_integration(
    session: Open,
    model_client: AsyncOpenAI,
    store: MemoryStore,
    provider: FakeProvider,
):
    s, agent = session("runner-integration-test"), agent_on(model_client)
    reply(provider, "San Francisco")
    await Runner.run(agent, "What city is the Golden Gate Bridge in?", session=s)
    reply(provider, "California")
    result = await Runner.run(agent, "What state is it in?", session=s)
    assert result.final_output == "California"
    assert any("Golden Gate Bridge" in str(m["content"]) for m in last_messages(provider))


async def test_session_ids_are_case_sensitive(session: Open):
    upper, lower = session("Foo"), session("foo")
    await upper.add_items([{"role": "user", "content": "upper"}])
    await lower.add_items([{"role": "user", "content": "lower"}])
    assert await upper.get_items() == [{"role": "user", "content": "upper"}]
    assert await lower.get_items() == [{"role": "user", "content": "lower"}]


async def test_get_items_with_limit(session: Open):
    s = session("limit-test")
    await s.add_items([{"role": "user", "content": str(n)} for n in range(1, 5)])
    assert contents(await s.get_items(limit=2)) == ["3", "4"]
    assert len(await s.get_items()) == 4
    assert len(await s.get_items(limit=10)) == 4


async def test_pop_from_empty_session(session: Open):
    assert await session("empty-session").pop_item() is None


async def test_concurrent_pop_item_returns_each_row_once(session: Open):
    writer, other = session("concurrent-pop"), session("concurrent-pop")
    await writer.add_items(
        [{"role": "user", "content": "first"}, {"role": "assistant", "content": "second"}]
    )
    popped = await asyncio.gather(writer.pop_item(), other.pop_item())
    assert sorted(contents([p for p in popped if p is not None])) == ["first", "second"]
    assert await writer.get_items() == []


async def test_concurrent_pop_of_one_item_returns_it_once(session: Open):
    writer, other = session("fallback-pop"), session("fallback-pop")
    await writer.add_items([{"role": "user", "content": "only"}])
    popped = await asyncio.gather(writer.pop_item(), other.pop_item())
    assert contents([p for p in popped if p is not None]) == ["only"]


async def test_get_items_limit_returns_fewer_when_history_exhausted(session: Open):
    s = session("limit-exhausted")
    await s.add_items([{"role": "user", "content": "only valid"}])
    assert contents(await s.get_items(limit=5)) == ["only valid"]


async def test_add_empty_items_list(session: Open, store: MemoryStore, tenant: str):
    s = session("add-empty-test")
    await s.add_items([])
    assert await s.get_items() == []
    assert await store.list_commits(tenant=tenant) == []


async def test_add_items_concurrent_first_access(session: Open):
    s = session("concurrent-first-access")
    submitted = [f"msg-{i}" for i in range(25)]
    results = await asyncio.gather(
        *(s.add_items([{"role": "user", "content": c}]) for c in submitted),
        return_exceptions=True,
    )
    assert [r for r in results if isinstance(r, Exception)] == []
    assert sorted(contents(await s.get_items())) == sorted(submitted)


async def test_add_items_concurrent_first_access_across_sessions(session: Open):
    a, b = session("shared-engine-a"), session("shared-engine-b")
    await asyncio.gather(
        a.add_items([{"role": "user", "content": "one"}]),
        b.add_items([{"role": "user", "content": "two"}]),
    )
    assert contents(await a.get_items()) == ["one"]
    assert contents(await b.get_items()) == ["two"]


async def test_get_items_keeps_insertion_order(session: Open):
    s = session("same-timestamp-test")
    await s.add_items([message("older_same_ts", "old")])
    await s.add_items([reasoning("rs_same_ts", "..."), message("msg_same_ts", "...")])
    ids = [cast(dict[str, Any], i)["id"] for i in await s.get_items()]
    assert ids == ["older_same_ts", "rs_same_ts", "msg_same_ts"]
    latest = [cast(dict[str, Any], i)["id"] for i in await s.get_items(limit=2)]
    assert latest == ["rs_same_ts", "msg_same_ts"]


async def test_pop_item_same_batch_returns_latest(session: Open):
    s = session("same-timestamp-pop-test")
    await s.add_items([reasoning("rs_pop_same_ts", "..."), message("msg_pop_same_ts", "...")])
    popped = await s.pop_item()
    assert popped is not None and cast(dict[str, Any], popped)["id"] == "msg_pop_same_ts"
    assert [cast(dict[str, Any], i)["id"] for i in await s.get_items()] == ["rs_pop_same_ts"]


async def test_session_round_trips_items_unchanged(session: Open):
    s = session("non-ascii-storage")
    item: TResponseInputItem = {"role": "user", "content": "café"}
    await s.add_items([item])
    assert await s.get_items() == [item]
