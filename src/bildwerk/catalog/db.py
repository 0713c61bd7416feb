"""Opening the catalog: any SQLAlchemy URL, SQLite by default, migrated to head on open."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bildwerk.errors import WorkspaceError

MIGRATIONS = Path(__file__).with_name("migrations")


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, full fsync and enforced foreign keys."""
    try:
        engine = create_engine(url, future=True)
    except (ArgumentError, ImportError) as exc:
        raise WorkspaceError(
            f"cannot use catalog URL '{url}': {exc}",
            hint="use a SQLAlchemy URL such as sqlite:///catalog.db or "
            "postgresql+psycopg://user@host/db (pip install 'bildwerk[postgres]')",
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when already there)."""
    cfg = _alembic_config()
    try:
        with engine.begin() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            head = ScriptDirectory.from_config(cfg).get_current_head()
            if current == head:
                return
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except OperationalError as exc:
        raise WorkspaceError(
            f"cannot open the catalog at {engine.url.render_as_string(hide_password=True)}: "
            f"{exc.orig}",
            hint="check catalog.url in bildwerk.yaml and that the database is reachable",
        ) from None


class Database:
    """An engine plus a session factory; ``session()`` commits or rolls back as a unit."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def close(self) -> None:
        self.engine.dispose()
