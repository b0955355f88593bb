"""`OpenAIEmbedder`: any OpenAI-compatible ``/v1/embeddings`` endpoint, through the official SDK.

The SDK's own retries are off: Temporal retries the activity, so a failure is reported at once
as `EmbedderUnavailable` (worth retrying) or `EmbeddingRejected` (not), by the SDK's own rule:
the provider's ``x-should-retry`` header when present, else HTTP 408, 409, 429 and 5xx are
transient. Errors name the model, the status and the provider's short error code, never the API
key, the input or the provider's free-text message.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
import openai
from pydantic import SecretStr

from memory.embedding.base import (
    EmbedderUnavailable,
    EmbeddingRejected,
    InvalidEmbedding,
    Vectors,
    normalize,
)
from memory.errors import InvalidInput

# Provider error codes are short tokens; anything else is dropped, never echoed.
_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,80}")
# OpenAI accepts up to 2,048 inputs per request.
MAX_BATCH = 2048


class OpenAIEmbedder:
    """Embeddings from OpenAI or any server speaking its embeddings API.

    Args:
        model: The provider's model name, e.g. ``"text-embedding-3-small"``.
        dims: Length of the model's vectors (checked on every response).
        api_key: The API key.
        base_url: The endpoint, e.g. ``"http://localhost:11434/v1"``; None for OpenAI's.
        batch_size: Texts per request, at most 2,048.
        request_dims: Send ``dimensions=dims`` (models that can shorten their vectors, such as
            OpenAI's ``text-embedding-3-*``); other servers may refuse the field.
        encoding_format: ``"base64"`` (compact; the SDK's default) or ``"float"``. Responses in
            either form are read, whichever was asked for.
        timeout_seconds: Time allowed for one request.
    """

    def __init__(
        self,
        model: str,
        *,
        dims: int,
        api_key: str | SecretStr,
        base_url: str | None = None,
        batch_size: int = 512,
        request_dims: bool = False,
        encoding_format: Literal["float", "base64"] = "base64",
        timeout_seconds: float = 60.0,
    ) -> None:
        if not isinstance(dims, int) or dims < 1:
            raise ValueError(f"dims must be a positive integer, got {dims!r}")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1-{MAX_BATCH}, got {batch_size!r}")
        self._model = model
        self._dims = dims
        self.batch_size = batch_size
        self.request_dims = request_dims
        self.encoding_format: Literal["float", "base64"] = encoding_format
        secret = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self._client = openai.AsyncOpenAI(
            api_key=secret.get_secret_value(),
            base_url=base_url,
            max_retries=0,
            timeout=timeout_seconds,
        )
        self.base_url = str(self._client.base_url)
        self.timeout_seconds = timeout_seconds

    @property
    def model(self) -> str:
        """``openai:<model>``."""
        return f"openai:{self._model}"

    @property
    def dims(self) -> int:
        """Length of every vector."""
        return self._dims

    def __repr__(self) -> str:
        return f"OpenAIEmbedder({self._model!r}, dims={self._dims}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per text, in requests of at most ``batch_size`` texts."""
        parts = [
            await self._request(list(texts[i : i + self.batch_size]))
            for i in range(0, len(texts), self.batch_size)
        ]
        if not parts:
            return np.empty((0, self._dims), dtype=np.float32)
        return np.concatenate(parts).astype(np.float32)

    async def _request(self, batch: list[str]) -> Vectors:
        try:
            response = await self._client.embeddings.create(
                model=self._model,
                input=batch,
                encoding_format=self.encoding_format,
                dimensions=self._dims if self.request_dims else openai.omit,
            )
        except openai.OpenAIError as exc:
            # `from None`: the SDK's error carries the request and the provider's message.
            raise self._error(exc) from None
        rows: list[npt.NDArray[np.float64] | None] = [None] * len(batch)
        for item in response.data:
            if not 0 <= item.index < len(batch) or rows[item.index] is not None:
                raise InvalidEmbedding(self.model, f"an item with index {item.index!r}")
            rows[item.index] = self._decode(item.embedding)
        vectors = [row for row in rows if row is not None]
        if len(vectors) != len(batch):
            got = len(response.data)
            raise InvalidEmbedding(self.model, f"{got} vectors for {len(batch)} texts")
        lengths = {len(row) for row in vectors}
        if lengths != {self._dims}:
            raise InvalidEmbedding(
                self.model, f"vectors of {sorted(lengths)} dims; {self._dims} were expected"
            )
        return normalize(self.model, np.stack(vectors)).astype(np.float32)

    def _decode(self, embedding: object) -> npt.NDArray[np.float64]:
        # Base64 when asked for it, but some servers answer floats whatever was asked.
        if isinstance(embedding, str):
            try:
                raw = base64.b64decode(embedding, validate=True)
            except ValueError:
                raise InvalidEmbedding(self.model, "a vector that is not valid base64") from None
            if len(raw) % 4:
                raise InvalidEmbedding(self.model, "a base64 vector that is not float32s")
            return np.frombuffer(raw, dtype="<f4").astype(np.float64)
        try:
            vector = np.asarray(embedding, dtype=np.float64)
        except (TypeError, ValueError):
            vector = None
        if vector is None or vector.ndim != 1:
            raise InvalidEmbedding(self.model, "a vector that is not a list of numbers")
        return vector

    def _error(self, exc: openai.OpenAIError) -> InvalidInput | EmbedderUnavailable:
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            code = exc.code or exc.type
            code = code if isinstance(code, str) and _CODE.fullmatch(code) else None
            hint = exc.response.headers.get("x-should-retry")
            if hint == "true" or (hint != "false" and (status in (408, 409, 429) or status >= 500)):
                detail = f"HTTP {status}" + (f", code {code}" if code else "")
                return EmbedderUnavailable(self.model, detail)
            return EmbeddingRejected(self.model, status=status, code=code)
        if isinstance(exc, openai.APITimeoutError):
            return EmbedderUnavailable(self.model, f"no response within {self.timeout_seconds:g}s")
        if isinstance(exc, openai.APIConnectionError):
            # Only the host: a base URL may embed credentials.
            host = urlsplit(self.base_url).hostname or "the endpoint"
            return EmbedderUnavailable(self.model, f"cannot connect to {host}")
        # A 2xx body the SDK could not read.
        return InvalidEmbedding(self.model, f"an unreadable response ({type(exc).__name__})")
