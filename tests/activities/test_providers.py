"""The OpenAI and Anthropic adapters against a real local server speaking their wire formats."""

from __future__ import annotations

import json
import socket
import threading
import traceback
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from activities.llm import (
    ChatMessage,
    ModelClient,
    ModelProtocolError,
    ModelReply,
    ModelRequestError,
    ModelUnavailable,
    ProviderSettings,
    ToolCall,
    ToolSpec,
    Usage,
    close_model_clients,
    resolve_model,
)
from memory.tokens import approx_tokens
from tests.activities.fake_providers import (
    FakeProvider,
    anthropic_error,
    anthropic_message,
    openai_completion,
    openai_error,
)

CANARY = "sk-canary-0123456789abcdef"
SECRET_CONTENT = "the-launch-code-is-4417"
LOOKUP = ToolSpec(
    name="lookup",
    description="Look a word up.",
    parameters={"type": "object", "properties": {"word": {"type": "string"}}},
)
PROVIDERS = pytest.mark.parametrize("provider", ["openai", "anthropic"])


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    server = FakeProvider()
    yield server
    await close_model_clients()
    server.close()


def model(provider: str, url: str, *, timeout: float = 5.0, key: str = CANARY) -> ModelClient:
    settings = ProviderSettings(
        openai_api_key=SecretStr(key),
        openai_base_url=f"{url}/v1",
        anthropic_api_key=SecretStr(key),
        anthropic_base_url=url,
        timeout_seconds=timeout,
    )
    return resolve_model(f"{provider}:test-model", providers=settings)


def ok_body(provider: str) -> dict[str, Any]:
    return openai_completion("fine") if provider == "openai" else anthropic_message("fine")


def error_body(provider: str, message: str, kind: str) -> dict[str, Any]:
    if provider == "openai":
        return openai_error(message, type="invalid_request_error", code=kind)
    return anthropic_error(message, type=kind)


def user(text: str, name: str | None = None) -> ChatMessage:
    return ChatMessage(role="user", content=text, name=name)


async def test_openai_plain_reply(fake: FakeProvider) -> None:
    fake.reply(200, openai_completion("Hi there.", model="gpt-test-2025"))
    reply = await model("openai", fake.url).complete(
        system="Be brief.", messages=[user("hello", name="alice")]
    )
    assert reply == ModelReply(
        text="Hi there.",
        usage=Usage(input_tokens=11, output_tokens=7),
        finish_reason="stop",
        model="openai:gpt-test-2025",
        offline=False,
    )
    [sent] = fake.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {CANARY}"
    assert sent.json["model"] == "test-model"
    assert sent.json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello", "name": "alice"},
    ]
    assert "tools" not in sent.json
    assert "max_completion_tokens" not in sent.json


async def test_openai_reply_without_usage_is_approximated(fake: FakeProvider) -> None:
    body = openai_completion("abcdefgh")
    del body["usage"]
    fake.reply(200, body)
    reply = await model("openai", fake.url).complete(system="abcd", messages=[user("abcdefghijkl")])
    assert reply.usage == Usage(input_tokens=1 + 3, output_tokens=approx_tokens("abcdefgh"))


async def test_openai_tool_call_round_trip(fake: FakeProvider) -> None:
    fake.reply(200, openai_completion(None, tool_calls=[("call_1", "lookup", '{"word": "cairn"}')]))
    fake.reply(200, openai_completion("A pile of stones."))
    client = model("openai", fake.url)
    first = await client.complete(system="", messages=[user("define cairn")], tools=[LOOKUP])
    assert first.tool_calls == (ToolCall(id="call_1", name="lookup", arguments={"word": "cairn"}),)
    assert (first.text, first.finish_reason) == ("", "tool_calls")
    history = [
        user("define cairn"),
        ChatMessage(role="assistant", tool_calls=first.tool_calls),
        ChatMessage(role="tool", content="stones", tool_call_id="call_1", name="lookup"),
    ]
    second = await client.complete(system="", messages=history, tools=[LOOKUP])
    assert (second.text, second.tool_calls) == ("A pile of stones.", ())

    first_sent, second_sent = (r.json for r in fake.requests)
    assert first_sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look a word up.",
                "parameters": LOOKUP.parameters,
            },
        }
    ]
    assistant, tool = second_sent["messages"][1:]
    [call] = assistant.pop("tool_calls")
    assert assistant == {"role": "assistant", "content": None}
    assert json.loads(call["function"].pop("arguments")) == {"word": "cairn"}
    assert call == {"id": "call_1", "type": "function", "function": {"name": "lookup"}}
    assert tool == {"role": "tool", "content": "stones", "tool_call_id": "call_1"}


