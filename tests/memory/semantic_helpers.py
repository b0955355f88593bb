"""Embedders for the semantic memory tests: counting, failing and misbehaving test doubles."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np

from memory import MemoryStore
from memory.embedding import EmbedderUnavailable, EmbeddingConfig, HashingEmbedder

NOTES = ("acme", "notes")


class CountingEmbedder(HashingEmbedder):
    """A hashing embedder that counts the texts it was asked to embed."""

    def __init__(self, dims: int = 64) -> None:
        super().__init__(dims)
        self.texts: list[str] = []

    async def embed(self, texts: Sequence[str]) -> Any:
        self.texts += texts
        return await super().embed(texts)


class BrokenEmbedder(HashingEmbedder):
    """Returns what ``how`` says: ``down`` (provider unavailable), ``dims`` or ``nan``."""

    def __init__(self, how: str) -> None:
        super().__init__(64)
        self.how = how

    @property
    def model(self) -> str:
        return f"broken-{self.how}"

    async def embed(self, texts: Sequence[str]) -> Any:
        if self.how == "down":
            raise EmbedderUnavailable(self.model, "HTTP 503")
        rows = self.embed_sync(texts)
        if self.how == "dims":
            return rows[:, :32]
        rows[0, 0] = np.nan
        return rows


def config(embedder: Any = None, pattern: tuple[str, ...] = NOTES, **kw: Any) -> EmbeddingConfig:
    return EmbeddingConfig(pattern=pattern, embedder=embedder or HashingEmbedder(64), **kw)


def _vector_rows(store: MemoryStore) -> list[tuple[Any, ...]]:
    from sqlalchemy import text

    with store.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT ns, key, version, model, dims FROM cairn_vectors ORDER BY id")
            )
        ]


async def vector_rows(store: MemoryStore) -> list[tuple[Any, ...]]:
    """``(ns, key, version, model, dims)`` of every stored vector, oldest first, read raw."""
    return await asyncio.to_thread(_vector_rows, store)
