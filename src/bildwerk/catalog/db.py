"""Opening the catalog: any SQLAlchemy URL, SQLite by default.

Migrations run in two places only: when the catalog is created (an empty database is
brought to head, under a lock so two processes creating it at once do not collide) and
through ``bildwerk db upgrade``. Opening an existing catalog costs one query (its Alembic
revision); a catalog behind or ahead of the code is refused with what to do, instead of
being changed behind the user's back while other processes use it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import ArgumentError, DatabaseError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bildwerk.errors import DiskFullError, WorkspaceError, as_disk_full

MIGRATIONS = Path(__file__).with_name("migrations")
UPGRADE_HINT = "run 'bildwerk db upgrade' (back up the catalog first; see 'bildwerk db status')"
# pg_advisory_xact_lock key shared by every process creating or upgrading a catalog
_PG_LOCK_KEY = int.from_bytes(b"bildwerk", "big")
# connection execution option naming how a SQLite transaction begins
_BEGIN = "bildwerk_sqlite_begin"


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_alembic_config())


def head_revision() -> str:
    """The newest migration this code knows."""
    head = _scripts().get_current_head()
    assert head is not None, "the catalog has no migrations"
    return head


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # busy_timeout first. WAL is a property of the file: set once, by whoever opens it
    # first; switching needs an exclusive lock SQLite does not always wait for, so a
    # process that finds another one creating the catalog retries for a while.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=30000")
    deadline = time.monotonic() + 30
    while str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        try:
            cur.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
    # pysqlite's own transaction handling is replaced by explicit BEGINs (_sqlite_begin)
    dbapi_conn.isolation_level = None


def _sqlite_begin(conn: Connection) -> None:
    """Units of work begin IMMEDIATE: they take SQLite's write lock up front, waiting for
    it under busy_timeout. A DEFERRED transaction that reads and then writes is refused
    at once with SQLITE_BUSY ("database is locked", no waiting) when another process
    committed in between, because its WAL snapshot is stale; retrying the whole unit of
    work would need every caller written as a retryable function. Readers that never
    write ask for DEFERRED (``Database.session(write=False)``) and never block."""
    mode = conn.get_execution_options().get(_BEGIN, "IMMEDIATE")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, full fsync, enforced foreign keys and
    immediate write transactions."""
    try:
        engine = create_engine(url)
    except (ArgumentError, ImportError) as exc:
        raise WorkspaceError(
            f"cannot use catalog URL '{url}': {exc}",
            hint="use a SQLAlchemy URL such as sqlite:///catalog.db or "
            "postgresql+psycopg://user@host/db (pip install 'bildwerk[postgres]')",
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _shown(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _unreachable(engine: Engine, exc: DBAPIError) -> WorkspaceError:
    return WorkspaceError(
        f"cannot open the catalog at {_shown(engine)}: {exc.orig}",
        hint="check catalog.url in bildwerk.yaml and that the database is reachable",
    )


@dataclass(frozen=True)
class CatalogStatus:
    """Where a catalog's schema stands against the code's migrations."""

    url: str  # password hidden
    current: str | None  # None: not created yet
    head: str
    pending: tuple[str, ...]  # revisions an upgrade would apply, oldest first
    known: bool  # False: the catalog is at a revision this code does not have

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "current": self.current,
            "head": self.head,
            "pending": list(self.pending),
            "up_to_date": self.up_to_date,
            "known": self.known,
        }


_MISSING = "<no alembic_version table>"


def _read_revision(conn: Connection) -> str | None:
    """The catalog's revision in one query; ``_MISSING`` when it has no version table."""
    try:
        rows = list(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())
    except DBAPIError:
        conn.rollback()
        if inspect(conn).has_table("alembic_version"):
            raise
        return _MISSING
    if len(rows) > 1:
        return ",".join(sorted(str(r) for r in rows))
    return str(rows[0]) if rows else None


def _status(engine: Engine, current: str | None) -> CatalogStatus:
    head = head_revision()
    known = current is None or _known(current)
    pending: tuple[str, ...] = ()
    if known and current != head:
        revs = _scripts().iterate_revisions(head, current or "base")
        pending = tuple(reversed([r.revision for r in revs]))
    return CatalogStatus(_shown(engine), current, head, pending, known)


def _known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown or ambiguous id
        return False


def catalog_status(engine: Engine) -> CatalogStatus:
    """Current revision, head and pending migrations; changes nothing."""
    try:
        with engine.connect() as conn:
            conn.execution_options(**{_BEGIN: "DEFERRED"})
            current = _read_revision(conn)
    except OperationalError as exc:
        raise _unreachable(engine, exc) from None
    return _status(engine, None if current == _MISSING else current)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` held by this process until the block ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        if sys.platform == "win32":
            import msvcrt

            while True:
                try:
                    fh.seek(0)
                    msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after 10 s; keep waiting
                    continue
            try:
                yield
            finally:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the catalog's migration lock: a lock file beside a SQLite
    file (``catalog.db.lock``), a transaction-scoped advisory lock on PostgreSQL."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        with _file_lock(Path(database + ".lock")), engine.begin() as conn:
            yield conn
        return
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        yield conn


def _apply(conn: Connection) -> None:
    cfg = _alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def upgrade(engine: Engine) -> tuple[CatalogStatus, CatalogStatus]:
    """Bring the schema to head under the migration lock; returns (before, after). A
    catalog ahead of the code is refused."""
    try:
        with _migration_lock(engine) as conn:
            before = _status(engine, MigrationContext.configure(conn).get_current_revision())
            if not before.known:
                raise _ahead(before)
            if not before.up_to_date:
                _apply(conn)
    except OperationalError as exc:
        raise _unreachable(engine, exc) from None
    return before, _status(engine, head_revision())


def _create(engine: Engine) -> None:
    """Make an empty database a catalog at head; a process that waited for the lock finds
    it made and only checks it."""
    with _migration_lock(engine) as conn:
        if MigrationContext.configure(conn).get_current_revision() is not None:
            return
        tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
        if tables:
            raise WorkspaceError(
                f"the database at {_shown(engine)} holds tables ({', '.join(sorted(tables)[:5])}"
                f"{', ...' if len(tables) > 5 else ''}) but no bildwerk catalog revision",
                hint="point catalog.url in bildwerk.yaml at an empty database or a bildwerk "
                "catalog",
            )
        _apply(conn)


def _behind(status: CatalogStatus) -> WorkspaceError:
    return WorkspaceError(
        f"the catalog at {status.url} is at revision {status.current}, but this bildwerk "
        f"needs revision {status.head} ({len(status.pending)} migration(s) pending: "
        f"{', '.join(status.pending)})",
        hint=UPGRADE_HINT,
    )


def _ahead(status: CatalogStatus) -> WorkspaceError:
    return WorkspaceError(
        f"the catalog at {status.url} is at revision {status.current}, which this bildwerk "
        f"does not know (its newest is {status.head}): a newer bildwerk upgraded it",
        hint="upgrade bildwerk (pip install -U bildwerk) on every machine using this catalog",
    )


def open_catalog(engine: Engine, *, migrate: bool = False) -> CatalogStatus:
    """Check the catalog is at the code's head: create it when the database is empty;
    with ``migrate``, upgrade one that is behind, else refuse it with what to do."""
    try:
        with engine.connect() as conn:
            conn.execution_options(**{_BEGIN: "DEFERRED"})
            current = _read_revision(conn)
    except OperationalError as exc:
        raise _unreachable(engine, exc) from None
    if current in (_MISSING, None):
        try:
            _create(engine)
        except OperationalError as exc:
            raise _unreachable(engine, exc) from None
        return catalog_status(engine)
    status = _status(engine, current)
    if not status.known:
        raise _ahead(status)
    if not status.up_to_date:
        if not migrate:
            raise _behind(status)
        return upgrade(engine)[1]
    return status


def _damaged(exc: DatabaseError) -> bool:
    text = str(exc.orig)
    return "file is not a database" in text or "malformed" in text


def _corrupt(engine: Engine, exc: DatabaseError) -> WorkspaceError:
    where = engine.url.database or _shown(engine)
    return WorkspaceError(
        f"the catalog {where} is damaged: {exc.orig}",
        hint="restore it from a backup; or move it aside and run again: a new catalog is "
        "created and the runs are made again (the blob store keeps every image, so nothing "
        "is stored twice); 'bildwerk fsck' then lists blobs nothing refers to",
    )


class Database:
    """An engine plus a session factory; ``session()`` commits or rolls back as a unit.

    ``Database(url)`` creates an empty catalog and refuses one whose revision differs
    from the code's; ``migrate=True`` (``bildwerk db upgrade``) upgrades it instead."""

    def __init__(self, url: str, *, migrate: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url)
        try:
            self.status = open_catalog(self.engine, migrate=migrate)
        except DatabaseError as exc:
            self.engine.dispose()
            if _damaged(exc):
                raise _corrupt(self.engine, exc) from None
            raise
        except BaseException:
            self.engine.dispose()
            raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(
            self.engine.execution_options(**{_BEGIN: "DEFERRED"}), expire_on_commit=False
        )

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """A unit of work. On SQLite it holds the write lock from its first statement
        (see ``_sqlite_begin``); ``write=False`` for sessions that only read."""
        with (self._sessions if write else self._readers)() as s:
            try:
                yield s
                s.commit()
            except BaseException as exc:
                with contextlib.suppress(Exception):  # a full disk may refuse that too
                    s.rollback()
                if isinstance(exc, OperationalError) and as_disk_full(exc) is not None:
                    raise DiskFullError(self._where()) from exc
                raise

    def _where(self) -> str:
        url = self.engine.url
        return (
            url.database
            if url.get_backend_name() == "sqlite" and url.database
            else (url.render_as_string(hide_password=True))
        )

    def close(self) -> None:
        self.engine.dispose()


def db_status(url: str) -> CatalogStatus:
    """``bildwerk db status``: where the catalog at ``url`` stands; changes nothing."""
    engine = make_engine(url)
    try:
        return catalog_status(engine)
    finally:
        engine.dispose()


def db_upgrade(url: str) -> tuple[CatalogStatus, CatalogStatus]:
    """``bildwerk db upgrade``: create or upgrade the catalog at ``url``; (before, after)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execution_options(**{_BEGIN: "DEFERRED"})
            missing = _read_revision(conn) == _MISSING
        if missing:
            _create(engine)
            return _status(engine, None), catalog_status(engine)
        return upgrade(engine)
    except OperationalError as exc:
        raise _unreachable(engine, exc) from None
    finally:
        engine.dispose()
