"""Which embedder a worker's memory uses, from ``CAIRN_EMBEDDER`` and ``CAIRN_EMBED_NAMESPACES``.

``CAIRN_EMBEDDER`` names one embedder: ``offline`` (WordLlama, shipped in its wheel; the
``semantic`` extra), ``hashing`` (feature hashing, no model: tests and a floor), or
``openai:<model>`` (any OpenAI-compatible endpoint, with ``OPENAI_API_KEY`` and
``OPENAI_BASE_URL``; ``CAIRN_EMBED_DIMS`` gives the vector length of models not listed here).
``CAIRN_EMBED_NAMESPACES`` is a comma-separated list of namespace patterns (``*`` for one
segment, e.g. ``*/user/*,acme/docs``); without it, every namespace is embedded.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import SecretStr

from memory.embedding import (
    Embedder,
    EmbeddingConfig,
    HashingEmbedder,
    OpenAIEmbedder,
    default_embedder,
)

# Vector lengths of OpenAI's embedding models (others: CAIRN_EMBED_DIMS).
OPENAI_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


def parse_patterns(text: str) -> tuple[tuple[str, ...], ...]:
    """``"*/user/*,acme/docs"`` as patterns; ``ValueError`` naming the variable if malformed."""
    patterns = []
    for part in text.split(","):
        if part.strip():
            segments = tuple(s.strip() for s in part.strip().strip("/").split("/"))
            if not all(segments):
                raise ValueError(f"CAIRN_EMBED_NAMESPACES: {part.strip()!r} has an empty segment")
            patterns.append(segments)
    return tuple(patterns)


def build_embedder(
    spec: str,
    *,
    dims: int | None = None,
    api_key: SecretStr | None = None,
    base_url: str | None = None,
) -> Embedder:
    """The embedder named by a ``CAIRN_EMBEDDER`` value.

    Raises:
        ValueError: An unknown name, or an OpenAI model without its key or dims; the message
            names the variable.
    """
    name, _, model = spec.strip().partition(":")
    if name == "offline" and not model:
        return default_embedder()
    if name == "hashing":
        return HashingEmbedder(int(model) if model else 512)
    if name == "openai" and model:
        length = dims or OPENAI_DIMS.get(model)
        if length is None:
            raise ValueError(f"CAIRN_EMBED_DIMS: the vector length of {model!r} is needed")
        if api_key is None:
            raise ValueError(f"CAIRN_EMBEDDER={spec}: OPENAI_API_KEY is not set")
        request_dims = model.startswith("text-embedding-3") and dims is not None
        return OpenAIEmbedder(
            model, dims=length, api_key=api_key, base_url=base_url, request_dims=request_dims
        )
    raise ValueError(
        f"CAIRN_EMBEDDER: unknown embedder {spec!r}; use offline, hashing or openai:<model>"
    )


def embedding_configs(
    embedder: Embedder | None, patterns: Sequence[tuple[str, ...]]
) -> list[EmbeddingConfig]:
    """One `EmbeddingConfig` per pattern (every namespace when none is given)."""
    if embedder is None:
        if patterns:
            shown = ",".join("/".join(p) for p in patterns)
            raise ValueError(
                f"CAIRN_EMBED_NAMESPACES={shown} names patterns but CAIRN_EMBEDDER is not set: "
                "no embedder would serve them (set CAIRN_EMBEDDER=offline, for one)"
            )
        return []
    return [EmbeddingConfig(pattern=p, embedder=embedder) for p in patterns or [("*",)]]
