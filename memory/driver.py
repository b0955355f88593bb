"""Prebuilt statements run on the driver's own connection: the hot paths' way past SQLAlchemy.

SQLAlchemy Core builds every hot statement once, at import, and compiles it once per dialect.
Running a compiled statement through SQLAlchemy still costs 20-40 us of Python per call
(execution context, parameter and row processing), which is more than the statement itself on
SQLite and several times a point read. A `Statement` keeps what SQLAlchemy compiled (the SQL
text, the parameter order, the type conversions of parameters and result columns) and runs it on
the DB-API cursor, in a transaction SQLAlchemy opened (`run`) or on a psycopg async connection
(`run_async`). Driver errors come out as SQLAlchemy's, as if SQLAlchemy had run the statement,
so `memory.runner` handles both paths alike.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, DateTime, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

T = TypeVar("T")
Rows = list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Compiled:
    """One statement compiled for one dialect, with its conversions.

    ``pick`` takes the parameters from a mapping in the driver's order (positional drivers);
    ``binds`` converts some of them (by position, or by name for named ones); ``results``
    converts result columns by position.
    """

    sql: str
    pick: Callable[[Mapping[str, Any]], tuple[Any, ...]] | None
    defaults: Mapping[str, Any]
    binds: tuple[tuple[Any, Callable[[Any], Any]], ...]
    results: tuple[tuple[int, Callable[[Any], Any]], ...]

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters (a sequence or a dict) for ``values``, converted."""
        if self.defaults:
            values = {**self.defaults, **values}
        params: Any = values if self.pick is None else self.pick(values)
        if self.binds:
            params = dict(params) if self.pick is None else list(params)
            for at, convert in self.binds:
                if params[at] is not None:
                    params[at] = convert(params[at])
        return params

    def rows(self, fetched: list[Any]) -> Rows:
        """The fetched rows (tuples) with their columns converted (SQLite times, booleans)."""
        if not self.results:
            return fetched
        converted = []
        for row in fetched:
            cells = list(row)
            for i, convert in self.results:
                if cells[i] is not None:
                    cells[i] = convert(cells[i])
            converted.append(tuple(cells))
        return converted


