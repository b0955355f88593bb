"""Bulk seeding through the raw driver, in exactly the row format `MemoryStore` writes.

The schema comes from Cairn's own migrations (`MemoryStore.open`); rows then go in with
``executemany`` (SQLite) or ``COPY`` (PostgreSQL) in one transaction, one commit row per
written version as a step-per-write workload leaves them. `verify` reads a sample back through
Cairn, and writes one commit through it, so a format or sequence mismatch fails loudly.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import JsonValue

from bench.corpus import TENANT, Corpus, Layout
from bench.databases import Database
from memory import MemoryStore, Provenance
from memory.namespace import encode
from memory.search import body_of, scope_tokens

# SQLAlchemy's storage format for DateTime on SQLite (naive UTC text).
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
_FLUSH = 20_000

_COLUMNS: dict[str, tuple[str, ...]] = {
    "cairn_commits": ("seq", "key", "tenant", "agent", "created_at", "result", "forgotten"),
    "cairn_heads": ("ns", "key", "version", "commit_seq", "deleted"),
    "cairn_entries": (
        "id",
        "ns",
        "key",
        "version",
        "commit_seq",
        "value",
        "tags",
        "deleted",
        "created_at",
    ),
    "cairn_streams": ("ns", "stream", "last_seq"),
    "cairn_stream_items": ("id", "ns", "stream", "seq", "commit_seq", "item", "created_at"),
    "cairn_search_docs": ("id", "ns", "key", "kind", "version", "commit_seq", "tags", "body"),
    "cairn_search_fts": ("rowid", "body", "scope", "tags"),
}


def dumps(value: object) -> str:
    """Cairn's storage encoding of a JSON value."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@dataclass
class Seeded:
    """What was written: the main entries' texts (for term statistics) and row counts."""

    layout: Layout
    texts: list[str]
    rows: int = 0
    seconds: float = 0.0
    last_seq: int = 0


@dataclass
class _Rows:
    sink: Callable[[str, list[tuple[Any, ...]]], object]
    sqlite: bool
    now: Any
    buffers: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    seq: int = 0
    entry_id: int = 0
    item_id: int = 0
    doc_id: int = 0
    written: int = 0

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        buffer = self.buffers.setdefault(table, [])
        buffer.append(row)
        if len(buffer) >= _FLUSH:
            self.flush(table)

    def flush(self, table: str | None = None) -> None:
        for name in [table] if table else list(self.buffers):
            rows = self.buffers.pop(name, [])
            if rows:
                self.sink(name, rows)
                self.written += len(rows)

    def commit(self, key: str) -> int:
        self.seq += 1
        self.add(
            "cairn_commits", (self.seq, key, TENANT, "seeder", self.now, "null", self._b(False))
        )
        return self.seq

    def version(self, ns: str, key: str, version: int, seq: int, value: str) -> None:
        self.entry_id += 1
        row = (self.entry_id, ns, key, version, seq, value, "", self._b(False), self.now)
        self.add("cairn_entries", row)

    def head(self, ns: str, key: str, version: int, seq: int) -> None:
        self.add("cairn_heads", (ns, key, version, seq, self._b(False)))

    def doc(self, ns: str, key: str, kind: str, version: int, seq: int, body: str) -> None:
        self.doc_id += 1
        self.add("cairn_search_docs", (self.doc_id, ns, key, kind, version, seq, "", body))
        if self.sqlite:
            self.add("cairn_search_fts", (self.doc_id, body, scope_tokens(ns), ""))

    def item(self, ns: str, stream: str, n: int, seq: int, item: str) -> None:
        self.item_id += 1
        self.add("cairn_stream_items", (self.item_id, ns, stream, n, seq, item, self.now))

    def _b(self, value: bool) -> bool | int:
        return int(value) if self.sqlite else value


