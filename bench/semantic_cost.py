"""What recall by meaning costs: hybrid and vector search against keyword and hand-written scans.

Over ``N`` documents (10k quick, 100k full) written through commits with the offline default
embedder, interleaved in one run: `MemoryStore.search` in keyword, vector and hybrid mode, and a
hand-written exact scan of the same stored vectors (one SELECT of every vector of the model,
then numpy; the query embedded the same way). Also reported: an in-memory numpy scan (the
floor: no database at all), and what embedding adds to a commit per KB of text.

Targets (ratios in one run): hybrid p50 at most 2.5x keyword p50; vector search at least 0.5x
the hand-written scan's throughput.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Awaitable, Callable

import numpy as np

from bench.corpus import TENANT, Corpus
from bench.databases import Backend, Database, backends, scratch
from bench.runner import Profile, Row, benchmark
from bench.timing import interleave
from memory import MemoryStore
from memory.embedding import EmbeddingConfig, WordLlamaEmbedder, embed_checked

NS = (TENANT, "docs")
HYBRID_TARGET = 2.5
VECTOR_TARGET = 0.5
_BATCH = 500


def _met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def _docs(profile: Profile) -> int:
    return 100_000 if profile.full else 10_000


def _raw_vectors(db: Database) -> tuple[list[str], np.ndarray]:
    sql = "SELECT key, vector FROM cairn_vectors WHERE model = 'wordllama-l2-supercat'"
    if db.backend == "sqlite":
        conn = db.sqlite()
        try:
            rows = conn.execute(sql).fetchall()
        finally:
            conn.close()
    else:
        with db.postgres() as pg:
            rows = pg.execute(sql).fetchall()
    keys = [r[0] for r in rows]
    return keys, np.frombuffer(b"".join(bytes(r[1]) for r in rows), "<f4").reshape(len(rows), -1)


async def _seed(store: MemoryStore, texts: list[str]) -> float:
    start = time.perf_counter()
    for i in range(0, len(texts), _BATCH):
        async with store.commit() as c:
            for j, text in enumerate(texts[i : i + _BATCH], start=i):
                c.put(NS, f"doc-{j}", text)
    return time.perf_counter() - start


async def _commit_cost(profile: Profile, backend: Backend, embedder: WordLlamaEmbedder) -> Row:
    """Milliseconds embedding adds to a commit, per KB of text: commits of the same texts to a
    plain and to an embedded namespace, alternated, medians compared."""
    texts = Corpus().texts(600, seed=3)
    config = EmbeddingConfig(pattern=NS, embedder=embedder)
    times: dict[str, list[float]] = {"plain": [], "embedded": []}
    kb: list[float] = []
    with scratch(profile, backend, "embedcost") as db:
        async with await MemoryStore.open(db.url, embedders=[config]) as store:
            for n, i in enumerate(range(0, len(texts), 20)):
                batch = texts[i : i + 20]
                kb.append(sum(len(t.encode()) for t in batch) / 1024)
                order = (("plain", (TENANT, "plain")), ("embedded", NS))
                for label, ns in order if n % 2 else order[::-1]:
                    start = time.perf_counter()
                    async with store.commit() as c:
                        for j, text in enumerate(batch, start=i):
                            c.put(ns, f"k{j}", text)
                    times[label].append(time.perf_counter() - start)
    extra_ms = (statistics.median(times["embedded"]) - statistics.median(times["plain"])) * 1000
    per_kb = extra_ms / statistics.median(kb)
    return {
        "backend": backend,
        "measure": "commit: embedding cost per KB of text",
        "value": round(per_kb, 3),
        "unit": "ms/KB",
        "detail": f"medians of {len(kb)} alternated commits of 20 entries "
        f"({statistics.median(kb):.1f} KB); plain commit "
        f"{statistics.median(times['plain']) * 1000:.1f} ms",
    }


async def measure(profile: Profile, backend: Backend, size: int) -> list[Row]:
    embedder = WordLlamaEmbedder()
    await embed_checked(embedder, ["warm up"])
    corpus = Corpus()
    texts = corpus.texts(size)
    rng = random.Random(5)
    queries = [" ".join(rng.sample(t.split(), min(4, len(t.split())))) for t in texts[:50]]
    rounds, seconds = (7, 0.5) if profile.full else (4, 0.2)
    config = EmbeddingConfig(pattern=NS, embedder=embedder)
    with scratch(profile, backend, f"semantic{size}") as db:
        async with await MemoryStore.open(db.url, embedders=[config]) as store:
            seed_s = await _seed(store, texts)
            keys, matrix = _raw_vectors(db)
            assert len(keys) == size, (len(keys), size)

            def search(mode: str) -> Callable[[int], Awaitable[object]]:
                async def call(i: int) -> object:
                    q = queries[i % len(queries)]
                    return await store.search(NS, q, mode=mode, limit=10)  # type: ignore[arg-type]

                return call

            async def handwritten(i: int) -> object:
                q = (await embed_checked(embedder, [queries[i % len(queries)]]))[0]
                names, vectors = _raw_vectors(db)
                top = np.argpartition(-(vectors @ q), 10)[:10]
                return [names[t] for t in top]

            async def in_memory(i: int) -> object:
                q = (await embed_checked(embedder, [queries[i % len(queries)]]))[0]
                top = np.argpartition(-(matrix @ q), 10)[:10]
                return [keys[t] for t in top]

            await store.search(NS, queries[0], mode="vector")  # loads the in-process copy
            sides = {
                "keyword": search("keyword"),
                "hybrid": search("hybrid"),
                "vector": search("vector"),
                "hand-written scan": handwritten,
                "numpy in memory": in_memory,
            }
            result = await interleave(sides, rounds=rounds, seconds=seconds)
    p50 = {name: series.percentile_us(0.5) / 1000 for name, series in result.items()}
    ops = {name: series.ops_s() for name, series in result.items()}
    hybrid_x = p50["hybrid"] / p50["keyword"]
    vector_x = ops["vector"] / ops["hand-written scan"]
    rows: list[Row] = [
        {
            "backend": backend,
            "measure": f"p50 {name} ({size} docs)",
            "value": round(p50[name], 3),
            "unit": "ms",
            "detail": f"{ops[name]:.0f} ops/s",
        }
        for name in sides
    ]
    rows += [
        {
            "backend": backend,
            "measure": "hybrid p50 / keyword p50",
            "value": round(hybrid_x, 2),
            "unit": "x",
            "detail": f"target <= {HYBRID_TARGET}: {_met(hybrid_x <= HYBRID_TARGET)}",
        },
        {
            "backend": backend,
            "measure": "vector ops/s / hand-written scan ops/s",
            "value": round(vector_x, 2),
            "unit": "x",
            "detail": f"target >= {VECTOR_TARGET}: {_met(vector_x >= VECTOR_TARGET)}"
            f"; vs numpy in memory {ops['vector'] / ops['numpy in memory']:.2f}x",
        },
        {
            "backend": backend,
            "measure": "seeding with embedding",
            "value": round(size / seed_s),
            "unit": "docs/s",
            "detail": f"commits of {_BATCH}",
        },
    ]
    rows.append(await _commit_cost(profile, backend, embedder))
    return rows


@benchmark("semantic_cost", "Hybrid and vector search vs keyword and hand-written scans")
async def semantic_cost(profile: Profile) -> list[Row]:
    rows: list[Row] = []
    for backend in backends(profile):
        rows += await measure(profile, backend, _docs(profile))
    return rows
