"""From a model id to a client: `ProviderSettings` and `resolve_model`.

The provider SDKs live in `activities.llm.providers` and are imported only when a provider model
is resolved, so workflows and offline runs never load them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from activities.llm.errors import UnknownModel
from activities.llm.messages import ModelClient
from activities.llm.scripted import SCRIPTED, ScriptedModel


class ProviderSettings(BaseModel):
    """Credentials and endpoints of the real model providers.

    `worker.py` builds this from ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``ANTHROPIC_API_KEY`` and
    ``ANTHROPIC_BASE_URL``; nothing under `activities/` reads the environment. A base URL of None
    means the provider's public endpoint.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    timeout_seconds: float = Field(default=60, gt=0)


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
    from activities.llm.providers import AnthropicModel, OpenAIModel

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
