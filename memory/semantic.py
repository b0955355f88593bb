"""Recall by meaning: which embedders serve a store, embedding a commit, and hybrid search.

`Semantic` holds a store's `EmbeddingConfig`s. Before a commit's transaction it embeds the text
of every entry the commit writes in a configured namespace (`plan`), so the vectors land in the
same transaction as the values; after it, nothing is embedded again for that commit. Searches
rank by keyword (``memory.search``), by vector (``memory.vector_index``, one ranking per model:
vectors of different models are never compared), or both fused by reciprocal rank (k = 60).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import JsonValue

from memory.commit import Op
from memory.embedding.base import Embedder, Vectors, embed_checked
from memory.embedding.config import EmbeddingConfig
from memory.errors import InvalidInput
from memory.namespace import MAX_QUERY_CHARS, Namespace, decode
from memory.records import SearchHit, trusted
from memory.values import loads
from memory.vector_index import Check, VectorIndex
from memory.vectors import Embedded, StoredVector, to_blob

Mode = Literal["keyword", "vector", "hybrid"]
MODES: tuple[Mode, ...] = ("keyword", "vector", "hybrid")
RRF_K = 60
Backfilled = tuple[str, str, int, int, StoredVector]
"""A backfilled vector: ``(stored namespace, key, version, commit_seq, vector)``."""
_FIELD = re.compile(r"value(\.[A-Za-z0-9_\-]+)+")
_META_FILTERS = ("key", "kind")


def check_configs(configs: object) -> tuple[EmbeddingConfig, ...]:
    """Validate ``embedders=``: a list of `EmbeddingConfig`, each with a working embedder."""
    if configs is None:
        return ()
    if isinstance(configs, EmbeddingConfig) or not isinstance(configs, Sequence):
        raise InvalidInput(f"embedders must be a list of EmbeddingConfig, got {configs!r}")
    for config in configs:
        if not isinstance(config, EmbeddingConfig):
            raise InvalidInput(f"embedders must hold EmbeddingConfig objects, got {config!r}")
        pattern = "/".join(config.pattern)
        if not isinstance(config.embedder, Embedder):
            raise InvalidInput(
                f"embedding pattern {pattern!r} has no embedder (got {config.embedder!r}): "
                "give it one, e.g. memory.embedding.default_embedder()"
            )
        dims = config.embedder.dims
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise InvalidInput(f"the embedder of pattern {pattern!r} has invalid dims {dims!r}")
    return tuple(configs)


def _overlaps(pattern: tuple[str, ...], prefix: Namespace) -> bool:
    """Whether some namespace at or under ``prefix`` is covered by ``pattern``."""
    # The pattern covers the prefix, or lies beneath it: they agree on their common part.
    return all(p in ("*", s) for p, s in zip(pattern, prefix, strict=False))


def check_query(text: object, mode: Mode) -> str:
    """Validate a search query: a string within the size limit, not blank for vector search."""
    if not isinstance(text, str):
        raise InvalidInput(f"search text must be a string, got {type(text).__name__}")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidInput(
            f"search query of {len(text)} characters is over the limit of {MAX_QUERY_CHARS}"
        )
    if mode != "keyword" and not text.strip():
        raise InvalidInput(f"search query is empty: {mode} search needs text to embed")
    return text


def check_filter(where: object) -> dict[str, tuple[JsonValue, ...]]:
    """Validate ``filter=``: ``{"value.<field>": x}``, ``key`` or ``kind``; x, or [x, y] for any.

    Raises:
        InvalidInput: naming the first unknown field.
    """
    if where is None:
        return {}
    if not isinstance(where, dict):
        raise InvalidInput(f"filter must be a dict of field to value, got {where!r}")
    checked: dict[str, tuple[JsonValue, ...]] = {}
    for field, wanted in where.items():
        if not isinstance(field, str) or not (field in _META_FILTERS or _FIELD.fullmatch(field)):
            raise InvalidInput(
                f"unknown filter field {field!r}: use 'value.<field>' (a field of the stored "
                f"value, dotted for nested ones) or one of {', '.join(_META_FILTERS)}"
            )
        checked[field] = tuple(wanted) if isinstance(wanted, list | tuple) else (wanted,)
    return checked


def make_check(where: dict[str, tuple[JsonValue, ...]], kind: str, tags: Sequence[str]) -> Check:
    """The hit filter of a checked ``filter`` (see `check_filter`) and required ``tags``."""

    def keep(key: str, value: JsonValue, has: tuple[str, ...]) -> bool:
        if not all(t in has for t in tags):
            return False
        for field, wanted in where.items():
            if field == "key":
                ok = key in wanted
            elif field == "kind":
                ok = kind in wanted
            else:
                node: JsonValue = value
                for step in field.split(".")[1:]:
                    node = node.get(step) if isinstance(node, dict) else None
                ok = node in wanted
            if not ok:
                return False
        return True

    return keep


def fuse(rankings: Sequence[Sequence[SearchHit]], limit: int) -> list[SearchHit]:
    """Reciprocal rank fusion: each hit scores the sum of 1 / (60 + rank) over the rankings."""
    scores: dict[tuple[Namespace, str, str], float] = {}
    first: dict[tuple[Namespace, str, str], SearchHit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            ident = (hit.namespace, hit.key, hit.kind)
            scores[ident] = scores.get(ident, 0.0) + 1.0 / (RRF_K + rank)
            first.setdefault(ident, hit)
    # Ties keep the order of first appearance (keyword ranking first): deterministic.
    order = sorted(scores, key=lambda ident: -scores[ident])
    return [
        trusted(SearchHit, {**dict(first[i]), "score": round(scores[i], 9)}) for i in order[:limit]
    ]


@dataclass(frozen=True)
class Model:
    """One embedder a search uses, with the index of its stored vectors."""

    embedder: Embedder
    index: VectorIndex


class Semantic:
    """A store's embedders: commits' vectors before their transactions, and query vectors."""

    def __init__(self, configs: Sequence[EmbeddingConfig]) -> None:
        self.configs = check_configs(configs)
        self._indexes: dict[tuple[str, int], VectorIndex] = {}

    @property
    def dims(self) -> list[int]:
        """The vector lengths in use (pgvector needs an index for each)."""
        return sorted({c.embedder.dims for c in self.configs})

    def models(self, prefix: Namespace) -> list[Model]:
        """The embedders serving some namespace at or under ``prefix``, one per model."""
        found: dict[tuple[str, int], Model] = {}
        for config in self.configs:
            if _overlaps(config.pattern, prefix):
                ident = (config.embedder.model, config.embedder.dims)
                if ident not in found:
                    index = self._indexes.setdefault(ident, VectorIndex(*ident))
                    found[ident] = Model(config.embedder, index)
        return list(found.values())

    def reset(self) -> None:
        """Drop the in-process copies of stored vectors (after forget or purge)."""
        self._indexes.clear()

    async def plan(self, ops: Sequence[Op]) -> Embedded | None:
        """The vectors of the entries ``ops`` write, computed now; None when none is embedded."""
        if not self.configs:
            return None
        plan = Embedded(self.configs)
        wanted: dict[tuple[EmbeddingConfig, str], None] = {}
        for op in ops:
            # A merged value is only known inside the transaction, which asks for it.
            if op.kind == "put" and op.merge == "replace" and op.value is not None:
                found = plan.wanted(op.namespace, loads(op.value))
                if found is not None:
                    wanted.setdefault(found)
        await self.embed(plan, wanted)
        return plan

    async def embed(self, plan: Embedded, wanted: Iterable[tuple[EmbeddingConfig, str]]) -> None:
        """Embed ``wanted`` texts into ``plan``, one batch per embedder, in the order given."""
        by_embedder: dict[int, tuple[Embedder, list[str]]] = {}
        for config, text in wanted:
            if (config.embedder.model, text) not in plan.found:
                batch = by_embedder.setdefault(id(config.embedder), (config.embedder, []))[1]
                if text not in batch:
                    batch.append(text)
        for embedder, texts in by_embedder.values():
            rows = await embed_checked(embedder, texts)
            for text, row in zip(texts, rows, strict=True):
                stored = StoredVector(embedder.model, embedder.dims, to_blob(row))
                plan.found[(embedder.model, text)] = stored

    async def embed_rows(self, rows: Sequence[Any]) -> list[Backfilled]:
        """Vectors for stored entry rows ``(ns, key, version, commit_seq, value)`` (backfill).

        Rows whose namespace has no embedder, or whose value has no text, are left out.
        """
        plan = Embedded(self.configs)
        wanted = [(r, plan.wanted(decode(r.ns), loads(r.value))) for r in rows]
        await self.embed(plan, dict.fromkeys(w for _, w in wanted if w is not None))
        return [
            (r.ns, r.key, r.version, r.commit_seq, plan.found[(w[0].embedder.model, w[1])])
            for r, w in wanted
            if w is not None
        ]

    @staticmethod
    async def query_vector(embedder: Embedder, text: str) -> Vectors:
        """The query's vector by ``embedder`` (checked like any embedder output)."""
        rows = await embed_checked(embedder, [text])
        vector: Vectors = rows[0]
        return vector
