"""The README's `CairnHistory` example works as written (with PydanticAI's offline TestModel)."""

from __future__ import annotations

from memory import MemoryStore
from tests.integrations.readme_blocks import python_blocks, run_async


async def test_the_history_example_runs(sqlite_store: MemoryStore):
    source = python_blocks()[2].replace('"openai:gpt-4o-mini"', "TestModel()")
    source = "from pydantic_ai.models.test import TestModel\n" + source
    scope = await run_async(source)
    scope["history"].bind(sqlite_store)
    agent = scope["agent"]
    await agent.run("Hello", conversation_id="c-42")
    await agent.run("And again", conversation_id="c-42")
    stored = await scope["history"].history("c-42")
    assert [m.kind for m in stored] == ["request", "response"] * 2
