"""The model types, the scripted model and `resolve_model`."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pydantic import SecretStr, ValidationError

from activities.llm import (
    AnthropicModel,
    ChatMessage,
    ModelReply,
    ModelRequestError,
    OpenAIModel,
    ProviderSettings,
    ScriptedModel,
    ToolCall,
    ToolSpec,
    UnknownModel,
    Usage,
    resolve_model,
)
from memory.tokens import approx_tokens

CANARY = "sk-canary-0123456789abcdef"
LOOKUP = ToolSpec(
    name="lookup",
    description="Look a word up.",
    parameters={"type": "object", "properties": {"word": {"type": "string"}}},
)


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def test_tool_messages_need_a_tool_call_id() -> None:
    with pytest.raises(ValidationError, match="tool_call_id"):
        ChatMessage(role="tool", content="42")
    with pytest.raises(ValidationError, match="tool_call_id"):
        ChatMessage(role="user", content="hi", tool_call_id="call_1")
    assert ChatMessage(role="tool", content="42", tool_call_id="call_1").tool_call_id == "call_1"


def test_only_assistant_messages_carry_tool_calls() -> None:
    call = ToolCall(id="c1", name="lookup", arguments={"word": "cairn"})
    with pytest.raises(ValidationError, match="only assistant"):
        ChatMessage(role="user", content="hi", tool_calls=(call,))
    assert ChatMessage(role="assistant", tool_calls=(call,)).tool_calls == (call,)


def test_tool_names_follow_the_providers_rules() -> None:
    with pytest.raises(ValidationError):
        ToolSpec(name="look up", description="has a space")
    with pytest.raises(ValidationError):
        ToolSpec(name="x" * 65, description="too long")


def test_types_are_frozen() -> None:
    message = user("hi")
    with pytest.raises(ValidationError):
        message.content = "changed"  # type: ignore[misc]


async def test_default_scripted_reply_restates_the_last_user_message() -> None:
    model = ScriptedModel()
    messages = [
        user("first question"),
        ChatMessage(role="assistant", content="ok"),
        user("plan the trip"),
    ]
    reply = await model.complete(system="You plan.", messages=messages)
    assert reply.text == "[scripted] Noted (3 words): plan the trip"
    assert reply.offline is True
    assert reply.model == "scripted"
    assert reply.finish_reason == "stop"
    assert reply.tool_calls == ()
    assert reply.usage == Usage(
        input_tokens=approx_tokens("You plan.") + sum(approx_tokens(m.content) for m in messages),
        output_tokens=approx_tokens(reply.text),
    )
    assert await model.complete(system="You plan.", messages=messages) == reply
    assert (model.model_id, model.offline) == ("scripted", True)


async def test_default_scripted_reply_without_a_user_message() -> None:
    reply = await ScriptedModel().complete(system="", messages=[])
    assert reply.text == "[scripted] (no user message to answer)"


async def test_scripted_list_is_indexed_by_assistant_turns_so_retries_repeat() -> None:
    model = ScriptedModel(["one", "two"])
    first = [user("a")]
    assert (await model.complete(system="", messages=first)).text == "one"
    # A retried call sees the same conversation, so it gets the same reply, not the next one.
    assert (await model.complete(system="", messages=first)).text == "one"
    second = [*first, ChatMessage(role="assistant", content="one"), user("b")]
    assert (await model.complete(system="", messages=second)).text == "two"


async def test_scripted_tool_calls_then_text() -> None:
    model = ScriptedModel(
        [
            {"tool_calls": [{"name": "lookup", "arguments": {"word": "cairn"}}]},
            {"text": "A cairn is a pile of stones.", "finish_reason": "stop"},
        ]
    )
    first = await model.complete(system="", messages=[user("define cairn")], tools=[LOOKUP])
    assert first.tool_calls == (
        ToolCall(id="scripted-0-0", name="lookup", arguments={"word": "cairn"}),
    )
    assert first.finish_reason == "tool_calls"
    assert first.text == ""
    history = [
        user("define cairn"),
        ChatMessage(role="assistant", tool_calls=first.tool_calls),
        ChatMessage(role="tool", content="stones", tool_call_id="scripted-0-0", name="lookup"),
    ]
    second = await model.complete(system="", messages=history, tools=[LOOKUP])
    assert (second.text, second.tool_calls) == ("A cairn is a pile of stones.", ())


async def test_scripted_model_reply_keeps_usage_but_is_labelled_offline() -> None:
    given = ModelReply(
        text="x",
        usage=Usage(input_tokens=3, output_tokens=4),
        finish_reason="length",
        model="openai:gpt",
        offline=False,
    )
    reply = await ScriptedModel([given]).complete(system="", messages=[user("q")])
    assert reply.usage == given.usage
    assert reply.finish_reason == "length"
    assert (reply.model, reply.offline) == ("scripted", True)


async def test_exhausted_script_is_a_non_retryable_error() -> None:
    model = ScriptedModel(["only"])
    messages = [user("a"), ChatMessage(role="assistant", content="only"), user("b")]
    with pytest.raises(ModelRequestError, match=r"1 replies .* 1 assistant turns") as caught:
        await model.complete(system="", messages=messages)
    assert caught.value.retryable is False


def test_scripted_mappings_are_validated_up_front() -> None:
    with pytest.raises(ValidationError, match="txt"):
        ScriptedModel([{"txt": "typo"}])


async def test_function_script_sees_the_call() -> None:
    seen: list[tuple[str, int, tuple[str, ...]]] = []

    def script(system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
        seen.append((system, len(messages), tuple(t.name for t in tools)))
        return f"{system}: {messages[-1].content.upper()}"

    reply = await ScriptedModel(script).complete(
        system="sys", messages=[user("hi")], tools=[LOOKUP]
    )
    assert reply.text == "sys: HI"
    assert seen == [("sys", 1, ("lookup",))]


async def test_async_function_script_may_return_a_model_reply() -> None:
    call = ToolCall(id="c9", name="lookup", arguments={})

    async def script(
        system: str, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
    ) -> ModelReply:
        return ModelReply(
            tool_calls=(call,),
            usage=Usage(input_tokens=1, output_tokens=1),
            finish_reason="tool_calls",
            model="scripted",
            offline=True,
        )

    reply = await ScriptedModel(script).complete(system="", messages=[user("go")])
    assert reply.tool_calls == (call,)


def test_resolve_scripted_needs_no_keys() -> None:
    model = resolve_model("scripted", providers=ProviderSettings())
    assert isinstance(model, ScriptedModel)


def test_resolve_provider_models() -> None:
    settings = ProviderSettings(
        openai_api_key=SecretStr(CANARY),
        openai_base_url="http://127.0.0.1:9/v1",
        anthropic_api_key=SecretStr(CANARY),
        timeout_seconds=5,
    )
    openai_model = resolve_model("openai:gpt-4o-mini", providers=settings)
    assert isinstance(openai_model, OpenAIModel)
    assert (openai_model.model_id, openai_model.model) == ("openai:gpt-4o-mini", "gpt-4o-mini")
    assert (openai_model.base_url, openai_model.timeout_seconds) == ("http://127.0.0.1:9/v1", 5)
    assert openai_model.offline is False
    anthropic_model = resolve_model("anthropic:claude-x", providers=settings)
    assert isinstance(anthropic_model, AnthropicModel)
    assert anthropic_model.base_url == "https://api.anthropic.com"
    for shown in (repr(openai_model), repr(anthropic_model), repr(settings), str(settings)):
        assert CANARY not in shown


@pytest.mark.parametrize(
    "model_id", ["", "gpt-4o", "gemini:pro", "openai:", "anthropic: x", "Scripted"]
)
def test_resolve_rejects_malformed_ids(model_id: str) -> None:
    settings = ProviderSettings(openai_api_key=SecretStr("k"), anthropic_api_key=SecretStr("k"))
    with pytest.raises(UnknownModel) as caught:
        resolve_model(model_id, providers=settings)
    assert repr(model_id) in str(caught.value)
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("model_id", "variable"),
    [("openai:gpt-4o", "OPENAI_API_KEY"), ("anthropic:claude-x", "ANTHROPIC_API_KEY")],
)
def test_resolve_without_a_key_names_the_variable_to_set(model_id: str, variable: str) -> None:
    with pytest.raises(UnknownModel, match=variable):
        resolve_model(model_id, providers=ProviderSettings())
    with pytest.raises(UnknownModel, match=variable):
        empty = SecretStr("")
        resolve_model(
            model_id, providers=ProviderSettings(openai_api_key=empty, anthropic_api_key=empty)
        )


async def test_function_script_must_return_text_or_a_reply() -> None:
    model = ScriptedModel(lambda system, messages, tools: 42)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="returned int"):
        await model.complete(system="", messages=[user("hi")])
