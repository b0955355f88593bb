"""Model adapters: how an agent step talks to a model, whichever model it is.

Public submodules: `activities.llm.messages` (the provider-neutral message, tool and `Usage`
types and the `ModelClient` protocol), `activities.llm.scripted` (the offline deterministic
model), `activities.llm.resolve` (`ProviderSettings`, `resolve_model`),
`activities.llm.providers` (the OpenAI-compatible and Anthropic adapters, over the official
SDKs with their retries off) and `activities.llm.errors` (what a model call raises).

Importing this package never loads a provider SDK: the names of `activities.llm.providers` are
imported on first use, as `resolve_model` does when it builds a provider client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from activities.llm.errors import (
    ModelError,
    ModelProtocolError,
    ModelRequestError,
    ModelUnavailable,
    UnknownModel,
)
from activities.llm.messages import (
    ChatMessage,
    ModelClient,
    ModelReply,
    ToolCall,
    ToolSpec,
    Usage,
    count_input_tokens,
)
from activities.llm.resolve import ProviderSettings, resolve_model
from activities.llm.scripted import SCRIPTED, ScriptedModel, ScriptedReply, ScriptFunction

if TYPE_CHECKING:
    from activities.llm.providers import AnthropicModel, OpenAIModel, close_model_clients

_PROVIDER_NAMES = frozenset({"AnthropicModel", "OpenAIModel", "close_model_clients"})


def __getattr__(name: str) -> Any:
    if name in _PROVIDER_NAMES:
        return getattr(importlib.import_module("activities.llm.providers"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SCRIPTED",
    "AnthropicModel",
    "ChatMessage",
    "ModelClient",
    "ModelError",
    "ModelProtocolError",
    "ModelReply",
    "ModelRequestError",
    "ModelUnavailable",
    "OpenAIModel",
    "ProviderSettings",
    "ScriptFunction",
    "ScriptedModel",
    "ScriptedReply",
    "ToolCall",
    "ToolSpec",
    "UnknownModel",
    "Usage",
    "close_model_clients",
    "count_input_tokens",
    "resolve_model",
]
