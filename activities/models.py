"""Model adapters: the `ModelClient` protocol, its message types, and the offline scripted model.

Agent steps reach a model only through `ModelClient.complete`. `resolve_model` turns an
`AgentSpec` model id (``"scripted"``, ``"openai:<model>"``, ``"anthropic:<model>"``) into a client.
The provider SDKs live in `activities.providers` and are imported only when a provider model is
resolved, so workflows and offline runs never load them.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Literal, Protocol, Self, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, JsonValue, SecretStr, model_validator

from activities.errors import ModelRequestError, UnknownModel

SCRIPTED: Final = "scripted"
"""The model id of the deterministic offline model."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ToolCall(BaseModel):
    """A model's request to run one tool.

    Attributes:
        id: The provider's id for this call; the tool's result message refers to it.
        name: The tool's name, one of the `ToolSpec` names offered.
        arguments: The call's arguments, decoded from JSON.
    """

    model_config = _FROZEN

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: dict[str, JsonValue] = Field(default_factory=dict)


class ChatMessage(BaseModel):
    """One message of a conversation, in a provider-neutral form.

    Attributes:
        role: Who wrote it. ``"tool"`` messages carry one tool result.
        content: The text (for a tool message, the tool's result).
        tool_calls: Tools the assistant asked to run; assistant messages only.
        tool_call_id: The `ToolCall.id` a tool message answers; required on tool messages only.
        name: The speaker (an agent's name) or, on tool messages, the tool's name.
    """

    model_config = _FROZEN

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _check_role_fields(self) -> Self:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("a tool_call_id is required on tool messages and only on them")
        return self


class ToolSpec(BaseModel):
    """A tool offered to the model.

    Attributes:
        name: Letters, digits, ``_`` and ``-``, at most 64 characters (OpenAI's limit).
        description: What the tool does; the model reads it to decide when to call it.
        parameters: JSON schema of the arguments object.
    """

    model_config = _FROZEN

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class Usage(BaseModel):
    """Tokens a call consumed, as the provider counted them (or approximated offline)."""

    model_config = _FROZEN

    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)


class ModelReply(BaseModel):
    """What a model answered.

    Attributes:
        text: The reply's text; may be empty when the model only called tools.
        tool_calls: Tools the model asked to run, in order.
        usage: Tokens consumed.
        finish_reason: Why generation stopped, in OpenAI's vocabulary whatever the provider:
            ``"stop"``, ``"length"``, ``"tool_calls"``, ``"content_filter"`` (other values pass
            through unchanged).
        model: ``"<provider>:<model that served the call>"``, or ``"scripted"``.
        offline: True when no real model produced the reply.
    """

    model_config = _FROZEN

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage
    finish_reason: str
    model: str
    offline: bool


class ModelClient(Protocol):
    """Anything that can complete a conversation: a scripted model or a provider adapter."""

    @property
    def model_id(self) -> str:
        """The id this client was resolved from, e.g. ``"openai:gpt-4o"``."""
        ...

    @property
    def offline(self) -> bool:
        """True when the client never calls a real model."""
        ...

    async def complete(
        self,
        *,
        system: str,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
    ) -> ModelReply:
        """Produce the assistant's next message.

        Args:
            system: The system prompt (agent instructions); may be empty.
            messages: The conversation so far, oldest first.
            tools: Tools the model may call.

        Returns:
            The reply, with any tool calls and token usage.

        Raises:
            ModelUnavailable: A transient failure; the call may be retried.
            ModelRequestError: The request was refused; retrying it changes nothing.
            ModelProtocolError: The provider's answer could not be read.
        """
        ...


def approx_tokens(text: str) -> int:
    """Estimate the tokens in `text` at about four characters per token, rounded up."""
    return math.ceil(len(text) / 4)


def count_input_tokens(system: str, messages: Sequence[ChatMessage]) -> int:
    """Approximate the input tokens of a conversation, for providers and models that omit usage."""
    return approx_tokens(system) + sum(
        approx_tokens(m.content) + sum(approx_tokens(str(c.arguments)) for c in m.tool_calls)
        for m in messages
    )


class ProviderSettings(BaseModel):
    """Credentials and endpoints of the real model providers.

    `worker.py` builds this from ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``ANTHROPIC_API_KEY`` and
    ``ANTHROPIC_BASE_URL``; nothing under `activities/` reads the environment. A base URL of None
    means the provider's public endpoint.
    """

    model_config = _FROZEN

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    timeout_seconds: float = Field(default=60, gt=0)


class _ScriptedToolCall(BaseModel):
    model_config = _FROZEN

    id: str | None = None
    name: str = Field(min_length=1)
    arguments: dict[str, JsonValue] = Field(default_factory=dict)


class _ScriptedTurn(BaseModel):
    model_config = _FROZEN

    text: str = ""
    tool_calls: tuple[_ScriptedToolCall, ...] = ()
    finish_reason: str | None = None


ScriptedReply: TypeAlias = str | ModelReply | Mapping[str, Any]
"""One scripted turn: its text, a full `ModelReply`, or a mapping with ``text``, ``tool_calls``
(each ``{"name", "arguments"}`` and optionally ``"id"``) and optionally ``finish_reason``."""

ScriptFunction: TypeAlias = Callable[
    [str, Sequence[ChatMessage], Sequence[ToolSpec]],
    str | ModelReply | Awaitable[str | ModelReply],
]
"""A function ``(system, messages, tools)`` returning the reply's text or a `ModelReply`."""


