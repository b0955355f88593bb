"""Recall quality of the embedders on the labelled recall set (``bench/data/recall_set.jsonl``).

Each fact of the set is a document; each question is asked by an exact cosine scan over all of
them and scored by the rank of its own fact: recall@5 (it is among the first five) and MRR (the
mean of 1/rank). ``paraphrase`` questions share no content word with their fact, ``keyword``
questions do. This first version searches in memory; the store's keyword and hybrid modes will
be scored on the same set.
"""

from __future__ import annotations

import time

import numpy as np

from bench.recall_set import PATH, load
from bench.runner import Profile, Row, benchmark
from memory.embedding import Embedder, HashingEmbedder, WordLlamaEmbedder, embed_checked

TOP = 5


def _ranks(docs: np.ndarray, questions: np.ndarray, answers: list[int]) -> np.ndarray:
    scores = questions @ docs.T
    own = scores[np.arange(len(answers)), answers]
    # Rank 1 is best; a tie with another fact counts against the answer.
    ranks: np.ndarray = (scores >= own[:, None]).sum(axis=1)
    return ranks


async def score(embedder: Embedder, records: list[dict[str, str]]) -> list[Row]:
    """One row per question subset: recall@5, MRR and how fast the facts were embedded."""
    await embed_checked(embedder, ["warm up"])  # loads a model outside the timing
    start = time.perf_counter()
    docs = await embed_checked(embedder, [r["fact"] for r in records])
    seconds = time.perf_counter() - start
    rows: list[Row] = []
    for subset in ("paraphrase", "keyword"):
        asked = [(i, r[subset]) for i, r in enumerate(records) if subset in r]
        questions = await embed_checked(embedder, [q for _, q in asked])
        ranks = _ranks(docs, questions, [i for i, _ in asked])
        rows.append(
            {
                "embedder": f"{embedder.model} ({embedder.dims})",
                "subset": subset,
                "questions": len(asked),
                "facts": len(records),
                f"recall@{TOP}": round(float((ranks <= TOP).mean()), 3),
                "mrr": round(float((1.0 / ranks).mean()), 3),
                "facts_per_s": round(len(records) / seconds),
            }
        )
    return rows


@benchmark("recall_quality", "Recall by meaning: exact cosine search over the recall set")
async def recall_quality(profile: Profile) -> list[Row]:
    records = load(PATH)
    embedders: list[Embedder] = [HashingEmbedder(), WordLlamaEmbedder(), WordLlamaEmbedder(64)]
    rows: list[Row] = []
    for embedder in embedders:
        rows += await score(embedder, records)
    return rows
