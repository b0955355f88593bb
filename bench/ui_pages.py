"""The Cairn UI's pages over a store of 100k entries: each must render in 300 ms at p50.

The store is seeded in bulk (`bench.seed`): 100k entries under ``t0/docs`` (in 100 namespaces),
keys with 10 versions, sessions with 200-turn transcripts. Each page is requested through the
real app (middleware, store reads, templates) with httpx's ASGI transport, in interleaved
rounds; ``/healthz`` through the same stack is the baseline its ratio is taken against.
The namespace counts those pages show are cached for 5 s; the cost of one recount is
reported as a row of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import httpx

from bench.corpus import TENANT, Corpus, Layout
from bench.databases import backends, scratch
from bench.runner import Profile, Row, benchmark
from bench.seed import seed, verify
from bench.timing import interleave
from cairn.ui import UIConfig, create_app
from memory import MemoryStore

SIZE = 100_000
TARGET_MS = 300.0


def _pages(store_cursor: str, word: str, as_of: int) -> dict[str, str]:
    docs = f"{TENANT}/docs"
    return {
        "healthz (baseline)": "/healthz",
        "namespace tree": "/",
        "namespace, first page": f"/ns/{docs}",
        "namespace, deep page": f"/ns/{docs}?cursor={store_cursor}",
        "namespace as of a commit": f"/ns/{docs}?as_of={as_of}",
        "entry history + diff": f"/entry/{TENANT}/hist?key=h000",
        "session transcript": f"/sessions/{TENANT}/s0",
        "search": f"/search?prefix={TENANT}&q={word}",
    }


def _getter(client: httpx.AsyncClient, path: str) -> Callable[[int], Coroutine[Any, Any, None]]:
    async def get(_: int) -> None:
        response = await client.get(path)
        if response.status_code != 200:
            raise AssertionError(f"{path} answered {response.status_code}: {response.text[:200]}")

    return get


async def measure(profile: Profile, backend: str) -> list[Row]:
    rounds, seconds = (7, 1.0) if profile.full else (3, 0.3)
    corpus = Corpus()
    with scratch(profile, backend, "ui") as db:  # type: ignore[arg-type]
        async with await MemoryStore.open(db.url) as store:
            seeded = seed(db, Layout(SIZE), corpus)
            print(f"  seeded {backend}: {seeded.rows:,} rows in {seeded.seconds:.1f}s")
            await verify(store, seeded, corpus)
            # A cursor deep into the listing: keyset, so as cheap as the first page.
            deep = (await store.list(Layout.doc_ns(SIZE - 1), limit=1)).next_cursor
            assert deep is not None
            pages = _pages(deep, seeded.texts[0].split()[0], seeded.last_seq // 2)
            app = create_app(store, UIConfig())
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ui") as client:
                sides = {name: _getter(client, path) for name, path in pages.items()}

                async def recount(_: int) -> None:
                    await store.namespaces((TENANT,), limit=100_000)

                # What the tree and namespace pages pay once per 5 s (their counts' cache).
                sides["counts, uncached (store.namespaces)"] = recount
                results = await interleave(sides, rounds=rounds, seconds=seconds)
    base = results["healthz (baseline)"].percentile_us(0.5)
    rows: list[Row] = []
    for name, series in results.items():
        p50 = series.percentile_us(0.5) / 1000
        rows.append(
            {
                "backend": backend,
                "entries": SIZE,
                "page": name,
                "requests": series.ops,
                "p50_ms": round(p50, 1),
                "p95_ms": round(series.percentile_us(0.95) / 1000, 1),
                "x_baseline": round(p50 * 1000 / base, 1),
                "p50_of_target": round(p50 / TARGET_MS, 3),
                "target_met": p50 <= TARGET_MS,
            }
        )
    return rows


@benchmark("ui_pages", "Cairn UI pages over 100k entries: p50 render time (target 300 ms)")
async def ui_pages(profile: Profile) -> list[Row]:
    rows: list[Row] = []
    for backend in backends(profile) if profile.full else ["sqlite"]:
        rows += await measure(profile, backend)
    return rows
