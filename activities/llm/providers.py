"""OpenAI and Anthropic adapters behind the `ModelClient` protocol.

Each adapter speaks its provider's wire format through the official SDK with the SDK's own
retries off (Temporal retries activities) and maps every SDK failure onto
`activities.llm.errors`. SDK clients are pooled per event loop, endpoint and key, so many steps
share one connection pool.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Sequence
from typing import ClassVar, Final, TypeVar
from urllib.parse import urlsplit

import anthropic
import openai
from anthropic.types import (
    Message,
    MessageParam,
    TextBlockParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
)
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCallParam,
    ChatCompletionMessageParam,
)
from pydantic import SecretStr, ValidationError

from activities.llm.errors import (
    ModelError,
    ModelProtocolError,
    ModelRequestError,
    ModelUnavailable,
)
from activities.llm.messages import (
    ChatMessage,
    ModelReply,
    ToolCall,
    ToolSpec,
    Usage,
    count_input_tokens,
)
from memory.tokens import approx_tokens

OPENAI_BASE_URL: Final = "https://api.openai.com/v1"
ANTHROPIC_BASE_URL: Final = "https://api.anthropic.com"
DEFAULT_ANTHROPIC_MAX_TOKENS: Final = 4096

_ANTHROPIC_FINISH: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_Client = TypeVar("_Client", openai.AsyncOpenAI, anthropic.AsyncAnthropic)

# A pooled client's connections belong to the loop that opened them, so pools are per loop; a
# closed loop's pools go with it.
_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, ...], object]] = (
    weakref.WeakKeyDictionary()
)


async def close_model_clients() -> None:
    """Close the provider clients pooled for the running event loop (at worker shutdown)."""
    pool = _POOLS.pop(asyncio.get_running_loop(), {})
    for client in pool.values():
        if isinstance(client, openai.AsyncOpenAI | anthropic.AsyncAnthropic):
            await client.close()


def _retry_after(exc: openai.APIStatusError | anthropic.APIStatusError) -> float | None:
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            return max(float(headers[name]) / scale, 0.0)
        except (KeyError, ValueError):
            continue
    return None


class _ProviderModel:
    """What the two adapters share: settings, a key kept secret, and a repr without it."""

    provider: ClassVar[str]
    default_base_url: ClassVar[str]
    offline: Final = False

    def __init__(
        self,
        model: str,
        *,
        api_key: str | SecretStr,
        base_url: str | None = None,
        timeout_seconds: float = 60.0,
        max_tokens: int | None = None,
    ) -> None:
        self.model = model
        self.model_id = f"{self.provider}:{model}"
        self.base_url = base_url or self.default_base_url
        self.timeout_seconds = timeout_seconds
        self.max_tokens = max_tokens
        self._api_key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model!r}, base_url={self.base_url!r})"

    def _pooled_client(self, kind: type[_Client]) -> _Client:
        """The running loop's SDK client of ``kind`` for this endpoint, key and timeout.

        Built once and shared; the SDK's own retries are off (``max_retries=0``), as Temporal's
        replace them.
        """
        secret = self._api_key.get_secret_value()
        key = (kind.__name__, self.base_url, secret, str(self.timeout_seconds))
        pool = _POOLS.setdefault(asyncio.get_running_loop(), {})
        client = pool.get(key)
        if not isinstance(client, kind):
            client = pool[key] = kind(
                api_key=secret,
                base_url=self.base_url,
                max_retries=0,
                timeout=self.timeout_seconds,
            )
        return client

    def _error(self, exc: Exception, code: str | None) -> ModelError:
        """Translate an SDK exception, keeping none of it but fields safe to show."""
        provider, model = self.provider, self.model
        if isinstance(exc, openai.APIStatusError | anthropic.APIStatusError):
            status, request_id = exc.status_code, exc.request_id
            # The SDKs' own retry rule, which Temporal's retries replace: the provider's hint
            # first (OpenAI's 429 for an exhausted quota says false), then the status.
            hint = exc.response.headers.get("x-should-retry")
            if hint == "true" or (hint != "false" and (status in (408, 409, 429) or status >= 500)):
                delay = _retry_after(exc)
                return ModelUnavailable(
                    provider,
                    model,
                    status=status,
                    code=code,
                    request_id=request_id,
                    retry_after=delay,
                )
            return ModelRequestError(
                provider, model, status=status, code=code, request_id=request_id
            )
        if isinstance(exc, openai.APITimeoutError | anthropic.APITimeoutError):
            reason = f"no response within {self.timeout_seconds:g}s"
            return ModelUnavailable(provider, model, reason=reason)
        if isinstance(exc, openai.APIConnectionError | anthropic.APIConnectionError):
            # Only the host: a base URL may embed credentials.
            host = urlsplit(self.base_url).hostname or "the endpoint"
            return ModelUnavailable(provider, model, reason=f"cannot connect to {host}")
        return ModelProtocolError(provider, model, reason=f"unreadable body ({type(exc).__name__})")

    def _malformed(self, exc: Exception) -> ModelProtocolError:
        if isinstance(exc, ValidationError):
            # Field paths only: the error's full text quotes the offending values.
            fields = ", ".join(".".join(map(str, e["loc"])) or "body" for e in exc.errors())
            return ModelProtocolError(self.provider, self.model, reason=f"invalid {fields}")
        return ModelProtocolError(self.provider, self.model, reason=str(exc).split("\n")[0])


class OpenAIModel(_ProviderModel):
    """A chat-completions model of OpenAI or of any OpenAI-compatible endpoint.

    Args:
        model: The provider's model name, e.g. ``"gpt-4o"``.
        api_key: The API key.
        base_url: The endpoint, e.g. ``"http://localhost:11434/v1"``; None for OpenAI's.
        timeout_seconds: Time allowed for one call.
        max_tokens: Cap on generated tokens, sent as ``max_completion_tokens``; None for the
            provider's default.
    """

    provider: ClassVar[str] = "openai"
    default_base_url: ClassVar[str] = OPENAI_BASE_URL

    def _client(self) -> openai.AsyncOpenAI:
        return self._pooled_client(openai.AsyncOpenAI)

    async def complete(
        self,
        *,
        system: str,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
    ) -> ModelReply:
        """Call chat completions; see `ModelClient.complete`."""
        try:
            completion = await self._client().chat.completions.create(
                model=self.model,
                messages=_openai_messages(system, messages),
                tools=[_openai_tool(t) for t in tools] or openai.omit,
                max_completion_tokens=self.max_tokens or openai.omit,
            )
        except (openai.OpenAIError, ValueError) as exc:
            code = (exc.code or exc.type) if isinstance(exc, openai.APIStatusError) else None
            # `from None`: the SDK error's message and request can carry the key or the content.
            raise self._error(exc, code) from None
        try:
            return _openai_reply(completion, system, messages)
        except (ValidationError, AttributeError, TypeError, IndexError, ValueError) as exc:
            raise self._malformed(exc) from None


def _openai_messages(
    system: str, messages: Sequence[ChatMessage]
) -> list[ChatCompletionMessageParam]:
    out: list[ChatCompletionMessageParam] = []
    if system:
        out.append({"role": "system", "content": system})
    for m in messages:
        message: ChatCompletionMessageParam
        if m.role == "tool":
            message = {"role": "tool", "content": m.content, "tool_call_id": m.tool_call_id or ""}
        elif m.role == "system":
            message = {"role": "system", "content": m.content}
        elif m.role == "user":
            message = {"role": "user", "content": m.content}
        else:
            # OpenAI wants null, not "", as the content of a message that only calls tools.
            message = {"role": "assistant", "content": m.content or (None if m.tool_calls else "")}
            if m.tool_calls:
                message["tool_calls"] = [_openai_call(c) for c in m.tool_calls]
        if m.name and message["role"] != "tool":
            message["name"] = m.name
        out.append(message)
    return out


def _openai_call(call: ToolCall) -> ChatCompletionMessageFunctionToolCallParam:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
    }


def _openai_tool(tool: ToolSpec) -> ChatCompletionFunctionToolParam:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def _openai_reply(
    completion: ChatCompletion, system: str, messages: Sequence[ChatMessage]
) -> ModelReply:
    if not isinstance(completion, ChatCompletion):
        raise TypeError("the body is not a JSON chat completion")
    if not completion.choices:
        raise ValueError("the completion has no choices")
    choice = completion.choices[0]
    calls: list[ToolCall] = []
    for call in choice.message.tool_calls or ():
        if call.type != "function":
            raise ValueError(f"unexpected tool call type {call.type!r}")
        arguments = json.loads(call.function.arguments or "{}")
        if not isinstance(arguments, dict):
            raise ValueError(f"the arguments of tool call {call.id!r} are not a JSON object")
        calls.append(ToolCall(id=call.id, name=call.function.name, arguments=arguments))
    text = choice.message.content or ""
    usage = completion.usage
    return ModelReply(
        text=text,
        tool_calls=tuple(calls),
        usage=Usage(
            input_tokens=usage.prompt_tokens if usage else count_input_tokens(system, messages),
            output_tokens=usage.completion_tokens if usage else approx_tokens(text),
        ),
        finish_reason=str(choice.finish_reason or "stop"),
        model=f"openai:{completion.model}",
        offline=False,
    )


class AnthropicModel(_ProviderModel):
    """A model of Anthropic's Messages API.

    Args:
        model: The provider's model name, e.g. ``"claude-sonnet-4-5"``.
        api_key: The API key.
        base_url: The endpoint; None for Anthropic's.
        timeout_seconds: Time allowed for one call.
        max_tokens: Cap on generated tokens; None for `DEFAULT_ANTHROPIC_MAX_TOKENS` (the
            Messages API requires a cap).
    """

    provider: ClassVar[str] = "anthropic"
    default_base_url: ClassVar[str] = ANTHROPIC_BASE_URL

    def _client(self) -> anthropic.AsyncAnthropic:
        return self._pooled_client(anthropic.AsyncAnthropic)

    async def complete(
        self,
        *,
        system: str,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
    ) -> ModelReply:
        """Call the Messages API; see `ModelClient.complete`.

        System messages inside `messages` are appended to the system prompt, since the Messages
        API takes the system prompt apart from the turns. Message names are not sent.
        """
        system_text = "\n\n".join(
            [system] * bool(system) + [m.content for m in messages if m.role == "system"]
        )
        try:
            message = await self._client().messages.create(
                model=self.model,
                max_tokens=self.max_tokens or DEFAULT_ANTHROPIC_MAX_TOKENS,
                system=system_text or anthropic.omit,
                messages=_anthropic_messages(messages),
                tools=[_anthropic_tool(t) for t in tools] or anthropic.omit,
            )
        except (anthropic.AnthropicError, ValueError) as exc:
            code = None
            if isinstance(exc, anthropic.APIStatusError):
                code = exc.error_code or (exc.type if isinstance(exc.type, str) else None)
            # `from None`: the SDK error's message and request can carry the key or the content.
            raise self._error(exc, code) from None
        try:
            return _anthropic_reply(message)
        except (ValidationError, AttributeError, TypeError, IndexError, ValueError) as exc:
            raise self._malformed(exc) from None


_Block = TextBlockParam | ToolUseBlockParam | ToolResultBlockParam


def _anthropic_messages(messages: Sequence[ChatMessage]) -> list[MessageParam]:
    # The API wants alternating turns and every tool result of a turn in the next user message,
    # so consecutive messages of one role are merged into one message of several blocks.
    turns: list[tuple[str, list[_Block]]] = []
    for m in messages:
        blocks: list[_Block] = []
        if m.role == "system":
            continue
        if m.role == "tool":
            blocks.append(
                {"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content}
            )
        elif m.content:
            blocks.append({"type": "text", "text": m.content})
        blocks.extend(
            {"type": "tool_use", "id": c.id, "name": c.name, "input": dict(c.arguments)}
            for c in m.tool_calls
        )
        role = "assistant" if m.role == "assistant" else "user"
        if not blocks:
            continue  # the API rejects empty turns
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    return [
        {"role": "assistant", "content": blocks}
        if role == "assistant"
        else {"role": "user", "content": blocks}
        for role, blocks in turns
    ]


def _anthropic_tool(tool: ToolSpec) -> ToolParam:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}


def _anthropic_reply(message: Message) -> ModelReply:
    if not isinstance(message, Message):
        raise TypeError("the body is not a JSON message")
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            calls.append(
                ToolCall.model_validate(
                    {"id": block.id, "name": block.name, "arguments": block.input}
                )
            )
    usage = message.usage
    # Cached prompt tokens are billed input too; the API counts them apart from input_tokens.
    cached = (usage.cache_creation_input_tokens or 0) + (usage.cache_read_input_tokens or 0)
    stop = str(message.stop_reason or "end_turn")
    return ModelReply(
        text="".join(texts),
        tool_calls=tuple(calls),
        usage=Usage(input_tokens=usage.input_tokens + cached, output_tokens=usage.output_tokens),
        finish_reason=_ANTHROPIC_FINISH.get(stop, stop),
        model=f"anthropic:{message.model}",
        offline=False,
    )
