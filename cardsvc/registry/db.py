"""Engine and session factory, and the programmatic Alembic upgrade.

SQLite (default): every connection gets WAL, ``synchronous=FULL``, ``foreign_keys=ON`` and a busy
timeout. PostgreSQL: psycopg 3 (``postgresql+psycopg://``; plain ``postgresql://`` is rewritten).
Nothing is created at import time: callers build the engine from settings and pass it down.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from cardsvc.config import Settings
from cardsvc.errors import ConfigError, RegistryError
from cardsvc.logging import get_logger

log = get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
SessionFactory = Callable[[], Session]


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever scheme the operator wrote."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with cardsvc's per-connection settings."""
    url = normalise_url(url)
    try:
        backend = make_url(url).get_backend_name()
    except SQLAlchemyError as exc:
        raise ConfigError(f"database URL not understood: {exc.__class__.__name__}") from exc
    if backend == "sqlite":
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    raise ConfigError(f"unsupported database backend {backend!r}", hint="use sqlite or postgresql")


def engine_for(settings: Settings) -> Engine:
    """The engine for the configured database (``CARDSVC_DATABASE_URL`` or SQLite in the data dir)."""
    url = settings.effective_database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return make_engine(url)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # secure_delete: erased members' bytes are zeroed, not left in free page space (on by default
    # only in some builds, e.g. Debian's; off in python.org's Windows and macOS builds).
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "secure_delete=ON",
                   f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def session_factory(engine: Engine) -> SessionFactory:
    """Sessions that keep loaded objects usable after commit (services return them)."""

    def make() -> Session:
        return Session(engine, expire_on_commit=False)

    return make


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest migration shipped with this code."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise RegistryError("no migrations found in the package")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> str:
    """Bring the schema to the newest revision in one transaction; returns that revision."""
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    revision = current_revision(engine)
    log.info("database schema at %s", revision)
    return revision or ""


def require_head(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not at the code's head."""
    have, want = current_revision(engine), head_revision()
    if have != want:
        raise ConfigError(f"database schema is at {have or 'nothing'}, code needs {want}",
                          hint="run `cardsvc init` to bring the schema up to date")
