"""Agent steps on a provider model, served by a real local HTTP server in OpenAI's format."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from temporalio.client import WorkflowFailureError

from activities.llm import ProviderSettings, close_model_clients
from tests.activities.conftest import TENANT, Harness, agent, app_error, attempts, step_input
from tests.activities.fake_providers import FakeProvider, openai_completion, openai_error
from tests.activities.workflows_for_tests import Steps, StepsWorkflow

CANARY = "sk-canary-5f1d0c9e7a3b2468"
SPEC = agent("analyst", model="openai:gpt-test", instructions="Answer in one sentence.")


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    server = FakeProvider()
    yield server
    await close_model_clients()
    server.close()


def settings(fake: FakeProvider) -> ProviderSettings:
    return ProviderSettings(
        openai_base_url=f"{fake.url}/v1", openai_api_key=SecretStr(CANARY), timeout_seconds=5
    )


async def test_provider_reply_is_committed(harness: Harness, fake: FakeProvider) -> None:
    fake.reply(200, openai_completion("Cairns mark trails.", prompt_tokens=40, completion_tokens=5))
    async with harness.worker(providers=settings(fake)):
        wf, (result,) = await harness.steps(step_input(SPEC, "ask", task="What is a cairn?"))

    assert (result.preview, result.model, result.offline) == (
        "Cairns mark trails.",
        "openai:gpt-test-2025",
        False,
    )
    assert (result.usage.input_tokens, result.usage.output_tokens) == (40, 5)
    output = await harness.store.get((TENANT, "run", wf), "output:ask")
    assert output.value["text"] == "Cairns mark trails." and output.commit_seq == result.commit_seq
    (sent,) = fake.requests
    assert sent.headers["authorization"] == f"Bearer {CANARY}"
    assert sent.json["model"] == "gpt-test"
    assert sent.json["messages"][0] == {"role": "system", "content": "Answer in one sentence."}
    assert sent.json["messages"][-1] == {"role": "user", "content": "What is a cairn?"}


async def test_server_error_is_retried_by_temporal(harness: Harness, fake: FakeProvider) -> None:
    fake.reply(500, openai_error("overloaded", type="server_error"))
    fake.reply(200, openai_completion("Second time lucky."))
    async with harness.worker(providers=settings(fake)):
        handle = await harness.start(StepsWorkflow.run, Steps(steps=(step_input(SPEC, "ask"),)))
        result = (await handle.result()).results[0]

    assert result.preview == "Second time lucky."
    assert len(fake.requests) == 2, "the SDK's own retries are off; Temporal retried once"
    assert await attempts(handle) == [2]
    assert len(await harness.store.list_commits(workflow_id=handle.id)) == 1


async def test_bad_request_fails_fast_without_leaking_the_key(
    harness: Harness, fake: FakeProvider
) -> None:
    leak = f"Incorrect API key provided: {CANARY}"
    fake.reply(400, openai_error(leak, type="invalid_request_error", code="invalid_api_key"))
    async with harness.worker(providers=settings(fake)):
        handle = await harness.start(StepsWorkflow.run, Steps(steps=(step_input(SPEC, "ask"),)))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()

    error = app_error(failed.value)
    assert (error.type, error.non_retryable) == ("ModelRequestError", True)
    assert "HTTP 400" in error.message and "invalid_api_key" in error.message
    assert len(fake.requests) == 1 and await attempts(handle) == [1]
    history = await handle.fetch_history()
    assert CANARY not in str(history.to_json()) and "canary" not in error.message
    assert await harness.store.list_commits(workflow_id=handle.id) == []


async def test_missing_api_key_is_a_non_retryable_unknown_model(harness: Harness) -> None:
    async with harness.worker(providers=ProviderSettings()):
        handle = await harness.start(StepsWorkflow.run, Steps(steps=(step_input(SPEC),)))
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    error = app_error(failed.value)
    assert (error.type, error.non_retryable) == ("UnknownModel", True)
    assert "OPENAI_API_KEY" in error.message
