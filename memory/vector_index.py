"""Nearest entries by vector: an exact numpy scan (SQLite, PostgreSQL without pgvector) or HNSW.

With pgvector (`nearest_hnsw`) each try is one statement that walks the index, drops versions
that are not current and live, and returns their values: a point read, run on the event loop.

The exact scan keeps an in-process copy of one model's stored vectors (`VectorIndex`), brought
up to date incrementally by row id before each search: the rows of a commit become visible in
id order on both backends (SQLite has one writer; PostgreSQL commits hold the commit lock while
they insert). The copy only ranks candidates; every candidate is then checked against the
database (still the current version, not deleted or expired, within the tags and filter), so a
vector whose entry was overwritten, deleted or forgotten elsewhere is never returned.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import JsonValue
from sqlalchemy import Connection, DateTime, bindparam, func, select, text

from memory import schema, vectors
from memory.driver import Read, Statement
from memory.embedding.base import Vectors
from memory.namespace import Namespace, decode, prefix_bounds
from memory.records import SearchHit, trusted
from memory.values import loads

Check = Callable[[str, JsonValue, tuple[str, ...]], bool]
"""A hit filter: ``(key, value, tags) -> keep``."""

ReadRows = Callable[[Read[list[tuple[Any, ...]]]], Awaitable[list[tuple[Any, ...]]]]
"""Runs a one-statement read (`memory.runner.Runner.read`, as a point read)."""

Candidate = tuple[str, str, int, float]
"""``(stored namespace, key, version, cosine similarity)``."""


class VectorIndex:
    """An in-process copy of the stored vectors of one ``(model, dims)``, for exact search."""

    def __init__(self, model: str, dims: int) -> None:
        self.model = model
        self.dims = dims
        self._lock = threading.Lock()
        self._matrix: Vectors = np.empty((0, dims), dtype=np.float32)
        self._codes: npt.NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._alive: npt.NDArray[np.bool_] = np.empty(0, dtype=bool)
        self._ids: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._rows: list[tuple[str, int]] = []
        self._names: list[str] = []
        self._name_code: dict[str, int] = {}
        self._latest: dict[tuple[int, str], int] = {}
        self._count = 0
        self._last_id = 0

    def __len__(self) -> int:
        return self._count

    def refresh(self, conn: Connection) -> int:
        """Load rows added since the last refresh; return the newest id this snapshot holds."""
        v = schema.vectors.c
        mine = (v.model == self.model) & (v.dims == self.dims)
        top = conn.execute(select(func.max(v.id)).where(mine)).scalar() or 0
        with self._lock:
            if top <= self._last_id:
                return int(top)
            rows = conn.execute(
                select(v.id, v.ns, v.key, v.version, v.vector)
                .where(mine, v.id > self._last_id, v.id <= top)
                .order_by(v.id)
            ).all()
            self._append(rows)
            self._last_id = int(top)
        return int(top)

    def _append(self, rows: Sequence[Any]) -> None:
        if not rows:
            return
        n, new = self._count, len(rows)
        if n + new > len(self._matrix):
            size = max(n + new, 2 * len(self._matrix), 1024)
            self._matrix = _grown(self._matrix, size)
            self._codes = _grown(self._codes, size)
            self._alive = _grown(self._alive, size)
            self._ids = _grown(self._ids, size)
        self._matrix[n : n + new] = vectors.from_blobs([r.vector for r in rows], self.dims)
        for i, r in enumerate(rows, start=n):
            code = self._name_code.get(r.ns)
            if code is None:
                code = self._name_code[r.ns] = len(self._names)
                self._names.append(r.ns)
            self._codes[i] = code
            self._ids[i] = r.id
            self._rows.append((r.key, r.version))
            # Only the newest version of a key is searched; its older ones stay for history.
            previous = self._latest.get((code, r.key))
            if previous is not None and self._rows[previous][1] < r.version:
                self._alive[previous] = False
            if previous is None or self._rows[previous][1] < r.version:
                self._latest[(code, r.key)] = i
            self._alive[i] = True
        self._count = n + new

    def scored(
        self, query: Vectors, prefix: Namespace
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
        """Positions of the live rows under ``prefix``, and their similarities to ``query``."""
        with self._lock:
            n = self._count
            matrix, codes, alive = self._matrix[:n], self._codes[:n], self._alive[:n]
            names = list(self._names)
        exact, low, high = prefix_bounds(prefix)
        inside = [i for i, name in enumerate(names) if name == exact or low <= name < high]
        valid = alive if len(inside) == len(names) else alive & np.isin(codes, inside)
        # numpy's own loop, not BLAS: OpenBLAS splits a matrix-vector product across threads,
        # and on a busy machine their hand-offs made it 60x slower (12 ms against 0.2 ms for
        # 10k x 256 with two loaded cores); einsum runs on the calling thread.
        scores = np.einsum("ij,j->i", matrix, query)
        positions = np.flatnonzero(valid)
        return positions, scores[positions]

    def describe(self, position: int) -> tuple[str, str, int, int]:
        """``(stored namespace, key, version, row id)`` of the row at ``position``."""
        key, version = self._rows[position]
        return self._names[int(self._codes[position])], key, version, int(self._ids[position])

    def drop(self, positions: Sequence[int]) -> None:
        """Stop offering rows whose entry version is no longer current and live."""
        with self._lock:
            self._alive[list(positions)] = False


def _best(scores: npt.NDArray[np.float32], n: int) -> npt.NDArray[np.intp]:
    """Indexes of the ``n`` highest scores, best first (ties: lower index first)."""
    if n < len(scores):
        part = np.argpartition(-scores, n - 1)[:n]
        # argpartition's order among equals is arbitrary; sorting by (score, index) is not.
        return part[np.lexsort((part, -scores[part]))]
    return np.argsort(-scores, kind="stable")


def _grown(array: npt.NDArray[Any], size: int) -> npt.NDArray[Any]:
    grown = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


@functools.lru_cache(maxsize=64)
def _live_statement(n: int) -> Statement:
    """The live check of ``n`` entry versions (see `_live_versions`)."""
    # Text, not a Core expression: building and compiling 40 lookups cost 10 ms, ten times the
    # query. The candidates are a VALUES list the lookups start from: given a row-value IN,
    # SQLite scans; given an OR, PostgreSQL without fresh statistics walked all 20k entries.
    rows = ", ".join(
        f"(CAST(:n{i} AS VARCHAR), CAST(:k{i} AS VARCHAR), CAST(:v{i} AS INTEGER))"
        for i in range(n)
    )
    sql = text(
        f"WITH c (ns, key, version) AS (VALUES {rows})"
        " SELECT e.ns, e.key, e.version, e.commit_seq, e.value, e.tags FROM c"
        " JOIN cairn_heads AS h ON h.ns = c.ns AND h.key = c.key AND h.version = c.version"
        " JOIN cairn_entries AS e ON e.ns = h.ns AND e.key = h.key AND e.version = h.version"
        " WHERE NOT h.deleted AND (h.expires_at IS NULL OR h.expires_at > :now)"
    ).bindparams(bindparam("now", type_=DateTime(timezone=True)))
    return Statement(sql, prepare=False)


def _live_versions(
    conn: Connection, versions: Sequence[tuple[str, str, int]], now: datetime
) -> dict[tuple[str, str, int], Any]:
    """Which of the entry versions are current and live, by ``(ns, key, version)``.

    Each maps to its row ``(ns, key, version, commit_seq, value, tags)``.
    """
    if not versions:
        return {}
    params: dict[str, Any] = {"now": now}
    for i, (ns, key, version) in enumerate(versions):
        params |= {f"n{i}": ns, f"k{i}": key, f"v{i}": version}
    rows = _live_statement(len(versions)).run(conn, params)
    return {(r[0], r[1], r[2]): r for r in rows}


def _hit(row: Sequence[Any], score: float) -> SearchHit:
    ns, key, version, seq, value, _ = row
    fields = {"namespace": decode(ns), "key": key, "kind": "entry", "version": version}
    return trusted(SearchHit, fields | {"commit_seq": seq, "score": score, "value": loads(value)})


def _checked(
    conn: Connection, found: Sequence[Candidate], keep: Check, now: datetime
) -> tuple[list[SearchHit], list[int]]:
    """The candidates still current, live and kept, as hits; and the positions of dead ones."""
    live = _live_versions(conn, [c[:3] for c in found], now)
    hits, dead = [], []
    for i, (ns, key, version, score) in enumerate(found):
        row = live.get((ns, key, version))
        if row is None:
            dead.append(i)
        elif keep(row[1], loads(row[4]), tuple(row[5].split())):
            hits.append(_hit(row, score))
    return hits, dead


def nearest(
    conn: Connection,
    index: VectorIndex,
    query: Vectors,
    prefix: Namespace,
    keep: Check,
    limit: int,
    now: datetime,
) -> list[SearchHit]:
    """The ``limit`` current entries under ``prefix`` nearest to ``query`` that ``keep`` keeps."""
    top = index.refresh(conn)
    positions, scores = index.scored(query, prefix)
    hits: list[SearchHit] = []
    start, batch = 0, max(4 * limit, 32)
    while len(hits) < limit and start < len(positions):
        # The best ``start + batch`` in order (a partial sort), of which the new ones are checked.
        best = _best(scores, start + batch)[start:]
        chunk = positions[best].tolist()
        described = [index.describe(p) for p in chunk]
        found = [(*d[:3], float(scores[b])) for d, b in zip(described, best, strict=True)]
        kept, dead = _checked(conn, found, keep, now)
        hits += kept
        # Rows newer than this read's snapshot may be live for a later one.
        index.drop([chunk[i] for i in dead if described[i][3] <= top])
        start += len(chunk)
        batch *= 4
    return hits[:limit]


async def nearest_hnsw(
    read: ReadRows,
    model: str,
    query: Vectors,
    prefix: Namespace,
    keep: Check,
    limit: int,
    now: datetime,
) -> list[SearchHit]:
    """`nearest` through pgvector's HNSW index, each try one statement that ``read`` runs."""
    hits: list[SearchHit] = []
    seen: list[tuple[str, str, int]] = []
    # The statement drops dead versions itself, so the first try asks for just ``limit``: only
    # a tag or field filter can leave it short, and then a wider one follows.
    batch = limit
    while len(hits) < limit:
        found = await read(vectors.nearest_pgvector(model, query, prefix, now, seen, batch))
        hits += [
            _hit(r[:6], float(r[6])) for r in found if keep(r[1], loads(r[4]), tuple(r[5].split()))
        ]
        seen += [(r[0], r[1], r[2]) for r in found]
        if len(found) < batch:
            break
        batch *= 4
    return hits[:limit]
