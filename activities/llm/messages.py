"""The provider-neutral types of a model call and the `ModelClient` protocol every adapter meets.

Agent steps reach a model only through `ModelClient.complete`, with `ChatMessage`s and `ToolSpec`s
in and a `ModelReply` (text, `ToolCall`s, `Usage`) out. Nothing here imports a provider SDK.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from memory.tokens import approx_tokens

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


def count_input_tokens(system: str, messages: Sequence[ChatMessage]) -> int:
    """Approximate the input tokens of a conversation, for providers and models that omit usage."""
    return approx_tokens(system) + sum(
        approx_tokens(m.content) + sum(approx_tokens(str(c.arguments)) for c in m.tool_calls)
        for m in messages
    )