async def test_anthropic_plain_reply(fake: FakeProvider) -> None:
    fake.reply(200, anthropic_message("Hi.", input_tokens=13, cache_read_input_tokens=4))
    reply = await model("anthropic", fake.url).complete(
        system="Be brief.",
        messages=[ChatMessage(role="system", content="Cite sources."), user("hello", name="alice")],
    )
    assert reply == ModelReply(
        text="Hi.",
        usage=Usage(input_tokens=17, output_tokens=5),
        finish_reason="stop",
        model="anthropic:claude-test-2025",
        offline=False,
    )
    [sent] = fake.requests
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    # Older SDKs send the key as x-api-key; this one sends it as a bearer token.
    sent_key = sent.headers.get("x-api-key") or sent.headers["authorization"].removeprefix(
        "Bearer "
    )
    assert sent_key == CANARY
    assert "anthropic-version" in sent.headers
    assert sent.json["model"] == "test-model"
    assert sent.json["max_tokens"] == 4096
    assert sent.json["system"] == "Be brief.\n\nCite sources."
    assert sent.json["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hello"}]}
    ]
    assert "tools" not in sent.json


async def test_anthropic_tool_use_round_trip_merges_tool_results(fake: FakeProvider) -> None:
    uses = [("toolu_1", "lookup", {"word": "cairn"}), ("toolu_2", "lookup", {"word": "tor"})]
    fake.reply(200, anthropic_message("Let me look.", tool_uses=uses))
    fake.reply(200, anthropic_message("Done."))
    client = model("anthropic", fake.url)
    first = await client.complete(system="", messages=[user("define")], tools=[LOOKUP])
    assert first.text == "Let me look."
    assert first.finish_reason == "tool_calls"
    assert first.tool_calls == tuple(ToolCall(id=i, name=n, arguments=a) for i, n, a in uses)
    history = [
        user("define"),
        ChatMessage(role="assistant", content=first.text, tool_calls=first.tool_calls),
        ChatMessage(role="tool", content="stones", tool_call_id="toolu_1"),
        ChatMessage(role="tool", content="a hill", tool_call_id="toolu_2"),
    ]
    assert (await client.complete(system="", messages=history, tools=[LOOKUP])).text == "Done."

    first_sent, second_sent = (r.json for r in fake.requests)
    assert first_sent["tools"] == [
        {"name": "lookup", "description": "Look a word up.", "input_schema": LOOKUP.parameters}
    ]
    assert second_sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "define"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"word": "cairn"}},
                {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {"word": "tor"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "stones"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "a hill"},
            ],
        },
    ]


@PROVIDERS
async def test_rate_limit_is_unavailable_after_exactly_one_request(
    fake: FakeProvider, provider: str
) -> None:
    headers = {"retry-after": "7", "x-request-id": "req_abc", "request-id": "req_abc"}
    fake.reply(429, error_body(provider, "slow down", "rate_limit_error"), headers)
    fake.reply(200, ok_body(provider))  # would be taken by an SDK retry
    with pytest.raises(ModelUnavailable) as caught:
        await model(provider, fake.url).complete(system="", messages=[user("hi")])
    assert len(fake.requests) == 1
    error = caught.value
    assert (error.status, error.retry_after, error.retryable) == (429, 7.0, True)
    assert (error.provider, error.model, error.request_id) == (provider, "test-model", "req_abc")
    assert str(error) == (
        f"{provider} model 'test-model' is unavailable: HTTP 429 Too Many Requests, "
        "code rate_limit_error (request req_abc); retry after 7s"
    )


@PROVIDERS
@pytest.mark.parametrize("status", [408, 409, 500, 503, 529])
async def test_transient_statuses_are_unavailable(
    fake: FakeProvider, provider: str, status: int
) -> None:
    fake.reply(status, error_body(provider, "overloaded", "overloaded_error"))
    with pytest.raises(ModelUnavailable, match=f"HTTP {status}") as caught:
        await model(provider, fake.url).complete(system="", messages=[user("hi")])
    assert (caught.value.status, caught.value.retry_after) == (status, None)
    assert len(fake.requests) == 1


@PROVIDERS
@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retryable(
    fake: FakeProvider, provider: str, status: int
) -> None:
    fake.reply(status, error_body(provider, "no", "invalid_request_error"))
    with pytest.raises(ModelRequestError) as caught:
        await model(provider, fake.url).complete(system="", messages=[user("hi")])
    assert (caught.value.status, caught.value.retryable) == (status, False)
    assert f"{provider} rejected the request to model 'test-model': HTTP {status}" in str(
        caught.value
    )
    assert "code invalid_request_error" in str(caught.value)
    assert len(fake.requests) == 1