def _write_all(rows: _Rows, layout: Layout, corpus: Corpus, texts: list[str]) -> None:
    for i, text in enumerate(texts):
        ns, key = encode(layout.doc_ns(i)), layout.doc_key(i)
        value: dict[str, JsonValue] = {"text": text, "n": i}
        seq = rows.commit(f"seed:{i}")
        rows.version(ns, key, 1, seq, dumps(value))
        rows.head(ns, key, 1, seq)
        rows.doc(ns, key, "entry", 1, seq, body_of(key, value))
    hist_ns = encode(layout.hist_ns())
    hist_texts = corpus.texts(layout.history_keys * layout.history_versions, seed=1)
    for j in range(layout.history_keys):
        key = layout.hist_key(j)
        for v in range(1, layout.history_versions + 1):
            value = {"text": hist_texts[j * layout.history_versions + v - 1], "n": v}
            seq = rows.commit(f"seed:hist:{j}:{v}")
            rows.version(hist_ns, key, v, seq, dumps(value))
        rows.head(hist_ns, key, layout.history_versions, seq)
        rows.doc(hist_ns, key, "entry", layout.history_versions, seq, body_of(key, value))
    chat = corpus.texts(layout.sessions * (layout.stream_len + 1), seed=2)
    for j in range(layout.sessions):
        ns = encode(layout.session_ns(j))
        plan: dict[str, JsonValue] = {"text": chat.pop()}
        seq = rows.commit(f"seed:plan:{j}")
        rows.version(ns, "plan", 1, seq, dumps(plan))
        rows.head(ns, "plan", 1, seq)
        rows.doc(ns, "plan", "entry", 1, seq, body_of("plan", plan))
        for n in range(1, layout.stream_len + 1):
            message: dict[str, JsonValue] = {
                "role": "user" if n % 2 else "assistant",
                "content": chat.pop(),
            }
            seq = rows.commit(f"seed:chat:{j}:{n}")
            rows.item(ns, "transcript", n, seq, dumps(message))
            rows.doc(ns, "transcript", "stream", n, seq, body_of("transcript", message))
        rows.add("cairn_streams", (ns, "transcript", layout.stream_len))
    rows.flush()


def _insert(table: str) -> str:
    cols = _COLUMNS[table]
    quoted = ", ".join(c if c == "rowid" else f'"{c}"' for c in cols)
    return f"INSERT INTO {table} ({quoted}) VALUES ({', '.join('?' * len(cols))})"


def seed(db: Database, layout: Layout, corpus: Corpus) -> Seeded:
    """Fill the (migrated, empty) database with ``layout``'s data; return what was written."""
    start = time.perf_counter()
    texts = corpus.texts(layout.size)
    now = datetime.now(UTC)
    if db.backend == "sqlite":
        conn = db.sqlite()
        rows = _Rows(lambda t, r: conn.executemany(_insert(t), r), True, now.strftime(SQLITE_TIME))
        conn.execute("BEGIN IMMEDIATE")
        _write_all(rows, layout, corpus, texts)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    else:
        with db.postgres() as pg:
            cur = pg.cursor()

            def copy(table: str, batch: list[tuple[Any, ...]]) -> None:
                cols = ", ".join(f'"{c}"' for c in _COLUMNS[table])
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
                    for row in batch:
                        cp.write_row(row)

            rows = _Rows(copy, False, now)
            with pg.transaction():
                _write_all(rows, layout, corpus, texts)
                for table, column in (
                    ("cairn_commits", "seq"),
                    ("cairn_entries", "id"),
                    ("cairn_stream_items", "id"),
                    ("cairn_search_docs", "id"),
                ):
                    # COPY with explicit ids leaves the serial sequences behind.
                    pg.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                        f"(SELECT max({column}) FROM {table}))"
                    )
            pg.execute("ANALYZE")
    return Seeded(layout, texts, rows.written, time.perf_counter() - start, rows.seq)


async def verify(store: MemoryStore, seeded: Seeded, corpus: Corpus) -> None:
    """Read a sample back through Cairn and commit once through it; raise on any mismatch."""
    layout, rng = seeded.layout, random.Random(3)
    for i in rng.sample(range(layout.size), min(20, layout.size)):
        entry = await store.get(layout.doc_ns(i), layout.doc_key(i))
        if entry.value != {"text": seeded.texts[i], "n": i} or entry.version != 1:
            raise AssertionError(f"seeded entry {i} reads back as {entry!r}")
    history = await store.history(layout.hist_ns(), layout.hist_key(0))
    if [e.version for e in history] != list(range(1, layout.history_versions + 1)):
        raise AssertionError(f"seeded history reads back as {[e.version for e in history]}")
    items = await store.tail(layout.session_ns(0), "transcript", 20)
    if [i.seq for i in items] != list(range(layout.stream_len - 19, layout.stream_len + 1)):
        raise AssertionError("seeded transcript does not read back")
    word = seeded.texts[0].split()[0]
    if not await store.search((TENANT,), word, limit=3):
        raise AssertionError(f"search for seeded word {word!r} found nothing")
    async with store.commit(key="seed:verify", provenance=Provenance(tenant=TENANT)) as c:
        c.put(layout.doc_ns(0), "verify", {"text": word})
    if c.seq != seeded.last_seq + 1:
        raise AssertionError(f"first Cairn commit got seq {c.seq}, expected {seeded.last_seq + 1}")
