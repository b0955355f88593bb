"""`HashingEmbedder`: feature hashing of words and character trigrams, numpy only.

Deterministic across processes and machines (BLAKE2b, never Python's salted `hash`), instant,
and with no notion of meaning: texts are near when they share words or word fragments. It is
what tests use, and the floor a real model must beat on the recall set.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence

import numpy as np

from memory.embedding.base import Vectors

_WORD = re.compile(r"\w+", re.UNICODE)
# Trigrams count less than whole words: they only help inflections ("drink", "drinks") meet.
_TRIGRAM_WEIGHT = 0.5
# Up to this many texts are hashed on the event loop: a thread hop costs more than they do.
_INLINE_BATCH = 16


def _features(text: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for word in _WORD.findall(text.lower()):
        counts["w:" + word] = counts.get("w:" + word, 0.0) + 1.0
        padded = f"#{word}#"
        for i in range(len(padded) - 2):
            gram = "t:" + padded[i : i + 3]
            counts[gram] = counts.get(gram, 0.0) + _TRIGRAM_WEIGHT
    # A text of punctuation alone still gets a vector of its own.
    return counts or {"r:" + text.strip(): 1.0}


class HashingEmbedder:
    """Signed feature hashing into ``dims`` buckets, with sublinear term weights.

    Args:
        dims: Length of the vectors; more buckets mean fewer collisions.
    """

    def __init__(self, dims: int = 512) -> None:
        if not isinstance(dims, int) or dims < 8:
            raise ValueError(f"dims must be an integer of at least 8, got {dims!r}")
        self._dims = dims

    @property
    def model(self) -> str:
        """``cairn-hashing-v1``: the feature scheme; the dims are recorded beside it."""
        return "cairn-hashing-v1"

    @property
    def dims(self) -> int:
        """Length of every vector."""
        return self._dims

    def __repr__(self) -> str:
        return f"HashingEmbedder(dims={self._dims})"

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        """Embed on the calling thread (cheap enough for tests and small batches)."""
        out = np.zeros((len(texts), self._dims), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature, count in _features(text).items():
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                sign = 1.0 if value & 1 else -1.0
                out[row, (value >> 1) % self._dims] += sign * (1.0 + np.log(count))
            norm = float(np.linalg.norm(out[row]))
            if norm > 0.0:
                out[row] /= norm
        return out

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per non-blank text; large batches are hashed on a worker thread."""
        if len(texts) <= _INLINE_BATCH:
            return self.embed_sync(texts)
        return await asyncio.to_thread(self.embed_sync, texts)