@PROVIDERS
async def test_the_providers_retry_hint_overrides_the_status(
    fake: FakeProvider, provider: str
) -> None:
    quota = error_body(provider, "You exceeded your current quota", "insufficient_quota")
    fake.reply(429, quota, {"x-should-retry": "false"})
    fake.reply(400, error_body(provider, "try again", "busy"), {"x-should-retry": "true"})
    client = model(provider, fake.url)
    with pytest.raises(ModelRequestError, match="HTTP 429 Too Many Requests, code insufficient_"):
        await client.complete(system="", messages=[user("hi")])
    with pytest.raises(ModelUnavailable, match="HTTP 400 Bad Request, code busy"):
        await client.complete(system="", messages=[user("hi")])


MALFORMED = {
    "not json": (b"<html>oops", {}),
    "not json, text/html": (b"<html>oops", {"content-type": "text/html"}),
    "wrong shape": (b'{"unexpected": true}', {}),
    "a list": (b"[1, 2]", {}),
}


@PROVIDERS
@pytest.mark.parametrize("case", MALFORMED)
async def test_malformed_bodies_are_protocol_errors(
    fake: FakeProvider, provider: str, case: str
) -> None:
    body, headers = MALFORMED[case]
    fake.reply(200, body, headers)
    with pytest.raises(ModelProtocolError, match=f"{provider} sent a malformed response") as caught:
        await model(provider, fake.url).complete(system="", messages=[user("hi")])
    assert caught.value.retryable is False


async def test_openai_tool_arguments_that_are_not_a_json_object(fake: FakeProvider) -> None:
    fake.reply(200, openai_completion(None, tool_calls=[("call_1", "lookup", "{not json")]))
    fake.reply(200, openai_completion(None, tool_calls=[("call_2", "lookup", "[1]")]))
    client = model("openai", fake.url)
    with pytest.raises(ModelProtocolError, match="Expecting property name"):
        await client.complete(system="", messages=[user("hi")], tools=[LOOKUP])
    with pytest.raises(ModelProtocolError, match="'call_2' are not a JSON object"):
        await client.complete(system="", messages=[user("hi")], tools=[LOOKUP])


async def test_anthropic_tool_input_that_is_not_an_object(fake: FakeProvider) -> None:
    body = anthropic_message(None, tool_uses=[("toolu_1", "lookup", {})])
    body["content"][0]["input"] = "a string"
    fake.reply(200, body)
    with pytest.raises(ModelProtocolError, match=r"malformed response .*: invalid arguments$") as e:
        await model("anthropic", fake.url).complete(system="", messages=[user("hi")])
    assert "a string" not in str(e.value)  # the reason names fields, never their values


@PROVIDERS
@pytest.mark.parametrize("status", [400, 401, 429, 500])
async def test_errors_never_carry_the_key_or_the_content(
    fake: FakeProvider, provider: str, status: int
) -> None:
    # Providers echo parts of the key (OpenAI's 401) and of the request in their messages.
    echo = f"Incorrect API key provided: {CANARY}. You sent: {SECRET_CONTENT}"
    fake.reply(status, error_body(provider, echo, "some_error"))
    with pytest.raises((ModelUnavailable, ModelRequestError)) as caught:
        await model(provider, fake.url).complete(system="", messages=[user(SECRET_CONTENT)])
    [sent] = fake.requests
    assert CANARY in str(sent.headers) and SECRET_CONTENT in sent.body.decode()
    shown = (
        str(caught.value) + repr(caught.value) + "".join(traceback.format_exception(caught.value))
    )
    assert CANARY not in shown
    assert SECRET_CONTENT not in shown
    assert caught.value.__cause__ is None


@PROVIDERS
async def test_timeout_is_unavailable(fake: FakeProvider, provider: str) -> None:
    fake.reply_after(threading.Event(), ok_body(provider))  # released only at teardown
    with pytest.raises(ModelUnavailable, match=r"unavailable: no response within 0\.3s") as caught:
        await model(provider, fake.url, timeout=0.3).complete(system="", messages=[user("hi")])
    assert caught.value.status is None
    assert len(fake.requests) == 1


@PROVIDERS
async def test_connection_failure_is_unavailable(fake: FakeProvider, provider: str) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ModelUnavailable, match=r"cannot connect to 127\.0\.0\.1"):
        await model(provider, f"http://127.0.0.1:{port}").complete(system="", messages=[user("hi")])


@PROVIDERS
async def test_models_resolved_for_one_endpoint_share_a_connection(
    fake: FakeProvider, provider: str
) -> None:
    for _ in range(3):
        fake.reply(200, ok_body(provider))
    await model(provider, fake.url).complete(system="", messages=[user("one")])
    await model(provider, fake.url).complete(system="", messages=[user("two")])
    await model(provider, fake.url, key="another-key").complete(system="", messages=[user("3")])
    first, second, other_key = (r.client_port for r in fake.requests)
    assert first == second
    assert other_key != first