def _picker(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function taking ``names``' values from a mapping, as a tuple (``itemgetter`` in C)."""
    if len(names) > 1:
        return operator.itemgetter(*names)
    if names:
        name = names[0]
        return lambda values: (values[name],)
    return lambda values: ()


class Statement:
    """A SQLAlchemy statement (or one per dialect) run on the DB-API connection.

    ``keys`` names the columns an INSERT or UPDATE sets (SQLAlchemy compiles those statements
    for the columns given); every parameter must be passed on each run, Python-side column
    defaults are not applied. ``prepare=False`` keeps psycopg from preparing it on the server.
    """

    def __init__(
        self,
        stmt: ClauseElement | Mapping[str, ClauseElement],
        *,
        keys: Sequence[str] | None = None,
        prepare: bool | None = None,
    ) -> None:
        self._stmts = stmt if isinstance(stmt, Mapping) else None
        self._stmt = None if isinstance(stmt, Mapping) else stmt
        self._keys = list(keys) if keys is not None else None
        self._compiled: dict[str, Compiled] = {}
        # psycopg only: None lets it prepare a statement on its fifth run, False never.
        self._options = {} if prepare is None else {"prepare": prepare}

    def compiled(self, dialect: Dialect) -> Compiled:
        """This statement compiled for ``dialect`` (once)."""
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = self._compile(dialect)
        return compiled

    def _compile(self, dialect: Dialect) -> Compiled:
        stmt = self._stmts[dialect.name] if self._stmts is not None else self._stmt
        assert stmt is not None
        kwargs: dict[str, Any] = {} if self._keys is None else {"column_keys": self._keys}
        compiled: Any = stmt.compile(dialect=dialect, **kwargs)
        if "POSTCOMPILE" in compiled.string:
            raise TypeError(f"statement needs SQLAlchemy's post-compile step: {compiled.string}")
        names = tuple(compiled.positiontup or ()) if compiled.positional else None
        defaults: dict[str, Any] = {}
        binds: list[tuple[Any, Callable[[Any], Any]]] = []
        for name, bind in compiled.binds.items():
            if bind.value is not None or bind.callable is not None:
                defaults[name] = bind.effective_value
            convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if convert is None:
                continue
            if names is None:
                binds.append((name, convert))
            else:
                binds += [(i, convert) for i, n in enumerate(names) if n == name]
        results = []
        for i, column in enumerate(getattr(stmt, "exported_columns", ())):
            convert = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if dialect.name == "sqlite" and isinstance(column.type, DateTime):
                convert = _sqlite_utc
            if convert is not None:
                results.append((i, convert))
        pick = None if names is None else _picker(names)
        return Compiled(compiled.string, pick, defaults, tuple(binds), tuple(results))

    def run(self, conn: Connection, values: Mapping[str, Any]) -> Rows:
        """Run on ``conn``'s driver connection, in whatever transaction ``conn`` is in."""
        dialect = conn.dialect
        try:
            return self.fetch(conn.connection.driver_connection, dialect, values)
        except dialect.loaded_dbapi.Error as error:
            raise _translated(conn, self.compiled(dialect), error) from error

    def fetch(self, driver: Any, dialect: Dialect, values: Mapping[str, Any]) -> Rows:
        """Run on a DB-API connection of ``dialect``; driver errors propagate as they are."""
        compiled = self.compiled(dialect)
        options = self._options if dialect.name == "postgresql" else {}
        cursor = driver.execute(compiled.sql, compiled.parameters(values), **options)
        return compiled.rows(cursor.fetchall() if cursor.description is not None else [])

    def scalar(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None."""
        rows = self.run(conn, values)
        return rows[0][0] if rows else None

    async def run_async(self, conn: Any, dialect: Dialect, values: Mapping[str, Any]) -> Rows:
        """Run on a psycopg ``AsyncConnection`` (in autocommit: one statement, one snapshot)."""
        compiled = self.compiled(dialect)
        cursor = await conn.execute(compiled.sql, compiled.parameters(values), **self._options)
        return compiled.rows(await cursor.fetchall())


def _sqlite_utc(text: str) -> datetime:
    """A time as SQLAlchemy stores it on SQLite (naive UTC text), as an aware UTC datetime.

    Parsed straight to UTC: SQLAlchemy's parser and then ``replace(tzinfo=UTC)`` cost 1.1 us
    per value, this 0.2 us (a point read takes about 22 us in all).
    """
    return datetime.fromisoformat(text + "+00:00")


def _translated(conn: Connection, compiled: Compiled, error: Any) -> exc.DBAPIError:
    """``error`` as SQLAlchemy would have raised it, invalidating the pool on a disconnect.

    As SQLAlchemy does, a dropped connection invalidates every pooled connection older than
    now (the server most likely restarted), so a rerun gets a fresh one.
    """
    dialect = conn.dialect
    wrapper = conn.connection
    disconnect = dialect.is_disconnect(error, wrapper.dbapi_connection, None)
    if disconnect:
        # What `Connection._handle_dbapi_exception` does; the pool has no public spelling.
        conn.engine.pool._invalidate(wrapper, error)  # noqa: SLF001, RUF100
        conn.invalidate(error)
    translated = exc.DBAPIError.instance(
        compiled.sql,
        None,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=disconnect,
        dialect=dialect,
    )
    assert isinstance(translated, exc.DBAPIError)
    return translated


class Read(Generic[T]):
    """One bounded read: a statement, its parameters, and what its rows become."""

    __slots__ = ("build", "statement", "values")

    def __init__(
        self, statement: Statement, values: Mapping[str, Any], build: Callable[[Rows], T]
    ) -> None:
        self.statement = statement
        self.values = values
        self.build = build

    def __call__(self, conn: Connection) -> T:
        """Run it on a SQLAlchemy connection (the worker-thread path)."""
        return self.build(self.statement.run(conn, self.values))
