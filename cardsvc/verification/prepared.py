"""Hot-path reads on the DBAPI cursor: a Core SELECT compiled once per dialect.

SQLAlchemy's per-execution work (execution context, compiled-cache lookup, result metadata, row
objects) was ~25 % of a verification's CPU, several times what SQLite spends running the query
(measured with py-spy: docs/api.md "Performance"). :class:`PreparedRead` compiles the statement
once per dialect and then runs it on the raw DBAPI cursor of the session's own connection — the
same transaction and snapshot as every other statement of the session — with the bind and result
processors SQLAlchemy itself would apply (enums, binary, dates), so the rows hold the same values.
Rows are named tuples with the statement's column labels (attribute access as on Core rows).
:class:`PreparedWrite` does the same for an INSERT / UPDATE and returns its row count. Not for
statements with expanding (``IN``) parameters.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.base import Executable
from sqlmodel import Session

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    positional: tuple[str, ...] | None  # bind names in order (qmark/format), None for named styles
    defaults: Mapping[str, Any]  # values of the statement's own (literal) bind parameters
    binds: Mapping[str, Processor]
    results: tuple[Processor, ...]
    row: Any  # the named-tuple class


def _plan(statement: Executable, dialect: Dialect) -> _Plan:
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    binds = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
             for name, bind in ((b.key, b) for b in compiled.binds.values())}
    columns = list(statement.selected_columns) if isinstance(statement, Select) else []
    results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
    positional = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
    row = namedtuple("Row", [c.key for c in columns])  # type: ignore[misc]
    return _Plan(str(compiled), positional, dict(compiled.params), binds, results, row)


@dataclass(eq=False)
class _Prepared:
    statement: Executable
    _plans: dict[str, _Plan] = field(default_factory=dict, repr=False)

    def _run(self, session: Session, params: Mapping[str, Any], *, fetch: bool) -> tuple[_Plan, Any]:
        """``(plan, rows)`` when fetching, else ``(plan, rowcount)``."""
        connection = session.connection()
        plan = self._plans.get(connection.dialect.name)
        if plan is None:
            plan = self._plans[connection.dialect.name] = _plan(self.statement, connection.dialect)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(plan.sql, _arguments(plan, params))
            return plan, cursor.fetchall() if fetch else cursor.rowcount
        finally:
            cursor.close()


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


def _arguments(plan: _Plan, params: Mapping[str, Any]) -> Any:
    values = {name: value if (proc := plan.binds.get(name)) is None else proc(value)
              for name, value in {**plan.defaults, **params}.items()}
    if plan.positional is not None:
        return tuple(values[name] for name in plan.positional)
    return values


def _processed(processors: tuple[Processor, ...], values: Sequence[Any]) -> list[Any]:
    return [value if proc is None else proc(value) for proc, value in zip(processors, values, strict=True)]

