"""`WordLlamaEmbedder`: the offline default, a static embedding model shipped inside its wheel.

WordLlama (``pip install wordllama``, in the ``semantic`` extra) ships its default model,
``l2_supercat`` at 256 dims (a 32,000 x 256 token table, 16 MB), and that model's tokenizer
inside the package. WordLlama's own loader looks for the tokenizer under a folder name the
wheel does not use and then downloads it from the Hugging Face hub; this module loads both
files from the installed package instead, so no model hub is ever contacted. A text's vector is
the attention-masked mean of its tokens' vectors, scaled to unit length: CPU only, about a
millisecond for a short text.

Licences: WordLlama's code is MIT. Its ``l2_supercat`` weights are published by the same author
under MIT, but they were trained from the token-embedding tables of Llama 2 models and use the
Llama 2 tokenizer, so the Llama 2 Community License may also apply to them; users who need
certainty should configure another embedder (`memory.embedding.OpenAIEmbedder`).
"""

from __future__ import annotations

import asyncio
import importlib.resources
import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from memory.embedding.base import Vectors
from memory.errors import MemoryStoreError

WEIGHTS = "weights/l2_supercat_256.safetensors"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
MODEL = "wordllama-l2-supercat"
FULL_DIMS = 256
# The model was trained with Matryoshka losses: a prefix of each vector is a smaller model.
ALLOWED_DIMS = (64, 128, 256)


class EmbedderNotInstalled(MemoryStoreError):
    """The offline embedder's package (or its shipped model files) is missing."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"the offline embedder needs the `wordllama` package with its shipped model "
            f"(pip install 'cairn-agents[semantic]'): {detail}"
        )


def _load_inference() -> Any:
    """Build WordLlama's inference object from the files inside the installed wheel."""
    root_logger = logging.getLogger()
    handlers, level = list(root_logger.handlers), root_logger.level
    try:
        from safetensors import safe_open
        from tokenizers import Tokenizer
        from wordllama.inference import WordLlamaInference  # type: ignore[import-untyped]
    except ImportError as exc:
        raise EmbedderNotInstalled(str(exc)) from None
    finally:
        # wordllama.inference calls logging.basicConfig(level=INFO) when imported; undo that,
        # since configuring logging is the application's business.
        root_logger.handlers[:] = handlers
        root_logger.setLevel(level)
    package = importlib.resources.files("wordllama")
    weights, tokenizer_file = package / WEIGHTS, package / TOKENIZER
    if not (weights.is_file() and tokenizer_file.is_file()):
        raise EmbedderNotInstalled(f"{WEIGHTS} or {TOKENIZER} is not in the installed wordllama")
    with importlib.resources.as_file(weights) as path, safe_open(str(path), "np") as f:
        table = f.get_tensor("embedding.weight")
    with importlib.resources.as_file(tokenizer_file) as path:
        tokenizer = Tokenizer.from_file(str(path))
    return WordLlamaInference(table, tokenizer)


class WordLlamaEmbedder:
    """The offline default embedder; the model loads on first use, once per process.

    Args:
        dims: 256 (the full model), or 128 or 64 (its Matryoshka prefixes: smaller, a little
            less accurate).
    """

    _shared: Any = None
    _lock = threading.Lock()

    def __init__(self, dims: int = FULL_DIMS) -> None:
        if dims not in ALLOWED_DIMS:
            raise ValueError(f"dims must be one of {ALLOWED_DIMS}, got {dims!r}")
        self._dims = dims

    @property
    def model(self) -> str:
        """``wordllama-l2-supercat``; the dims are recorded beside it."""
        return MODEL

    @property
    def dims(self) -> int:
        """Length of every vector."""
        return self._dims

    def __repr__(self) -> str:
        return f"WordLlamaEmbedder(dims={self._dims})"

    @classmethod
    def _inference(cls) -> Any:
        # One 32 MB table per process, whatever the number of embedders.
        with cls._lock:
            if cls._shared is None:
                cls._shared = _load_inference()
            return cls._shared

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        """Embed on the calling thread (loading the model first if needed)."""
        raw = self._inference().embed(list(texts), norm=False, return_np=True)
        vectors = np.asarray(raw, dtype=np.float32)[:, : self._dims]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        # A text made only of tokens the model has no vector for stays all zeros; the output
        # check rejects it by name rather than storing a vector that matches nothing.
        result: Vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        return result

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per text, computed on a worker thread."""
        return await asyncio.to_thread(self.embed_sync, texts)
