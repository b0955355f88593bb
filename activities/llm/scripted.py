"""The deterministic, offline ``scripted`` model, for the demo and tests.

Its replies are labelled offline (`ModelReply.offline`) and its token usage is approximated.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from activities.llm.errors import ModelRequestError
from activities.llm.messages import (
    ChatMessage,
    ModelReply,
    ToolCall,
    ToolSpec,
    Usage,
    count_input_tokens,
)
from memory.tokens import approx_tokens

SCRIPTED: Final = "scripted"
"""The model id of the deterministic offline model."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")


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
