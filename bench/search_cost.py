"""What a very common search term costs next to the median term, over the same documents.

Term frequencies follow Zipf's law (see `bench.corpus`), so the most common word is in most
documents and the median word in a handful. Target (reported): the common term's p50 latency
stays under 100x the median term's.
"""

from __future__ import annotations

from bench.corpus import TENANT, Corpus, Layout
from bench.databases import Backend, backends, scratch
from bench.runner import Profile, Row, benchmark
from bench.seed import seed, verify
from bench.timing import Call, interleave
from memory import MemoryStore

RATIO_TARGET = 100.0


def _docs(profile: Profile) -> int:
    return 100_000 if profile.full else 10_000


async def measure(profile: Profile, backend: Backend, size: int) -> list[Row]:
    """Seed ``size`` documents and time `MemoryStore.search` for terms of different frequency."""
    corpus = Corpus()
    rounds, seconds = (7, 0.5) if profile.full else (4, 0.2)
    with scratch(profile, backend, f"search{size}") as db:
        async with await MemoryStore.open(db.url) as store:
            seeded = seed(db, Layout(size), corpus)
            await verify(store, seeded, corpus)
            df = corpus.document_frequency(seeded.texts)
            (common, common_df), (median, median_df) = corpus.common_and_median(seeded.texts)
            rare = min(df, key=lambda w: (df[w], w))
            queries = {
                "median": (median, median_df),
                "common": (common, common_df),
                "rare": (rare, df[rare]),
                "common+median": (f"{common} {median}", None),
                "stop word only": ("the", 0),
            }
            hits: dict[str, int] = {}

            def searcher(label: str, text: str) -> Call:
                async def call(_: int) -> object:
                    found = await store.search((TENANT,), text, limit=10)
                    hits[label] = len(found)
                    return found

                return call

            sides = {label: searcher(label, text) for label, (text, _) in queries.items()}
            result = await interleave(sides, rounds=rounds, seconds=seconds)
    base = result["median"].percentile_us(0.5)
    rows: list[Row] = []
    for label, (text, n) in queries.items():
        series = result[label]
        p50 = series.percentile_us(0.5)
        rows.append(
            {
                "backend": backend,
                "docs": size,
                "term": label,
                "query": text,
                "docs_with_term": n,
                "hits": hits.get(label),
                "p50_ms": p50 / 1000,
                "p99_ms": series.percentile_us(0.99) / 1000,
                "ops_s": series.ops_s(),
                "x_median": p50 / base,
                "target_met": label != "common" or p50 / base < RATIO_TARGET,
            }
        )
    return rows


@benchmark("search_cost", "Search: very common term vs the median term")
async def search_cost(profile: Profile) -> list[Row]:
    rows: list[Row] = []
    for backend in backends(profile):
        rows += await measure(profile, backend, _docs(profile))
    return rows
