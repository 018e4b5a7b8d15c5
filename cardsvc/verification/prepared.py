"""Hot-path reads on the DBAPI cursor: a Core SELECT compiled once per dialect.

SQLAlchemy's per-execution work (execution context, compiled-cache lookup, result metadata, row
objects) was ~25 % of a verification's CPU, several times what SQLite spends running the query
(measured with py-spy: docs/api.md "Performance"). :class:`PreparedRead` compiles the statement
once per dialect and then runs it on the raw DBAPI cursor of the session's own connection — the
same transaction and snapshot as every other statement of the session — with the bind and result
processors SQLAlchemy itself would apply (enums, binary, dates), so the rows hold the same values.
Rows are named tuples with the statement's column labels (attribute access as on Core rows).
:class:`PreparedRead` also runs an ``UPDATE … RETURNING``. :class:`PreparedWrite` does the same for
an INSERT / UPDATE and returns its row count, or runs one statement for many rows (executemany).
Not for statements with expanding (``IN``) parameters. The session's DBAPI connection is looked up
once per transaction (``Session.connection()`` alone cost ~4 µs a call).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql.base import Executable
from sqlmodel import Session

Processor = Callable[[Any], Any] | None
_DBAPI = "cardsvc.prepared.dbapi"  # session.info: (transaction, dialect, DBAPI connection)


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    positional: bool  # qmark/format: a tuple of values; else a dict by name
    binds: tuple[tuple[str, Processor], ...]  # in the statement's order (a name may repeat) when positional
    defaults: Mapping[str, Any]  # values of the statement's own (literal) bind parameters
    results: tuple[Processor, ...]
    row: Any  # the named-tuple class


def _plan(statement: Executable, dialect: Dialect) -> _Plan:
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    processors = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                  for name, bind in compiled.binds.items()}
    positional = bool(compiled.positional and compiled.positiontup)
    names = compiled.positiontup if positional else list(compiled.params)
    columns = list(getattr(statement, "exported_columns", ()))  # SELECT columns or RETURNING
    results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
    row = namedtuple("Row", [c.key for c in columns])  # type: ignore[misc]
    return _Plan(str(compiled), positional, tuple((name, processors.get(name)) for name in names),
                 dict(compiled.params), results, row)


@dataclass(eq=False)
class _Prepared:
    statement: Executable
    _plans: dict[str, _Plan] = field(default_factory=dict, repr=False)

    def _run(self, session: Session, params: Mapping[str, Any], *, fetch: bool) -> tuple[_Plan, Any]:
        """``(plan, rows)`` when fetching, else ``(plan, rowcount)``."""
        plan, cursor = self._cursor(session)
        try:
            cursor.execute(plan.sql, _arguments(plan, params))
            return plan, cursor.fetchall() if fetch else cursor.rowcount
        finally:
            cursor.close()

    def _cursor(self, session: Session) -> tuple[_Plan, Any]:
        dialect, dbapi_connection = _dbapi(session)
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _plan(self.statement, dialect)
        return plan, dbapi_connection.cursor()


class PreparedRead(_Prepared):
    """One SELECT, compiled once per dialect, run on the session connection's DBAPI cursor."""

    def all(self, session: Session, **params: Any) -> list[Any]:
        plan, fetched = self._run(session, params, fetch=True)
        rows: Sequence[Sequence[Any]] = fetched
        return [plan.row(*_processed(plan.results, values)) for values in rows]

    def first(self, session: Session, **params: Any) -> Any:
        rows = self.all(session, **params)
        return rows[0] if rows else None


class PreparedWrite(_Prepared):
    """One INSERT / UPDATE, compiled once per dialect, run on the session connection's DBAPI cursor
    (inside the session's transaction, committed with it)."""

    def execute(self, session: Session, **params: Any) -> int:
        """Run it; the number of rows it changed."""
        _, count = self._run(session, params, fetch=False)
        return int(count)

    def execute_many(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run it once per row of parameters, in one DBAPI ``executemany``."""
        plan, cursor = self._cursor(session)
        try:
            cursor.executemany(plan.sql, [_arguments(plan, row) for row in rows])
        finally:
            cursor.close()


def _dbapi(session: Session) -> tuple[Dialect, Any]:
    """The dialect and DBAPI connection of the session's current transaction (begun if need be)."""
    cached = session.info.get(_DBAPI)
    if cached is not None and cached[0] is session.get_transaction():
        return cached[1], cached[2]
    connection = session.connection()
    dbapi_connection = connection.connection.dbapi_connection
    session.info[_DBAPI] = (session.get_transaction(), connection.dialect, dbapi_connection)
    return connection.dialect, dbapi_connection


def _arguments(plan: _Plan, params: Mapping[str, Any]) -> Any:
    values = []
    for name, proc in plan.binds:
        value = params[name] if name in params else plan.defaults[name]
        values.append(value if proc is None else proc(value))
    if plan.positional:
        return tuple(values)
    return {name: value for (name, _), value in zip(plan.binds, values, strict=True)}


def _processed(processors: tuple[Processor, ...], values: Sequence[Any]) -> list[Any]:
    return [value if proc is None else proc(value) for proc, value in zip(processors, values, strict=True)]

