"""Keyword search: what text of a value is indexed, and the per-dialect index and query.

SQLite uses an FTS5 table beside ``cairn_search_docs``; PostgreSQL a generated ``tsvector``
column with a GIN index. Both rank by relevance (bm25 / ts_rank) over a capped candidate set
of the newest matches, and drop English stop words from the query, so a very common term
costs about as much as a rare one. Equal scores rank by namespace and key.

SQLite's bm25 weighs a word by how rare it is across the whole index, every namespace and
tenant included, so writes elsewhere can reorder hits of near-equal score; PostgreSQL's
ts_rank looks at each document alone. Where a fixed answer matters (tests, the demo), search
for every match and order the hits yourself.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import JsonValue
from sqlalchemy import Connection, DateTime, bindparam, text

from memory.driver import Statement
from memory.namespace import prefix_bounds

MAX_BODY = 32_768
CANDIDATES = 1_000
MAX_TERMS = 32

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves
    out over own same she should so some such than that the their theirs them themselves then
    there these they this those through to too under until up very was we were what when where
    which while who whom why will with you your yours yourself yourselves""".split()  # noqa: SIM905
)


def body_of(key: str, value: JsonValue) -> str:
    """The indexed text of a value: its key and every string and number in it, in order."""
    parts: list[str] = [key]

    def walk(v: JsonValue) -> None:
        if isinstance(v, str):
            parts.append(v)
        elif isinstance(v, bool) or v is None:
            return
        elif isinstance(v, (int, float)):
            parts.append(str(v))
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(value)
    # PostgreSQL text cannot hold NUL.
    return " ".join(parts)[:MAX_BODY].replace("\x00", " ")


def query_terms(query: str) -> list[str]:
    """Lower-cased words of a query, stop words and duplicates removed, at most `MAX_TERMS`."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if word not in STOP_WORDS and len(word) <= 64:
            seen.setdefault(word)
    return list(seen)[:MAX_TERMS]


def _token(kind: str, value: str) -> str:
    return kind + hashlib.blake2b(value.encode(), digest_size=8).hexdigest()


@functools.lru_cache(maxsize=4096)
def scope_tokens(ns: str) -> str:
    """FTS tokens for every prefix of a stored namespace (SQLite only)."""
    segments = ns.split("/")
    return " ".join(_token("s", "/".join(segments[:i])) for i in range(1, len(segments) + 1))


def tag_tokens(tags: Iterable[str]) -> str:
    """FTS tokens for tags (SQLite only)."""
    return " ".join(_token("t", t) for t in tags)


_INDEX_FTS = Statement(
    text(
        "INSERT OR REPLACE INTO cairn_search_fts(rowid, body, scope, tags) "
        "VALUES (:id, :body, :scope, :tags)"
    )
)


def index_doc(conn: Connection, doc_id: int, ns: str, tags: Sequence[str], body: str) -> None:
    """Add or replace a search doc's full-text row (SQLite; PostgreSQL's column is generated)."""
    if conn.dialect.name == "sqlite":
        fts = {"id": doc_id, "body": body, "scope": scope_tokens(ns), "tags": tag_tokens(tags)}
        _INDEX_FTS.run(conn, fts)


def unindex_docs(conn: Connection, doc_ids: Sequence[int]) -> None:
    """Remove full-text rows of deleted search docs (SQLite)."""
    if conn.dialect.name == "sqlite" and doc_ids:
        for start in range(0, len(doc_ids), 500):
            chunk = doc_ids[start : start + 500]
            marks = ",".join(str(int(i)) for i in chunk)
            conn.exec_driver_sql(f"DELETE FROM cairn_search_fts WHERE rowid IN ({marks})")


def purge_deleted_terms(conn: Connection) -> None:
    """Rewrite the SQLite full-text index so no trace of deleted rows' words is left in it.

    FTS5 deletes only add delete markers; the words themselves stay readable in its segment
    table until the segments are merged. `forget` must leave nothing, so it merges them all.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("INSERT INTO cairn_search_fts(cairn_search_fts) VALUES ('optimize')")


