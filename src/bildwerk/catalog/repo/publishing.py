"""Publishing rows: stamps, publications on targets and usage rights."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from bildwerk.catalog.models import (
    AssetRights,
    Publication,
    Stamp,
    TargetLease,
    utcnow,
)
from bildwerk.catalog.repo.base import (
    CHUNK,
    chunks,
    insert_new_rows,
    insert_rows,
    log_events,
)

if TYPE_CHECKING:
    pass


def upsert_publication(s: Session, target: str, data: dict[str, Any]) -> None:
    """Record a file as published on ``target`` (a re-publish revives a removed row)."""
    row = s.scalars(
        select(Publication).where(Publication.target == target, Publication.key == data["key"])
    ).first()
    now = utcnow()
    if row is None:  # another process may publish the same file now: last one wins
        fresh = {
            **data,
            "target": target,
            "state": "published",
            "published_at": now,
            "removed_at": None,
            "reason": None,
        }
        changing = [c for c in fresh if c not in ("target", "key")]
        insert_rows(s, Publication, fresh, keys=["target", "key"], update_columns=changing)
        return
    for k, v in data.items():
        setattr(row, k, v)
    row.state, row.published_at, row.removed_at, row.reason = "published", now, None, None


def mark_unpublished(s: Session, target: str, key: str, reason: str) -> None:
    """Mark a file as taken off ``target``; the row stays, with when and why."""
    row = s.scalars(
        select(Publication).where(Publication.target == target, Publication.key == key)
    ).first()
    if row is not None and row.state == "published":
        row.state = "removed"
        row.removed_at = utcnow()
        row.reason = reason


def rights_of(s: Session, asset_ids: Sequence[str]) -> dict[str, AssetRights]:
    """Usage rights by asset id (creatives without a row are absent)."""
    out: dict[str, AssetRights] = {}
    for chunk in chunks(list(dict.fromkeys(asset_ids))):
        for row in s.scalars(select(AssetRights).where(AssetRights.asset_id.in_(chunk))):
            out[row.asset_id] = row
    return out


def all_rights(s: Session) -> list[AssetRights]:
    return list(s.scalars(select(AssetRights)))


def ensure_rights(
    s: Session, asset_ids: Sequence[str], *, expires_on: date | None, actor: str, source: str
) -> dict[str, AssetRights]:
    """Rights rows for creatives that have none yet (``expires_on`` from the brief), each
    logged as ``rights.set`` once: a concurrent publisher's row wins and is returned."""
    found = rights_of(s, asset_ids)
    missing = [a for a in dict.fromkeys(asset_ids) if a not in found]
    now = utcnow()
    for chunk in chunks(missing):
        rows = [
            {"asset_id": a, "expires_on": expires_on, "revoked_at": None, "reason": None,
             "actor": actor, "updated_at": now}
            for a in chunk
        ]  # fmt: skip
        written = insert_new_rows(s, AssetRights, rows, keys=["asset_id"], column="asset_id")
        payload = {"expires_on": expires_on.isoformat() if expires_on else None, "source": source}
        log_events(
            s,
            [
                {"type": "rights.set", "subject": a, "actor": actor, "payload": payload}
                for a in written
            ],
        )
    return found | rights_of(s, missing) if missing else found


def set_rights(
    s: Session,
    asset_id: str,
    *,
    actor: str,
    expires_on: date | None = None,
    clear_expiry: bool = False,
    revoke: str | None = None,
) -> AssetRights:
    """Change a creative's expiry and/or revoke it, in one upsert (no read-then-write)."""
    now = utcnow()
    row = {
        "asset_id": asset_id,
        "expires_on": expires_on,
        "revoked_at": now if revoke is not None else None,
        "reason": revoke,
        "actor": actor,
        "updated_at": now,
    }
    changing = ["actor", "updated_at"]
    if expires_on is not None or clear_expiry:
        changing.append("expires_on")
    if revoke is not None:
        changing += ["revoked_at", "reason"]
    insert_rows(s, AssetRights, row, keys=["asset_id"], update_columns=changing)
    return s.get_one(AssetRights, asset_id, populate_existing=True)


