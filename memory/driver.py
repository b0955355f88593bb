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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

T = TypeVar("T")
Rows = list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Compiled:
    """One statement compiled for one dialect, with its conversions."""

    sql: str
    names: tuple[str, ...]
    positional: bool
    defaults: Mapping[str, Any]
    binds: tuple[tuple[str, Callable[[Any], Any]], ...]
    results: tuple[tuple[int, Callable[[Any], Any]], ...]

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters (a tuple or a dict) for ``values``, converted."""
        if self.defaults:
            values = {**self.defaults, **values}
        if self.binds:
            values = dict(values)
            for name, convert in self.binds:
                value = values[name]
                if value is not None:
                    values[name] = convert(value)
        if self.positional:
            return tuple(values[name] for name in self.names)
        return values

    def rows(self, fetched: Sequence[Sequence[Any]]) -> Rows:
        """The fetched rows with their columns converted (SQLite times, booleans)."""
        if not self.results:
            return [tuple(row) for row in fetched]
        converted = []
        for row in fetched:
            cells = list(row)
            for i, convert in self.results:
                if cells[i] is not None:
                    cells[i] = convert(cells[i])
            converted.append(tuple(cells))
        return converted


class Statement:
    """A SQLAlchemy statement (or one per dialect) run on the DB-API connection.

    ``keys`` names the columns an INSERT or UPDATE sets (SQLAlchemy compiles those statements
    for the columns given); every parameter must be passed on each run, Python-side column
    defaults are not applied.
    """

    def __init__(
        self,
        stmt: ClauseElement | Mapping[str, ClauseElement],
        *,
        keys: Sequence[str] | None = None,
    ) -> None:
        self._stmts = stmt if isinstance(stmt, Mapping) else None
        self._stmt = None if isinstance(stmt, Mapping) else stmt
        self._keys = list(keys) if keys is not None else None
        self._compiled: dict[str, Compiled] = {}

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
        names = tuple(compiled.positiontup or ()) if compiled.positional else ()
        defaults: dict[str, Any] = {}
        binds = []
        for name, bind in compiled.binds.items():
            if bind.value is not None or bind.callable is not None:
                defaults[name] = bind.effective_value
            convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if convert is not None:
                binds.append((name, convert))
        results = []
        for i, column in enumerate(getattr(stmt, "exported_columns", ())):
            convert = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if convert is not None:
                results.append((i, convert))
        return Compiled(
            compiled.string, names, compiled.positional, defaults, tuple(binds), tuple(results)
        )

    def run(self, conn: Connection, values: Mapping[str, Any]) -> Rows:
        """Run on ``conn``'s driver connection, in whatever transaction ``conn`` is in."""
        compiled = self.compiled(conn.dialect)
        driver: Any = conn.connection.driver_connection
        try:
            cursor = driver.execute(compiled.sql, compiled.parameters(values))
            fetched = cursor.fetchall() if cursor.description is not None else []
        except conn.dialect.loaded_dbapi.Error as error:
            raise _translated(conn, compiled, error) from error
        return compiled.rows(fetched)

    def scalar(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        """The first column of the first row, or None."""
        rows = self.run(conn, values)
        return rows[0][0] if rows else None

    async def run_async(self, conn: Any, dialect: Dialect, values: Mapping[str, Any]) -> Rows:
        """Run on a psycopg ``AsyncConnection`` (in autocommit: one statement, one snapshot)."""
        compiled = self.compiled(dialect)
        cursor = await conn.execute(compiled.sql, compiled.parameters(values))
        return compiled.rows(await cursor.fetchall())


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
        conn.engine.pool._invalidate(wrapper, error)
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


@dataclass(frozen=True, slots=True)
class Read(Generic[T]):
    """One bounded read: a statement, its parameters, and what its rows become."""

    statement: Statement
    values: Mapping[str, Any]
    build: Callable[[Rows], T]

    def __call__(self, conn: Connection) -> T:
        """Run it on a SQLAlchemy connection (the worker-thread path)."""
        return self.build(self.statement.run(conn, self.values))
