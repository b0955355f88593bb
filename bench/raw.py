"""The raw-driver baseline: hand-written SQL on plain ``sqlite3`` and ``psycopg`` (synchronous).

Same tables (created by Cairn's migrations), same statements and the same transaction shape as
`MemoryStore` for the work itself: a commit is one write transaction (``BEGIN IMMEDIATE`` on
SQLite) that claims the commit row, bumps the head with ``RETURNING``, inserts the version and
upserts the search doc (plus its FTS row on SQLite). Reads are single statements on an
autocommit connection, which is what a hand-written client would do. Values are decoded with
`json.loads`; nothing else is built. On PostgreSQL the search runs unprepared (a custom plan
each time): with psycopg's default auto-prepare the server switches it to a generic plan after
five runs, which is 4-10x slower for this statement (see bench/README.md).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bench.databases import Database
from bench.seed import SQLITE_TIME, dumps
from memory.namespace import Namespace, encode, prefix_bounds
from memory.search import CANDIDATES, query_terms, scope_tokens

_ENTRY_COLS = (
    "e.ns, e.key, e.value, e.version, e.commit_seq, e.created_at, e.tags, e.expires_at, "
    "e.deleted, c.tenant, c.workflow_id, c.run_id, c.activity_id, c.attempt, c.agent, c.trace_id"
)
CLAIM = (
    'INSERT INTO cairn_commits ("key", tenant, workflow_id, run_id, activity_id, attempt, agent, '
    "trace_id, created_at, result, forgotten) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'null', ?) "
    'ON CONFLICT ("key") DO NOTHING RETURNING seq'
)
BUMP_HEAD = (
    'INSERT INTO cairn_heads (ns, "key", version, commit_seq, deleted, expires_at) '
    'VALUES (?, ?, 1, ?, ?, NULL) ON CONFLICT (ns, "key") DO UPDATE SET '
    "version = cairn_heads.version + 1, commit_seq = excluded.commit_seq, "
    "deleted = excluded.deleted, expires_at = excluded.expires_at RETURNING version"
)
INSERT_VERSION = (
    'INSERT INTO cairn_entries (ns, "key", version, commit_seq, value, tags, expires_at, '
    "deleted, created_at) VALUES (?, ?, ?, ?, ?, '', NULL, ?, ?)"
)
UPDATE_DOC = (
    "UPDATE cairn_search_docs SET version = ?, commit_seq = ?, tags = '', body = ? "
    "WHERE kind = 'entry' AND ns = ? AND \"key\" = ? RETURNING id"
)
INSERT_DOC = (
    'INSERT INTO cairn_search_docs (ns, "key", kind, version, commit_seq, tags, body) '
    "VALUES (?, ?, 'entry', ?, ?, '', ?) RETURNING id"
)
FTS_ROW = "INSERT OR REPLACE INTO cairn_search_fts(rowid, body, scope, tags) VALUES (?, ?, ?, '')"
GET = (
    f"SELECT {_ENTRY_COLS} FROM cairn_entries AS e "
    "LEFT JOIN cairn_commits AS c ON c.seq = e.commit_seq "
    'JOIN cairn_heads AS h ON h.ns = e.ns AND h."key" = e."key" AND h.version = e.version '
    'WHERE h.ns = ? AND h."key" = ?'
)
HISTORY = (
    f"SELECT {_ENTRY_COLS} FROM cairn_entries AS e "
    "LEFT JOIN cairn_commits AS c ON c.seq = e.commit_seq "
    'WHERE e.ns = ? AND e."key" = ? AND (e.expires_at IS NULL OR e.expires_at > ?) '
    "ORDER BY e.version LIMIT ?"
)
TAIL = (
    "SELECT id, ns, stream, seq, commit_seq, item, created_at FROM cairn_stream_items "
    "WHERE ns = ? AND stream = ? AND seq >= 1 ORDER BY seq DESC LIMIT ?"
)
_SEARCH_TAIL = (
    ") AS c JOIN cairn_search_docs AS d ON d.id = c.id "
    "LEFT JOIN cairn_entries AS e ON d.kind = 'entry' AND e.ns = d.ns AND e.key = d.key "
    "AND e.version = d.version "
    "LEFT JOIN cairn_stream_items AS s ON d.kind = 'stream' AND s.ns = d.ns "
    "AND s.stream = d.key AND s.seq = d.version "
    "WHERE e.expires_at IS NULL OR e.expires_at > ? ORDER BY c.score DESC, d.id DESC LIMIT ?"
)
_SEARCH_COLS = (
    "SELECT d.ns, d.key, d.kind, d.version, d.commit_seq, c.score, COALESCE(e.value, s.item)"
)
SEARCH_SQLITE = (
    f"{_SEARCH_COLS} FROM (SELECT rowid AS id, -bm25(cairn_search_fts, 1.0, 0.0, 0.0) AS score "
    "FROM cairn_search_fts WHERE cairn_search_fts MATCH ? ORDER BY rowid DESC LIMIT ?"
    f"{_SEARCH_TAIL}"
)
SEARCH_POSTGRES = (
    f"{_SEARCH_COLS} FROM (SELECT id, ts_rank(tsv, to_tsquery('english', ?)) AS score "
    "FROM cairn_search_docs WHERE tsv @@ to_tsquery('english', ?) "
    "AND (ns = ? OR (ns >= ? AND ns < ?)) "
    "AND (CAST(? AS text[]) = '{}' OR tag_list @> CAST(? AS text[])) ORDER BY id DESC LIMIT ?"
    f"{_SEARCH_TAIL}"
)


class RawStore:
    """One raw connection to a benchmark database, with Cairn's operations in plain SQL."""

    def __init__(self, db: Database) -> None:
        self.sqlite = db.backend == "sqlite"
        self.conn: Any = db.sqlite() if self.sqlite else db.postgres()

    def _sql(self, sql: str) -> str:
        return sql if self.sqlite else sql.replace("?", "%s")

    def close(self) -> None:
        self.conn.close()

    def _now(self) -> Any:
        now = datetime.now(UTC)
        return now.strftime(SQLITE_TIME) if self.sqlite else now

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self.conn.execute(self._sql(sql), params).fetchone()

    def _all(self, sql: str, params: tuple[Any, ...], *, custom_plan: bool = False) -> list[Any]:
        if custom_plan and not self.sqlite:
            # Never a server-side prepared statement: PostgreSQL would switch it to a generic
            # plan after five runs, and the search's best plan depends on its terms.
            return list(self.conn.execute(self._sql(sql), params, prepare=False).fetchall())
        return list(self.conn.execute(self._sql(sql), params).fetchall())

    def commit(self, commit_key: str, namespace: Namespace, key: str, value: dict[str, Any]) -> int:
        """Write one version of one key in one transaction; return its version."""
        ns, text, now = encode(namespace), dumps(value), self._now()
        body = f"{key} {value['text']} {value['n']}"
        false: Any = 0 if self.sqlite else False
        if self.sqlite:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                version = self._write(commit_key, ns, key, text, body, now, false)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            return version
        with self.conn.transaction():
            return self._write(commit_key, ns, key, text, body, now, false)

    def _write(
        self, commit_key: str, ns: str, key: str, text: str, body: str, now: Any, false: Any
    ) -> int:
        claim = (commit_key, "t0", None, None, None, None, "raw", None, now, false)
        seq = self._one(CLAIM, claim)[0]
        version = self._one(BUMP_HEAD, (ns, key, seq, false))[0]
        self.conn.execute(self._sql(INSERT_VERSION), (ns, key, version, seq, text, false, now))
        doc = self._one(UPDATE_DOC, (version, seq, body, ns, key))
        if doc is None:
            doc = self._one(INSERT_DOC, (ns, key, version, seq, body))
        if self.sqlite:
            self.conn.execute(FTS_ROW, (doc[0], body, scope_tokens(ns)))
        return int(version)

    def get(self, namespace: Namespace, key: str) -> Any:
        row = self._one(GET, (encode(namespace), key))
        if row is None or row[8]:
            raise KeyError(key)
        return json.loads(row[2])

    def history(self, namespace: Namespace, key: str, limit: int) -> list[Any]:
        rows = self._all(HISTORY, (encode(namespace), key, self._now(), limit))
        return [json.loads(r[2]) for r in rows]

    def tail(self, namespace: Namespace, stream: str, n: int) -> list[Any]:
        rows = self._all(TAIL, (encode(namespace), stream, n))
        return [json.loads(r[5]) for r in reversed(rows)]

    def search(self, prefix: Namespace, text: str, limit: int) -> list[Any]:
        terms = query_terms(text)
        exact, low, high = prefix_bounds(prefix)
        if self.sqlite:
            words = " OR ".join(f'"{t}"' for t in terms)
            # The last scope token is the prefix's own (Cairn's hashed FTS token format).
            match = f'scope : "{scope_tokens(exact).split()[-1]}" AND body : ({words})'
            params: tuple[Any, ...] = (match, CANDIDATES, self._now(), limit)
            rows = self._all(SEARCH_SQLITE, params)
        else:
            tsq = " | ".join(terms)
            params = (tsq, tsq, exact, low, high, [], [], CANDIDATES, self._now(), limit)
            rows = self._all(SEARCH_POSTGRES, params, custom_plan=True)
        return [json.loads(r[6]) for r in rows]
