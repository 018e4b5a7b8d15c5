"""Console helpers shared by the command modules: rich consoles, ``--json`` output, tables."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def emit_json(data: Any) -> None:
    """Print JSON (UTF-8, Chinese kept readable) for ``--json``."""
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def emit_table(title: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    console.print(table)
