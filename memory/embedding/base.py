"""The embedder protocol, its errors, and the one check every embedder's output goes through.

Errors, beside the memory layer's (see `memory.errors`)::

    MemoryStoreError
    ├── InvalidInput
    │   ├── EmbeddingRejected      the provider refused the request (HTTP 4xx): do not retry
    │   └── InvalidEmbedding       vectors of the wrong count or dims, not finite or not unit length
    └── StoreUnavailable
        └── EmbedderUnavailable    HTTP 408/409/429/5xx, timeout, no connection: retry later

They derive from `InvalidInput` and `StoreUnavailable` so that callers that already map those
(Temporal activities: fail at once, or retry) treat an embedder's failures the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeAlias, runtime_checkable

import numpy as np
import numpy.typing as npt

from memory.errors import InvalidInput, StoreUnavailable

Vectors: TypeAlias = npt.NDArray[np.float32]
"""A batch of embeddings: one unit-length float32 row per text."""

RawVectors: TypeAlias = Sequence[Sequence[float]] | npt.NDArray[np.floating]
"""What an embedder may return: rows of floats, as lists or as an array."""

NORM_TOLERANCE = 1e-3


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors, in batches.

    ``model`` is recorded with every stored vector, so vectors of different models are never
    compared; ``dims`` is the length of every vector. `embed` returns one row per text, in order,
    each of unit length (cosine similarity is then a dot product). Implementations do their work
    off the event loop.
    """

    @property
    def model(self) -> str:
        """Identifier of the model (and of its settings that change the vectors)."""
        ...

    @property
    def dims(self) -> int:
        """Length of every vector."""
        ...

    async def embed(self, texts: Sequence[str]) -> RawVectors:
        """One vector per text, in order."""
        ...


class EmbeddingRejected(InvalidInput):
    """The embedding provider refused the request (bad key, unknown model, input too long)."""

    def __init__(self, model: str, *, status: int, code: str | None = None) -> None:
        self.model = model
        self.status = status
        self.code = code
        detail = f", code {code}" if code else ""
        super().__init__(f"embedding model {model!r} refused the request: HTTP {status}{detail}")


class InvalidEmbedding(InvalidInput):
    """An embedder returned vectors that cannot be stored; nothing was written."""

    def __init__(self, model: str, problem: str) -> None:
        self.model = model
        self.problem = problem
        super().__init__(f"embedding model {model!r} returned {problem}")


class EmbedderUnavailable(StoreUnavailable):
    """The embedding provider could not answer now; the same request may succeed later."""

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        self.reason = reason
        super().__init__(f"embedding model {model!r} is unavailable: {reason}")


def check_texts(texts: Sequence[str]) -> list[str]:
    """Validate a batch of texts to embed: a sequence of strings, none of them blank.

    Raises:
        InvalidInput: naming the first offending position.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InvalidInput(f"texts must be a list of strings, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInput(f"text {i} must be a string, got {type(text).__name__}")
        if not text.strip():
            raise InvalidInput(f"text {i} is blank: there is nothing to embed")
    return list(texts)


def check_vectors(model: str, dims: int, count: int, raw: RawVectors) -> Vectors:
    """Check an embedder's output and return it as a ``(count, dims)`` float32 array.

    Raises:
        InvalidEmbedding: naming the model and what is wrong (count, dims, a non-finite number,
            a vector that is not of unit length) and the first offending row.
    """
    try:
        array = np.asarray(raw, dtype=np.float64)
    except (ValueError, TypeError):
        raise InvalidEmbedding(model, "vectors of different lengths or non-numbers") from None
    if array.ndim != 2:
        if array.ndim == 1 and array.size == 0 and count == 0:
            return np.empty((0, dims), dtype=np.float32)
        raise InvalidEmbedding(model, f"an array of {array.ndim} dimensions, not rows of vectors")
    if array.shape[0] != count:
        raise InvalidEmbedding(model, f"{array.shape[0]} vectors for {count} texts")
    if array.shape[1] != dims:
        raise InvalidEmbedding(model, f"vectors of {array.shape[1]} dims; {dims} were expected")
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise InvalidEmbedding(model, f"a NaN or infinite number in vector {row}")
    norms = np.linalg.norm(array, axis=1)
    off = np.abs(norms - 1.0) > NORM_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        raise InvalidEmbedding(model, f"vector {row} of length {norms[row]:.4g}, not unit length")
    return array.astype(np.float32)


def normalize(model: str, raw: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Scale each row to unit length, for embedders whose model does not.

    Raises:
        InvalidEmbedding: when a row is all zeros (or not finite), which no scaling can fix.
    """
    array = np.asarray(raw, dtype=np.float64)
    if array.ndim != 2:
        return array
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] == 0.0)
    if bad.any():
        row = int(np.argmax(bad))
        raise InvalidEmbedding(model, f"vector {row} of length {norms[row, 0]:.4g}")
    result: npt.NDArray[np.float64] = array / norms
    return result


async def embed_checked(embedder: Embedder, texts: Sequence[str]) -> Vectors:
    """Embed ``texts`` with ``embedder`` and check the result: the way callers embed.

    Raises:
        InvalidInput: when ``texts`` is not a list of non-blank strings.
        InvalidEmbedding: when the output fails `check_vectors`.
    """
    batch = check_texts(texts)
    if not batch:
        return np.empty((0, embedder.dims), dtype=np.float32)
    return check_vectors(embedder.model, embedder.dims, len(batch), await embedder.embed(batch))
