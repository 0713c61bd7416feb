"""Writing rows safely with many writers: idempotent inserts keyed by content or natural
key (``INSERT ... ON CONFLICT``), statements chunked under SQLite's parameter limit, and
the append-only audit log."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Table, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from bildwerk.catalog import audit
from bildwerk.catalog.models import (
    Event,
    utcnow,
)

if TYPE_CHECKING:
    pass


CHUNK = 200  # rows per statement: well under SQLite's bound-parameter limit


def chunks(keys: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(keys), CHUNK):
        yield list(keys[start : start + CHUNK])


def insert_rows(
    s: Session,
    model: type[Any],
    rows: dict[str, Any] | list[dict[str, Any]],
    *,
    keys: Sequence[str],
    update_columns: Sequence[str] = (),
) -> int:
    """Insert ``rows`` unless a row with the same ``keys`` exists (then update
    ``update_columns`` from the new row, if any); returns how many rows were written.

    One statement on SQLite and PostgreSQL (their dialects' ``ON CONFLICT``), so a
    concurrent writer of the same row never raises; other databases use a savepoint."""
    s.flush()  # pending ORM rows first (a run, a campaign): the new rows may refer to them
    table = model.__table__
    dialect = s.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        dialect_insert: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
        stmt: Any = dialect_insert(table).values(rows)
        if update_columns:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys),
                set_={c: stmt.excluded[c] for c in update_columns},
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
        stmt = stmt.execution_options(preserve_rowcount=True)
        written = cast(CursorResult[Any], s.execute(stmt)).rowcount
    else:
        written = 0
        for row in [rows] if isinstance(rows, dict) else rows:
            try:
                with s.begin_nested():
                    s.execute(insert(table).values(row))
                written += 1
            except IntegrityError:
                if update_columns:
                    s.execute(
                        update(table)
                        .where(*(table.c[k] == row[k] for k in keys))
                        .values({c: row[c] for c in update_columns})
                    )
                    written += 1
    if update_columns:  # an instance loaded earlier would show the old values
        for row in [rows] if isinstance(rows, dict) else rows:
            if all(k in row for k in primary_key_of(model)):
                found = s.identity_map.get(
                    identity_key(model, tuple(row[k] for k in primary_key_of(model)))
                )
                if found is not None:
                    s.expire(found)
    return max(written, 0)


def insert_new_rows(
    s: Session, model: type[Any], rows: list[dict[str, Any]], *, keys: Sequence[str], column: str
) -> list[Any]:
    """``insert_rows`` without updates that returns ``column`` of the rows it wrote (not of
    the ones another writer had already put there), for logging only what this call did."""
    if not rows:
        return []
    s.flush()
    table = model.__table__
    dialect = s.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        dialect_insert: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
        stmt = (
            dialect_insert(table)
            .values(rows)
            .on_conflict_do_nothing(index_elements=list(keys))
            .returning(table.c[column])
        )
        return list(s.scalars(stmt))
    written = []
    for row in rows:
        try:
            with s.begin_nested():
                s.execute(insert(table).values(row))
            written.append(row[column])
        except IntegrityError:
            continue
    return written


def primary_key_of(model: type[Any]) -> list[str]:
    return [c.name for c in model.__table__.primary_key.columns]


def log_event(
    s: Session,
    type_: str,
    *,
    run_id: str | None = None,
    subject: str | None = None,
    actor: str = "",
    payload: dict[str, Any] | None = None,
) -> None:
    """Append an event; an audited one (:func:`bildwerk.catalog.audit.is_audited`) is
    chained into the audit trail in the same transaction."""
    log_events(
        s,
        [{"type": type_, "run_id": run_id, "subject": subject, "actor": actor,
          "payload": payload or {}}],
    )  # fmt: skip


def log_events(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Many ``log_event`` rows (type, run_id, subject, actor, payload) in one statement
    (the ORM would insert them one by one to read back their ids), the audited ones
    chained into the audit trail."""
    if rows:
        s.flush()  # earlier events first, so ids keep the order things happened in
        now = utcnow()
        full = [
            {"at": now, "run_id": None, "subject": None, "actor": "", "payload": {}, **row}
            for row in rows
        ]
        s.execute(insert(cast(Table, Event.__table__)), full)
        audit.append(s, full)
