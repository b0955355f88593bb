"""The labelled recall set (bench/data/recall_set.jsonl) is what its generator says, and fair."""

from __future__ import annotations

import json

from bench.recall_quality import score
from bench.recall_set import PATH, build, load
from memory.embedding import HashingEmbedder


def test_the_file_is_the_generators_output() -> None:
    header = json.loads(PATH.read_text(encoding="utf-8").splitlines()[0])
    assert header["licence"] == "Apache-2.0" and "fictional" in header["provenance"]
    assert load(PATH) == build()


def test_sizes_and_distinct_facts() -> None:
    records = load(PATH)
    assert len(records) >= 320
    assert sum("keyword" in r for r in records) >= 80
    assert len({r["fact"] for r in records}) == len(records)
    assert len({r["id"] for r in records}) == len(records)


async def test_paraphrases_defeat_word_overlap_and_keyword_questions_do_not() -> None:
    # The hashing embedder only sees shared words: near-perfect on keyword questions, and
    # little better than matching the name on paraphrases.
    found = await score(HashingEmbedder(), load(PATH))
    rows = {row["subset"]: row for row in found if row["mode"] == "vector"}
    assert rows["keyword"]["recall@5"] >= 0.95
    assert rows["paraphrase"]["recall@5"] <= 0.3