def _joins(binary: str) -> str:
    """The value of the matched version (entry or stream item), its expiry, and the order.

    Equal scores are common (same words, same length) and break by namespace, key and newest
    version, compared byte-wise (``binary`` is the dialect's byte-order collation): the same
    data ranks the same way in any database and on both backends, however and whenever it was
    written (a doc id would rank by write order, which concurrent steps make vary).
    """
    return (
        ") AS c JOIN cairn_search_docs AS d ON d.id = c.id"
        " LEFT JOIN cairn_entries AS e ON d.kind = 'entry' AND e.ns = d.ns AND e.key = d.key"
        "   AND e.version = d.version"
        " LEFT JOIN cairn_stream_items AS s ON d.kind = 'stream' AND s.ns = d.ns"
        "   AND s.stream = d.key AND s.seq = d.version"
        " WHERE e.expires_at IS NULL OR e.expires_at > :now"
        f" ORDER BY c.score DESC, d.ns COLLATE {binary}, d.key COLLATE {binary},"
        " d.kind, d.version DESC LIMIT :limit"
    )


_COLS = "SELECT d.ns, d.key, d.kind, d.version, d.commit_seq, c.score, COALESCE(e.value, s.item)"
# Typed so SQLite compares it in the same text form the DateTime columns are stored in.
_NOW = bindparam("now", type_=DateTime(timezone=True))
# bm25 is lower-is-better and negative; negate it to report higher-is-better.
_SQLITE_SEARCH = Statement(
    text(
        f"{_COLS} FROM ("
        "  SELECT rowid AS id, -bm25(cairn_search_fts, 1.0, 0.0, 0.0) AS score"
        "  FROM cairn_search_fts WHERE cairn_search_fts MATCH :match"
        "  ORDER BY rowid DESC LIMIT :cap" + _joins("BINARY")
    ).bindparams(_NOW)
)
# Never prepared on the server. psycopg prepares a statement after its fifth run, and
# PostgreSQL then soon plans it once for any parameters. The search's best plan depends on its
# terms (a common term wants the newest-first scan, a rare one the GIN index); the generic
# plan was 4-10x slower over 100k docs. Unprepared, every search gets a custom plan for its own
# terms, at no extra round trip (unlike ``SET LOCAL plan_cache_mode``, which needs a
# transaction).
_POSTGRES_SEARCH = Statement(
    text(
        f"{_COLS} FROM ("
        "  SELECT id, ts_rank(tsv, to_tsquery('english', :tsq)) AS score"
        "  FROM cairn_search_docs"
        "  WHERE tsv @@ to_tsquery('english', :tsq)"
        "    AND (ns = :exact OR (ns >= :low AND ns < :high))"
        "    AND (CAST(:tags AS text[]) = '{}' OR tag_list @> CAST(:tags AS text[]))"
        "  ORDER BY id DESC LIMIT :cap" + _joins('"C"')
    ).bindparams(_NOW),
    prepare=False,
)


def search_rows(
    conn: Connection,
    prefix: tuple[str, ...],
    terms: Sequence[str],
    tags: Sequence[str],
    limit: int,
    now: datetime,
) -> list[Any]:
    """Rows ``(ns, key, kind, version, commit_seq, score, value_json)``, best first.

    Entries past their expiry are left out.
    """
    if not terms:
        return []
    exact, low, high = prefix_bounds(prefix)
    params: dict[str, Any] = {"cap": CANDIDATES, "limit": limit, "now": now}
    if conn.dialect.name == "sqlite":
        words = " OR ".join(f'"{t}"' for t in terms)
        match = f'scope : "{_token("s", exact)}" AND body : ({words})'
        for t in tags:
            match += f' AND tags : "{_token("t", t)}"'
        return _SQLITE_SEARCH.run(conn, {**params, "match": match})
    params |= {"tsq": " | ".join(terms), "exact": exact, "low": low, "high": high}
    return _POSTGRES_SEARCH.run(conn, {**params, "tags": list(tags)})