def stamps_for(s: Session, subjects: Sequence[str]) -> list[Stamp]:
    """Every cached stamp of these subjects (``m:<asset>``, ``r:<rendition id>``)."""
    out: list[Stamp] = []
    for chunk in chunks(list(dict.fromkeys(subjects))):
        out.extend(s.scalars(select(Stamp).where(Stamp.subject.in_(chunk))))
    return out


def add_stamps(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Stamp rows (subject, stamp_key, sha256, bytes); an existing one is kept (the
    first writer's bytes are the ones every later publish uses)."""
    for start in range(0, len(rows), CHUNK):
        insert_rows(s, Stamp, list(rows[start : start + CHUNK]), keys=["subject", "stamp_key"])


def publications(
    s: Session,
    target: str,
    *,
    published_only: bool = False,
    asset_ids: Sequence[str] | None = None,
) -> list[Publication]:
    """Files on ``target`` in insertion order (all, or the live ones, or of some assets)."""
    q = select(Publication).where(Publication.target == target).order_by(Publication.id)
    if published_only:
        q = q.where(Publication.state == "published")
    if asset_ids is None:
        return list(s.scalars(q))
    out: list[Publication] = []
    for chunk in chunks(list(dict.fromkeys(asset_ids))):
        out.extend(s.scalars(q.where(Publication.asset_id.in_(chunk))))
    return sorted(out, key=lambda p: p.id)


def live_publications_of(s: Session, asset_ids: Sequence[str]) -> list[Publication]:
    """Files of these assets still published on any target."""
    out: list[Publication] = []
    for chunk in chunks(list(dict.fromkeys(asset_ids))):
        q = select(Publication).where(
            Publication.state == "published", Publication.asset_id.in_(chunk)
        )
        out.extend(s.scalars(q))
    return sorted(out, key=lambda p: p.id)


def upsert_publications(s: Session, target: str, rows: Sequence[dict[str, Any]]) -> None:
    """Record files as published on ``target`` in one statement per chunk; a file already
    recorded (removed, or published by a concurrent call) is revived and updated."""
    _write_publications(s, target, rows, "published")


def _write_publications(
    s: Session, target: str, rows: Sequence[dict[str, Any]], state: str
) -> None:
    """Insert or revive publication rows in ``state``, one statement per chunk."""
    now = utcnow()
    fresh = [
        {**data, "target": target, "state": state, "published_at": now,
         "removed_at": None, "reason": None}
        for data in rows
    ]  # fmt: skip
    if not fresh:
        return
    changing = [c for c in fresh[0] if c not in ("target", "key")]
    chunk = max(1, CHUNK // 4)  # ~11 parameters a row
    for start in range(0, len(fresh), chunk):
        part = fresh[start : start + chunk]
        insert_rows(s, Publication, part, keys=["target", "key"], update_columns=changing)


def mark_unpublished_keys(s: Session, target: str, keys: Sequence[str], reason: str) -> None:
    """``mark_unpublished`` for many files at once (one statement per chunk)."""
    table = cast(Table, Publication.__table__)
    now = utcnow()
    for chunk in chunks(list(dict.fromkeys(keys))):
        s.execute(
            update(table)
            .where(table.c.target == target, table.c.key.in_(chunk), table.c.state == "published")
            .values(state="removed", removed_at=now, reason=reason)
        )


def record_intents(s: Session, target: str, rows: Sequence[dict[str, Any]]) -> None:
    """Record files about to go up on ``target`` as ``uploading`` before the first byte
    leaves: a publish killed half-way leaves rows that say what to take back."""
    _write_publications(s, target, rows, "uploading")


def forget_sha(s: Session, target: str, keys: Sequence[str]) -> None:
    """Published files about to be overwritten: their recorded bytes are unknown until
    the new ones are recorded, so a killed write is rewritten by the next publish."""
    table = cast(Table, Publication.__table__)
    for chunk in chunks(list(dict.fromkeys(keys))):
        s.execute(
            update(table).where(table.c.target == target, table.c.key.in_(chunk)).values(sha256="")
        )


def pending_publications(s: Session, target: str | None = None) -> list[Publication]:
    """Intents left behind (``uploading``, ``removing``), on one target or on all."""
    q = select(Publication).where(Publication.state.in_(("uploading", "removing")))
    if target is not None:
        q = q.where(Publication.target == target)
    return list(s.scalars(q.order_by(Publication.id)))


def drop_intents(s: Session, target: str, keys: Sequence[str]) -> None:
    """Forget ``uploading`` rows whose files never went live (or were taken back)."""
    table = cast(Table, Publication.__table__)
    for chunk in chunks(list(dict.fromkeys(keys))):
        s.execute(
            delete(table).where(
                table.c.target == target, table.c.key.in_(chunk), table.c.state == "uploading"
            )
        )


def mark_removing(s: Session, target: str, keys: Sequence[str], reason: str) -> None:
    """Published files about to be deleted: ``removing`` until the delete is done, so a
    publish killed in between is finished by the next one."""
    table = cast(Table, Publication.__table__)
    now = utcnow()
    for chunk in chunks(list(dict.fromkeys(keys))):
        s.execute(
            update(table)
            .where(table.c.target == target, table.c.key.in_(chunk), table.c.state == "published")
            .values(state="removing", removed_at=now, reason=reason)
        )


def finish_removal(s: Session, target: str, keys: Sequence[str]) -> None:
    """``removing`` rows whose files are gone now become ``removed``."""
    table = cast(Table, Publication.__table__)
    for chunk in chunks(list(dict.fromkeys(keys))):
        s.execute(
            update(table)
            .where(table.c.target == target, table.c.key.in_(chunk), table.c.state == "removing")
            .values(state="removed")
        )


# --------------------------------------------------------------------------- leases


def _aware(value: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def take_target_lease(
    s: Session,
    target: str,
    owner: str,
    op: str,
    lease_seconds: float,
    dead: Callable[[str], bool],
) -> TargetLease | None:
    """Take ``target``'s lease for ``owner`` in this (write) transaction; returns None
    when taken, else the row of whoever holds it. A holder that ``dead`` says is gone, or
    whose lease ran out, is taken over."""
    now = utcnow()
    until = now + timedelta(seconds=lease_seconds)
    row = {"target": target, "owner": owner, "op": op, "acquired_at": now,
           "heartbeat_at": now, "lease_until": until}  # fmt: skip
    if insert_rows(s, TargetLease, row, keys=["target"]):
        return None
    q = select(TargetLease).where(TargetLease.target == target)
    if s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    held = s.scalars(q.execution_options(populate_existing=True)).one()
    if held.owner != owner and _aware(held.lease_until) > now and not dead(held.owner):
        return held
    held.owner, held.op, held.acquired_at = owner, op, now
    held.heartbeat_at, held.lease_until = now, until
    return None


def renew_target_lease(s: Session, target: str, owner: str, lease_seconds: float) -> bool:
    """Extend ``owner``'s lease; False when it is no longer the holder."""
    now = utcnow()
    table = cast(Table, TargetLease.__table__)
    done = s.execute(
        update(table)
        .where(table.c.target == target, table.c.owner == owner)
        .values(heartbeat_at=now, lease_until=now + timedelta(seconds=lease_seconds))
    )
    return bool(cast(Any, done).rowcount)


def holds_target_lease(s: Session, target: str, owner: str) -> bool:
    row = s.get(TargetLease, target, populate_existing=True)
    return row is not None and row.owner == owner


def release_target_lease(s: Session, target: str, owner: str) -> None:
    table = cast(Table, TargetLease.__table__)
    s.execute(delete(table).where(table.c.target == target, table.c.owner == owner))
