"""Recall quality of keyword, vector and hybrid search through the real store, on the recall set.

Every fact of the labelled set (``bench/data/recall_set.jsonl``) is written to a SQLite store
whose namespace has an embedder; each question is asked with `MemoryStore.search` in each mode
and scored by the rank of its own fact: recall@5 (it is among the first five) and MRR@10 (the
mean of 1/rank, 0 past ten). ``paraphrase`` questions share no content word with their fact,
``keyword`` questions do. Targets with the offline default embedder: hybrid recall@5 at least
25 points above keyword on paraphrases, and hybrid never below keyword on the keyword subset.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.recall_set import PATH, load
from bench.runner import Profile, Row, benchmark
from memory import MemoryStore
from memory.embedding import (
    Embedder,
    EmbeddingConfig,
    HashingEmbedder,
    WordLlamaEmbedder,
    embed_checked,
)
from memory.semantic import Mode

TOP, DEPTH = 5, 10
NS = ("bench", "facts")
MODES: tuple[Mode, ...] = ("keyword", "vector", "hybrid")
TARGET_POINTS = 0.25


async def _ranks(store: MemoryStore, questions: list[tuple[str, str]], mode: Mode) -> list[int]:
    """The rank of each question's own fact (``DEPTH + 1`` when not in the first ``DEPTH``)."""
    ranks = []
    for key, question in questions:
        hits = await store.search(NS, question, mode=mode, limit=DEPTH)
        keys = [h.key for h in hits]
        ranks.append(keys.index(key) + 1 if key in keys else DEPTH + 1)
    return ranks


async def score(embedder: Embedder, records: list[dict[str, str]]) -> list[Row]:
    """One row per mode and question subset: recall@5, MRR@10, and the commit's embed rate."""
    await embed_checked(embedder, ["warm up"])  # loads a model outside the timing
    config = EmbeddingConfig(pattern=NS, embedder=embedder, fields=("text",))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'recall.db'}"
        async with await MemoryStore.open(url, embedders=[config]) as store:
            start = time.perf_counter()
            async with store.commit() as c:
                for r in records:
                    c.put(NS, r["id"], {"text": r["fact"], "subject": r["subject"]})
            seconds = time.perf_counter() - start
            rows: list[Row] = []
            for subset in ("paraphrase", "keyword"):
                asked = [(r["id"], r[subset]) for r in records if subset in r]
                for mode in MODES:
                    ranks = await _ranks(store, asked, mode)
                    rows.append(
                        {
                            "embedder": f"{embedder.model} ({embedder.dims})",
                            "subset": subset,
                            "mode": mode,
                            "questions": len(asked),
                            "facts": len(records),
                            f"recall@{TOP}": round(sum(r <= TOP for r in ranks) / len(ranks), 3),
                            f"mrr@{DEPTH}": round(
                                sum(1 / r for r in ranks if r <= DEPTH) / len(ranks), 3
                            ),
                            "commit_facts_per_s": round(len(records) / seconds),
                        }
                    )
    return rows


def verdict(rows: list[Row]) -> dict[str, bool]:
    """Whether the targets hold for each embedder in ``rows``."""
    found: dict[str, bool] = {}
    by = {(r["embedder"], r["subset"], r["mode"]): r[f"recall@{TOP}"] for r in rows}
    for name, subset, mode in by:
        if subset == "paraphrase" and mode == "hybrid":
            gain = by[name, "paraphrase", "hybrid"] - by[name, "paraphrase", "keyword"]
            holds = by[name, "keyword", "hybrid"] >= by[name, "keyword", "keyword"]
            found[str(name)] = gain >= TARGET_POINTS and holds
    return found


@benchmark("recall_quality", "Recall by meaning: keyword, vector and hybrid store search")
async def recall_quality(profile: Profile) -> list[Row]:
    records = load(PATH)
    embedders: list[Embedder] = [WordLlamaEmbedder(), HashingEmbedder()]
    if profile.full:
        embedders.append(WordLlamaEmbedder(64))
    rows: list[Row] = []
    for embedder in embedders:
        rows += await score(embedder, records)
    met = verdict(rows)
    for row in rows:
        row["target_met"] = met[str(row["embedder"])]
    return rows
