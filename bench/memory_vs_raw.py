"""Cairn's `MemoryStore` against hand-written SQL on the raw driver, on the same tables.

Each database is created by Cairn's migrations, bulk-seeded through the raw driver in Cairn's
row format (checked by reading it back through Cairn), then each operation runs on both sides
in interleaved rounds. Cairn is timed as users call it: ``await store.get(...)``, sequentially,
in one event loop; the raw side is plain synchronous driver calls in the same process.
Target (reported, not asserted): Cairn keeps >= 0.5x the raw throughput and <= 2x its p50.
"""

from __future__ import annotations

import importlib.util
import random
from typing import Any

from bench.corpus import TENANT, Corpus, Layout
from bench.databases import Backend, backends, scratch
from bench.raw import RawStore
from bench.runner import Profile, Row, benchmark
from bench.seed import Seeded, seed, verify
from bench.timing import Call, Series, interleave
from memory import MemoryStore, Provenance

THROUGHPUT_TARGET = 0.5
LATENCY_TARGET = 2.0
BIG = 1_000_000
"""At this size and above only point get and commit run."""

Pair = tuple[Call, Call]


def _sizes(profile: Profile) -> tuple[int, ...]:
    return (1_000, 100_000, BIG) if profile.full else (1_000, 10_000)


def _picks(n: int, salt: int, count: int = 4096) -> list[int]:
    rng = random.Random(salt)
    return [rng.randrange(n) for _ in range(count)]


def _search_terms(corpus: Corpus) -> list[str]:
    # Ranks 50-500: frequent enough for 10 hits at 1k docs, well under the candidate cap.
    return corpus.words[50:500:7]


def operations(
    store: MemoryStore, raw: RawStore, seeded: Seeded, corpus: Corpus
) -> dict[str, Pair]:
    """The (cairn, raw) call pair of every operation measured at this size."""
    layout = seeded.layout
    reads, writes = _picks(layout.size, 1), _picks(layout.size, 2)
    texts = corpus.texts(256, seed=9)
    terms = _search_terms(corpus)
    prov = Provenance(tenant=TENANT, agent="cairn")

    def value(i: int) -> dict[str, Any]:
        return {"text": texts[i % len(texts)], "n": i}

    async def cairn_get(i: int) -> object:
        k = reads[i % len(reads)]
        return await store.get(layout.doc_ns(k), layout.doc_key(k))

    def raw_get(i: int) -> object:
        k = reads[i % len(reads)]
        return raw.get(layout.doc_ns(k), layout.doc_key(k))

    async def cairn_commit(i: int) -> object:
        k = writes[i % len(writes)]
        async with store.commit(provenance=prov) as c:
            c.put(layout.doc_ns(k), layout.doc_key(k), value(i))
        return c.seq

    def raw_commit(i: int) -> object:
        k = writes[i % len(writes)]
        return raw.commit(f"raw:{i}", layout.doc_ns(k), layout.doc_key(k), value(i))

    ops: dict[str, Pair] = {"get": (cairn_get, raw_get), "commit": (cairn_commit, raw_commit)}
    if layout.size >= BIG:
        return ops

    async def cairn_history(i: int) -> object:
        return await store.history(
            layout.hist_ns(), layout.hist_key(i % layout.history_keys), limit=10
        )

    def raw_history(i: int) -> object:
        return raw.history(layout.hist_ns(), layout.hist_key(i % layout.history_keys), 10)

    async def cairn_tail(i: int) -> object:
        return await store.tail(layout.session_ns(i % layout.sessions), "transcript", 20)

    def raw_tail(i: int) -> object:
        return raw.tail(layout.session_ns(i % layout.sessions), "transcript", 20)

    async def cairn_search(i: int) -> object:
        return await store.search((TENANT,), terms[i % len(terms)], limit=10)

    def raw_search(i: int) -> object:
        return raw.search((TENANT,), terms[i % len(terms)], 10)

    ops |= {
        "history(10)": (cairn_history, raw_history),
        "tail(20)": (cairn_tail, raw_tail),
        "search(10)": (cairn_search, raw_search),
    }
    context = context_pair(store, raw, layout, terms)
    if context is not None:
        ops["context"] = context
    return ops


