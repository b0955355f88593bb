"""An OpenAI Agents SDK model and provider on the local chat-completions server."""

from __future__ import annotations

from typing import Any

from agents import Agent, OpenAIChatCompletionsModel, OpenAIProvider
from openai import AsyncOpenAI

from tests.activities.fake_providers import FakeProvider, openai_completion


def agent_on(client: AsyncOpenAI, name: str = "test") -> Agent[Any]:
    """An agent whose model is the SDK's chat-completions model on ``client``."""
    return Agent(
        name=name, model=OpenAIChatCompletionsModel(model="gpt-test", openai_client=client)
    )


def provider_on(client: AsyncOpenAI) -> OpenAIProvider:
    """The SDK's model provider on ``client`` (for the Temporal plugin's model activity)."""
    return OpenAIProvider(openai_client=client, use_responses=False)


def reply(provider: FakeProvider, text: str) -> None:
    provider.reply(200, openai_completion(text))


def last_messages(provider: FakeProvider) -> list[dict[str, Any]]:
    """The ``messages`` of the last request the model received."""
    return list(provider.requests[-1].json["messages"])