class ScriptedModel:
    """A deterministic, offline model for demos and tests.

    Given a list, the reply for a call is the list item at the index equal to the number of
    assistant messages already in the conversation, so a retried call gets the same reply as the
    first attempt. Given a function, the reply is whatever it returns for the call's arguments.
    Given nothing, the reply restates the last user message, prefixed with ``[scripted]``.

    Usage is approximated with `approx_tokens` unless a scripted `ModelReply` carries its own.

    Args:
        script: The replies in order, a function computing each reply, or None.

    Raises:
        pydantic.ValidationError: A scripted mapping has unknown fields or wrong types.
    """

    model_id: Final = SCRIPTED
    offline: Final = True

    def __init__(self, script: Sequence[ScriptedReply] | ScriptFunction | None = None) -> None:
        self._function: ScriptFunction | None = None
        self._turns: tuple[ModelReply | _ScriptedTurn, ...] = ()
        if callable(script):
            self._function = script
        elif script is not None:
            self._turns = tuple(
                turn
                if isinstance(turn, ModelReply)
                else _ScriptedTurn(text=turn)
                if isinstance(turn, str)
                else _ScriptedTurn.model_validate(dict(turn))
                for turn in script
            )
        self._scripted = script is not None

    def __repr__(self) -> str:
        if self._function is not None:
            return f"ScriptedModel({getattr(self._function, '__qualname__', 'function')})"
        return f"ScriptedModel({len(self._turns)} turns)" if self._scripted else "ScriptedModel()"

    async def complete(
        self,
        *,
        system: str,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] = (),
    ) -> ModelReply:
        """Return the scripted reply for this conversation; see the class docstring."""
        turn = sum(1 for m in messages if m.role == "assistant")
        answer: str | ModelReply | _ScriptedTurn
        if self._function is not None:
            result = self._function(system, messages, tools)
            answer = await result if inspect.isawaitable(result) else result
            if not isinstance(answer, str | ModelReply):
                raise TypeError(f"a script function returned {type(answer).__name__}, not str")
        elif self._scripted:
            if turn >= len(self._turns):
                raise ModelRequestError(
                    SCRIPTED,
                    SCRIPTED,
                    reason=f"the script has {len(self._turns)} replies and the conversation "
                    f"already has {turn} assistant turns",
                )
            answer = self._turns[turn]
        else:
            answer = _echo(messages)
        return self._reply(answer, turn, count_input_tokens(system, messages))

    @staticmethod
    def _reply(
        answer: str | ModelReply | _ScriptedTurn, turn: int, input_tokens: int
    ) -> ModelReply:
        if isinstance(answer, ModelReply):
            return answer.model_copy(update={"model": SCRIPTED, "offline": True})
        if isinstance(answer, str):
            answer = _ScriptedTurn(text=answer)
        calls = tuple(
            ToolCall(id=c.id or f"scripted-{turn}-{i}", name=c.name, arguments=c.arguments)
            for i, c in enumerate(answer.tool_calls)
        )
        output = approx_tokens(answer.text) + sum(approx_tokens(str(c.arguments)) for c in calls)
        return ModelReply(
            text=answer.text,
            tool_calls=calls,
            usage=Usage(input_tokens=input_tokens, output_tokens=output),
            finish_reason=answer.finish_reason or ("tool_calls" if calls else "stop"),
            model=SCRIPTED,
            offline=True,
        )


def _echo(messages: Sequence[ChatMessage]) -> str:
    last = next((m.content for m in reversed(messages) if m.role == "user"), "")
    words = last.split()
    if not words:
        return "[scripted] (no user message to answer)"
    gist = " ".join(words[:24]) + (" ..." if len(words) > 24 else "")
    return f"[scripted] Noted ({len(words)} words): {gist}"


def resolve_model(model_id: str, *, providers: ProviderSettings) -> ModelClient:
    """Build the client for a model id.

    Args:
        model_id: ``"scripted"``, ``"openai:<model>"`` (any OpenAI-compatible endpoint, chosen
            by `ProviderSettings.openai_base_url`) or ``"anthropic:<model>"``.
        providers: Credentials and endpoints; see `ProviderSettings`.

    Returns:
        A client. Provider clients built for the same endpoint and key share one connection pool.

    Raises:
        UnknownModel: The id is malformed, names an unknown provider, or the provider it names has
            no API key configured.
    """
    if model_id == SCRIPTED:
        return ScriptedModel()
    provider, _, name = model_id.partition(":")
    if provider not in ("openai", "anthropic"):
        raise UnknownModel(
            model_id, reason='expected "scripted", "openai:<model>" or "anthropic:<model>"'
        )
    if not name or name != name.strip():
        raise UnknownModel(model_id, reason=f"no model name after {provider + ':'!r}")
    # Imported here so that importing this module never loads the provider SDKs.
    from activities.providers import AnthropicModel, OpenAIModel

    timeout = providers.timeout_seconds
    if provider == "openai":
        if not providers.openai_api_key or not providers.openai_api_key.get_secret_value():
            raise UnknownModel(
                model_id,
                reason="no OpenAI API key is configured: set OPENAI_API_KEY for the worker "
                "(any non-empty value for endpoints that need none)",
            )
        return OpenAIModel(
            name,
            api_key=providers.openai_api_key,
            base_url=providers.openai_base_url,
            timeout_seconds=timeout,
        )
    if not providers.anthropic_api_key or not providers.anthropic_api_key.get_secret_value():
        raise UnknownModel(
            model_id,
            reason="no Anthropic API key is configured: set ANTHROPIC_API_KEY for the worker",
        )
    return AnthropicModel(
        name,
        api_key=providers.anthropic_api_key,
        base_url=providers.anthropic_base_url,
        timeout_seconds=timeout,
    )
