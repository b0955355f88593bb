"""Synthetic, reproducible memory contents: a Zipf-distributed vocabulary and a data layout.

Words are consonant-vowel syllables ending in a, o or u, so neither SQLite's porter stemmer
nor PostgreSQL's English stemmer folds two of them together, and none is a stop word. Term
frequencies follow Zipf's law as natural text does: the top word is in most documents, the
median word in a handful.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from statistics import median_low

from memory.namespace import Namespace

_CONSONANTS = "bcdfghjklmnprtvwz"
_VOWELS = "aou"
WORDS_PER_DOC = 12
TENANT = "t0"


def vocabulary(size: int, seed: int = 7) -> list[str]:
    """``size`` distinct three-syllable words, most frequent first."""
    syllables = [c + v for c in _CONSONANTS for v in _VOWELS]
    words = ["".join(parts) for parts in itertools.product(syllables, repeat=3)]
    random.Random(seed).shuffle(words)
    return words[:size]


@dataclass
class Corpus:
    """Document texts drawn from a Zipf(1) distribution over `vocabulary`."""

    vocab_size: int = 5000
    seed: int = 11
    words: list[str] = field(init=False)
    _cum: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.words = vocabulary(self.vocab_size)
        self._cum = list(itertools.accumulate(1.0 / rank for rank in range(1, self.vocab_size + 1)))

    def texts(self, n: int, seed: int = 0) -> list[str]:
        """``n`` texts of `WORDS_PER_DOC` words each."""
        rng = random.Random(self.seed * 1_000_003 + seed)
        drawn = rng.choices(self.words, cum_weights=self._cum, k=n * WORDS_PER_DOC)
        return [" ".join(drawn[i : i + WORDS_PER_DOC]) for i in range(0, len(drawn), WORDS_PER_DOC)]

    def document_frequency(self, texts: list[str]) -> Counter[str]:
        """How many of ``texts`` contain each word."""
        df: Counter[str] = Counter()
        for text in texts:
            df.update(set(text.split()))
        return df

    def common_and_median(self, texts: list[str]) -> tuple[tuple[str, int], tuple[str, int]]:
        """The most frequent term and the median term (by documents containing it)."""
        df = self.document_frequency(texts)
        common = df.most_common(1)[0]
        mid = median_low(df.values())
        median = next((w, n) for w, n in sorted(df.items()) if n == mid)
        return common, median


@dataclass(frozen=True)
class Layout:
    """Where the seeded data lives, for a store of ``size`` current entries.

    * ``size`` entries ``k0000000...`` spread over 100 namespaces ``t0/docs/pNN`` (version 1);
    * 100 keys ``h000...`` under ``t0/hist`` with `HISTORY_VERSIONS` versions each;
    * `SESSIONS` session namespaces ``t0/sess/sN``, each with a ``plan`` entry and a
      ``transcript`` stream of `stream_len` chat messages.
    """

    size: int
    history_keys: int = 100
    history_versions: int = 10
    sessions: int = 10
    stream_len: int = 200

    @staticmethod
    def doc_ns(i: int) -> Namespace:
        return (TENANT, "docs", f"p{i % 100:02d}")

    @staticmethod
    def doc_key(i: int) -> str:
        return f"k{i:07d}"

    @staticmethod
    def hist_ns() -> Namespace:
        return (TENANT, "hist")

    @staticmethod
    def hist_key(j: int) -> str:
        return f"h{j:03d}"

    @staticmethod
    def session_ns(j: int) -> Namespace:
        return (TENANT, "sess", f"s{j}")
