"""Embedders: the output check, the hashing floor, the offline default, per-namespace config."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from memory.embedding import (
    EmbeddingConfig,
    HashingEmbedder,
    InvalidEmbedding,
    WordLlamaEmbedder,
    check_vectors,
    default_embedder,
    embed_checked,
    extract_text,
    select_config,
)
from memory.errors import InvalidInput

QUESTION = "what does Ada like to drink?"


def nearest(vectors: np.ndarray) -> list[int]:
    """Indexes of rows 1.. ordered by cosine similarity to row 0, nearest first."""
    return [int(i) + 1 for i in np.argsort(-(vectors[1:] @ vectors[0]))]


class Returns:
    """An embedder that returns what it is told to: the output check must catch it."""

    model = "test-model"
    dims = 3

    def __init__(self, rows: object) -> None:
        self.rows = rows

    async def embed(self, texts: Sequence[str]) -> object:
        return self.rows


UNIT = [1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ([UNIT], r"1 vectors for 2 texts"),
        ([UNIT, UNIT, UNIT], r"3 vectors for 2 texts"),
        ([[1.0, 0.0], [0.0, 1.0]], r"vectors of 2 dims; 3 were expected"),
        ([UNIT, [1.0, 0.0]], r"vectors of different lengths"),
        ([UNIT, [float("nan"), 0.0, 0.0]], r"a NaN or infinite number in vector 1"),
        ([[float("inf"), 0.0, 0.0], UNIT], r"a NaN or infinite number in vector 0"),
        ([UNIT, [3.0, 4.0, 0.0]], r"vector 1 of length 5, not unit length"),
        ([UNIT, ["a", "b", "c"]], r"vectors of different lengths or non-numbers"),
        (UNIT, r"an array of 1 dimensions"),
    ],
)
async def test_bad_output_is_rejected_naming_model_and_problem(rows: object, problem: str) -> None:
    with pytest.raises(
        InvalidEmbedding, match=rf"^embedding model 'test-model' returned {problem}"
    ):
        await embed_checked(Returns(rows), ["one", "two"])  # type: ignore[arg-type]


async def test_good_output_comes_back_as_float32_rows() -> None:
    got = await embed_checked(Returns([UNIT, [0.0, 0.6, 0.8]]), ["one", "two"])  # type: ignore[arg-type]
    assert got.dtype == np.float32 and got.shape == (2, 3)
    assert check_vectors("m", 3, 0, []).shape == (0, 3)


@pytest.mark.parametrize(
    ("texts", "problem"),
    [
        ("one text", "list of strings"),
        (["ok", "  "], "text 1 is blank"),
        (["ok", 7], "text 1 must"),
    ],
)
async def test_bad_texts_are_rejected_before_embedding(texts: object, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        await embed_checked(HashingEmbedder(), texts)  # type: ignore[arg-type]


async def test_hashing_is_deterministic_across_processes() -> None:
    texts = ["Ada prefers green tea", "!!!", "Zoë's café ☕"]
    here = await embed_checked(HashingEmbedder(dims=64), texts)
    code = (
        "import json, sys; from memory.embedding import HashingEmbedder; "
        "print(json.dumps(HashingEmbedder(dims=64).embed_sync(json.loads(sys.argv[1])).tolist()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(texts)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    ).stdout
    np.testing.assert_array_equal(here, np.asarray(json.loads(out), dtype=np.float32))


async def test_hashing_ranks_shared_words_first() -> None:
    texts = ["green tea for Ada", "the invoice page is empty", "Ada prefers green tea", "tea"]
    vectors = await embed_checked(HashingEmbedder(), texts)
    assert nearest(vectors) == [2, 3, 1]


async def test_offline_default_ranks_by_meaning() -> None:
    texts = [
        QUESTION,
        "the invoice page is empty",
        "Ada prefers green tea",
        "the build server runs out of disk on Fridays",
    ]
    vectors = await embed_checked(default_embedder(), texts)
    assert vectors.shape == (4, 256)
    assert nearest(vectors)[0] == 2


async def test_offline_prefix_dims_are_unit_vectors() -> None:
    vectors = await embed_checked(WordLlamaEmbedder(dims=64), [QUESTION, "Ada prefers green tea"])
    assert vectors.shape == (2, 64)


async def test_offline_loading_leaves_root_logging_alone() -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    await embed_checked(WordLlamaEmbedder(), ["a"])
    assert (list(root.handlers), root.level) == before


def test_offline_default_loads_with_no_network_and_no_cache(tmp_path: Path) -> None:
    # A fresh process with an empty home: any socket use or any file written under home fails
    # the test, so the model can only come from the installed wheel.
    code = """
import asyncio, sys
def guard(event, args):
    if event in ("socket.connect", "socket.getaddrinfo"):
        raise RuntimeError(f"network use: {event} {args}")
sys.addaudithook(guard)
from memory.embedding import default_embedder, embed_checked
texts = ["what does Ada like to drink?", "Ada prefers green tea"]
v = asyncio.run(embed_checked(default_embedder(), texts))
print(round(float(v[0] @ v[1]), 3))
"""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert 0.0 < float(result.stdout) < 1.0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        (("$",), "Ada\ngreen tea\nhot\n2\nx"),
        (("title",), "Ada"),
        (("$.body.drink", "title"), "green tea\nAda"),
        (("$.notes[*].text",), "hot\n2"),
        (("missing", "$.body.none"), None),
    ],
)
def test_fields_pick_the_text_to_embed(fields: tuple[str, ...], text: str | None) -> None:
    value = {
        "title": "Ada",
        "body": {"drink": "green tea", "none": None},
        "notes": [{"text": "hot"}, {"text": 2}, {"other": "x"}],
    }
    assert extract_text(value, fields) == text


def test_plain_values_embed_as_themselves() -> None:
    assert extract_text("Ada prefers green tea") == "Ada prefers green tea"
    assert extract_text(["tea", None, True]) == "tea\ntrue"
    assert extract_text({"k": "   "}) is None


@pytest.mark.parametrize("field", ["", "$.a..b", "$.a[0]", "a b"])
def test_malformed_fields_are_rejected(field: str) -> None:
    with pytest.raises(InvalidInput, match="embedding field"):
        EmbeddingConfig(pattern=("acme",), embedder=HashingEmbedder(), fields=(field,))


@pytest.mark.parametrize("pattern", ["acme/*", (), ("acme", "bad/segment")])
def test_malformed_patterns_are_rejected(pattern: object) -> None:
    with pytest.raises(InvalidInput, match="embedding pattern"):
        EmbeddingConfig(pattern=pattern, embedder=HashingEmbedder())  # type: ignore[arg-type]


def test_the_most_specific_pattern_wins() -> None:
    broad = EmbeddingConfig(pattern=("acme",), embedder=HashingEmbedder(dims=32))
    wild = EmbeddingConfig(pattern=("acme", "*", "notes"), embedder=HashingEmbedder(dims=64))
    exact = EmbeddingConfig(pattern=("acme", "user", "notes"), embedder=HashingEmbedder(dims=128))
    configs = [broad, wild, exact]
    assert select_config(configs, ("acme", "user", "notes", "u-7")) is exact
    assert select_config(configs, ("acme", "team", "notes")) is wild
    assert select_config(configs, ("acme", "team")) is broad
    assert select_config(configs, ("globex", "user", "notes")) is None
