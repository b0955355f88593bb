"""Embedders for recall by meaning: the protocol, three implementations, and per-namespace config.

Public names are re-exported here; the submodules are ``base`` (protocol, errors, output check),
``hashing``, ``offline`` (the default model, shipped in a wheel), ``openai_compat`` and
``config``. The offline model loads on its first use, not on import.

>>> embedder = WordLlamaEmbedder()
>>> vectors = await embed_checked(embedder, ["Ada prefers green tea"])
>>> vectors.shape
(1, 256)
"""

from __future__ import annotations

from memory.embedding.base import (
    Embedder,
    EmbedderUnavailable,
    EmbeddingRejected,
    InvalidEmbedding,
    Vectors,
    check_texts,
    check_vectors,
    embed_checked,
)
from memory.embedding.config import EmbeddingConfig, extract_text, select_config
from memory.embedding.hashing import HashingEmbedder
from memory.embedding.offline import EmbedderNotInstalled, WordLlamaEmbedder
from memory.embedding.openai_compat import OpenAIEmbedder

__all__ = [
    "Embedder",
    "EmbedderNotInstalled",
    "EmbedderUnavailable",
    "EmbeddingConfig",
    "EmbeddingRejected",
    "HashingEmbedder",
    "InvalidEmbedding",
    "OpenAIEmbedder",
    "Vectors",
    "WordLlamaEmbedder",
    "check_texts",
    "check_vectors",
    "default_embedder",
    "embed_checked",
    "extract_text",
    "select_config",
]


def default_embedder() -> Embedder:
    """The offline default: `WordLlamaEmbedder` at its full 256 dims (loaded on first use)."""
    return WordLlamaEmbedder()