def context_pair(
    store: MemoryStore, raw: RawStore, layout: Layout, terms: list[str]
) -> Pair | None:
    """Context assembly (pinned entry, search, transcript tail, summary), if `memory.context`
    exists; the raw side runs the same reads and joins the text with f-strings."""
    if importlib.util.find_spec("memory.context") is None:
        return None
    from memory.context import ContextSpec, Pinned, SearchSource, build_context

    spec = ContextSpec(
        pinned=(Pinned(where="session", key="plan"),),
        search=SearchSource(where="tenant", limit=5),
        last_messages=20,
    )
    instructions = "You are the benchmark agent."
    # MemoryStore satisfies memory.context.Reader at run time; its overloads do not match the
    # protocol's signatures for mypy.
    reader: Any = store

    def bindings(i: int) -> dict[str, tuple[str, ...]]:
        return {"tenant": (TENANT,), "session": layout.session_ns(i % layout.sessions)}

    async def cairn_context(i: int) -> object:
        task = f"find {terms[i % len(terms)]}"
        return await build_context(
            reader, spec, instructions=instructions, task=task, bindings=bindings(i)
        )

    def raw_context(i: int) -> object:
        ns, task = layout.session_ns(i % layout.sessions), f"find {terms[i % len(terms)]}"
        plan = raw.get(ns, "plan")
        hits = raw.search((TENANT,), task, 5)
        messages = raw.tail(ns, "transcript", 20)
        try:
            summary = raw.get(ns, "transcript-summary")
        except KeyError:
            summary = None
        blocks = [f"<pinned>{plan['text']}</pinned>", *(f"<recalled>{h}</recalled>" for h in hits)]
        if summary is not None:
            blocks.append(f"<summary>{summary}</summary>")
        return "\n\n".join([instructions, *blocks]), messages

    return cairn_context, raw_context


def _row(backend: Backend, size: int, op: str, cairn: Series, raw: Series) -> Row:
    thr = cairn.ops_s() / raw.ops_s()
    p50 = cairn.percentile_us(0.5) / raw.percentile_us(0.5)
    return {
        "backend": backend,
        "size": size,
        "op": op,
        "cairn_ops_s": cairn.ops_s(),
        "cairn_range": cairn.ops_s_range(),
        "raw_ops_s": raw.ops_s(),
        "raw_range": raw.ops_s_range(),
        "cairn_p50_us": cairn.percentile_us(0.5),
        "raw_p50_us": raw.percentile_us(0.5),
        "thr_ratio": thr,
        "p50_ratio": p50,
        "target_met": thr >= THROUGHPUT_TARGET and p50 <= LATENCY_TARGET,
    }


async def compare(profile: Profile, backend: Backend, size: int) -> list[Row]:
    """Seed one database of ``size`` entries and measure every operation on both sides."""
    rounds, seconds = (9, 0.4) if profile.full else (5, 0.1)
    corpus, rows = Corpus(), []
    with scratch(profile, backend, f"mvr{size}") as db:
        async with await MemoryStore.open(db.url) as store:
            seeded = seed(db, Layout(size), corpus)
            print(
                f"  seeded {backend} size={size:,}: {seeded.rows:,} rows in {seeded.seconds:.1f}s"
            )
            await verify(store, seeded, corpus)
            raw = RawStore(db)
            try:
                for op, (cairn_call, raw_call) in operations(store, raw, seeded, corpus).items():
                    sides = {"cairn": cairn_call, "raw": raw_call}
                    result = await interleave(sides, rounds=rounds, seconds=seconds)
                    rows.append(_row(backend, size, op, result["cairn"], result["raw"]))
            finally:
                raw.close()
    return rows


@benchmark("memory_vs_raw", "MemoryStore vs raw driver: same schema, same statements")
async def memory_vs_raw(profile: Profile) -> list[Row]:
    rows: list[Row] = []
    for backend in backends(profile):
        for size in _sizes(profile):
            rows += await compare(profile, backend, size)
    return rows
