"""Alembic environment, run programmatically by :func:`cardsvc.registry.db.upgrade_to_head`.

The caller passes an open SQLAlchemy connection in ``config.attributes["connection"]``; there is no
``alembic.ini`` and no URL here. Offline (``--sql``) mode is not supported.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from cardsvc.registry import models  # noqa: F401 - registers the tables on the metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("cardsvc migrations run through cardsvc.registry.db.upgrade_to_head only")
_run(connection)
