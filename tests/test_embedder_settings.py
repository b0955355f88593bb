"""CAIRN_EMBEDDER and CAIRN_EMBED_NAMESPACES: the worker's memory embedders from its environment."""

from __future__ import annotations

import pytest

from cairn.runtime import settings_from_env, store_embedders
from memory.embedding import HashingEmbedder, OpenAIEmbedder, WordLlamaEmbedder


def test_no_embedder_means_keyword_search_only() -> None:
    assert store_embedders(settings_from_env({})) == []


def test_an_embedder_serves_the_given_patterns_or_everything() -> None:
    everything = store_embedders(settings_from_env({"CAIRN_EMBEDDER": "hashing"}))
    assert [c.pattern for c in everything] == [("*",)]
    assert isinstance(everything[0].embedder, HashingEmbedder)
    env = {"CAIRN_EMBEDDER": "offline", "CAIRN_EMBED_NAMESPACES": "*/user/*, acme/docs/"}
    configs = store_embedders(settings_from_env(env))
    assert [c.pattern for c in configs] == [("*", "user", "*"), ("acme", "docs")]
    assert isinstance(configs[0].embedder, WordLlamaEmbedder)


def test_openai_models_take_the_provider_settings() -> None:
    env = {"CAIRN_EMBEDDER": "openai:text-embedding-3-small", "OPENAI_API_KEY": "sk-test"}
    (only,) = store_embedders(settings_from_env(env))
    assert isinstance(only.embedder, OpenAIEmbedder)
    assert (only.embedder.model, only.embedder.dims) == ("openai:text-embedding-3-small", 1536)


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"CAIRN_EMBEDDER": "fancy"}, "CAIRN_EMBEDDER: unknown embedder 'fancy'"),
        ({"CAIRN_EMBEDDER": "openai:my-model", "OPENAI_API_KEY": "k"}, "CAIRN_EMBED_DIMS"),
        ({"CAIRN_EMBEDDER": "openai:text-embedding-3-small"}, "OPENAI_API_KEY is not set"),
    ],
)
def test_bad_embedder_settings_name_the_variable(env: dict[str, str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        store_embedders(settings_from_env(env))


def test_patterns_without_an_embedder_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="CAIRN_EMBED_NAMESPACES=acme/docs names patterns"):
        settings_from_env({"CAIRN_EMBED_NAMESPACES": "acme/docs"})
    with pytest.raises(ValueError, match="'acme//x' has an empty segment"):
        settings_from_env({"CAIRN_EMBEDDER": "hashing", "CAIRN_EMBED_NAMESPACES": "acme//x"})
