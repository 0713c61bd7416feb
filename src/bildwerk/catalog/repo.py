"""Repository functions: the only code that reads or writes catalog rows.

Many processes may write one catalog at once (two runs of a brief, a run and a reviewer,
workers). Rows keyed by content or natural key are therefore inserted with
``INSERT ... ON CONFLICT DO NOTHING`` (``_insert``): the second writer of the same row
finds it there instead of failing with ``IntegrityError``. Events and decisions are plain
appends.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Table, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, selectinload
from sqlalchemy.orm.util import identity_key

from bildwerk.catalog.models import (
    Asset,
    AssetRights,
    BriefVersion,
    Campaign,
    Decision,
    Event,
    ImageHash,
    Job,
    JobClaim,
    JobSlot,
    Lineage,
    Publication,
    Rendition,
    Run,
    RunJob,
    Stamp,
    StreamEvent,
    utcnow,
)
from bildwerk.records import JobSpec

if TYPE_CHECKING:
    from bildwerk.events import Event as StreamEventRecord

_CHUNK = 200  # rows per statement: well under SQLite's bound-parameter limit


def _chunks(keys: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(keys), _CHUNK):
        yield list(keys[start : start + _CHUNK])


def _insert(
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
            if all(k in row for k in _pk(model)):
                found = s.identity_map.get(identity_key(model, tuple(row[k] for k in _pk(model))))
                if found is not None:
                    s.expire(found)
    return max(written, 0)


def _insert_new(
    s: Session, model: type[Any], rows: list[dict[str, Any]], *, keys: Sequence[str], column: str
) -> list[Any]:
    """``_insert`` without updates that returns ``column`` of the rows it wrote (not of
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


def _pk(model: type[Any]) -> list[str]:
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
    s.add(Event(type=type_, run_id=run_id, subject=subject, actor=actor, payload=payload or {}))


def log_events(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Many ``log_event`` rows (type, run_id, subject, actor, payload) in one statement:
    the ORM would insert them one by one to read back their ids."""
    if rows:
        s.flush()  # earlier events first, so ids keep the order things happened in
        now = utcnow()
        s.execute(
            insert(cast(Table, Event.__table__)),
            [
                {"at": now, "run_id": None, "subject": None, "actor": "", "payload": {}, **row}
                for row in rows
            ],
        )


def ensure_campaign(s: Session, campaign_id: str, name: str) -> Campaign:
    if _insert(s, Campaign, {"id": campaign_id, "name": name or campaign_id}, keys=["id"]):
        log_event(s, "campaign.created", subject=campaign_id)
    return s.get_one(Campaign, campaign_id)


def ensure_brief_version(
    s: Session, *, sha256: str, campaign_id: str, path: str, content: str, template_sha256: str
) -> BriefVersion:
    row = {
        "sha256": sha256,
        "campaign_id": campaign_id,
        "path": path,
        "content": content,
        "template_sha256": template_sha256,
    }
    if _insert(s, BriefVersion, row, keys=["sha256"]):
        log_event(s, "brief.version", subject=campaign_id, payload={"sha256": sha256})
    return s.get_one(BriefVersion, sha256)


def ensure_asset(
    s: Session,
    *,
    asset_id: str,
    kind: str,
    sha256: str,
    width: int,
    height: int,
    fmt: str,
    campaign_id: str | None = None,
    source: str | None = None,
    meta: dict[str, Any] | None = None,
) -> tuple[Asset, bool]:
    """Insert an asset unless one with this id exists; returns (asset, created)."""
    found = s.get(Asset, asset_id)
    if found is not None:
        return found, False
    row = {
        "id": asset_id,
        "kind": kind,
        "sha256": sha256,
        "width": width,
        "height": height,
        "format": fmt,
        "campaign_id": campaign_id,
        "source": source,
        "meta": meta or {},
    }
    created = _insert(s, Asset, row, keys=["id"]) > 0
    return s.get_one(Asset, asset_id), created


def add_lineage(s: Session, child_id: str, parent_id: str, relation: str) -> None:
    row = {"child_id": child_id, "parent_id": parent_id, "relation": relation}
    _insert(s, Lineage, row, keys=["child_id", "parent_id", "relation"])


def add_rendition(s: Session, asset_id: str, **fields: Any) -> None:
    """A rendition, unless the asset has one of this format and width already."""
    _insert(s, Rendition, {"asset_id": asset_id, **fields}, keys=["asset_id", "format", "width"])


def insert_job(
    s: Session,
    spec: JobSpec,
    *,
    campaign_id: str,
    creative_id: str,
    scene_id: str,
    qa: dict[str, Any],
    duration_ms: int,
    first_run_id: str,
) -> bool:
    """A finished job, with its filter dimensions as columns and its slot values as rows,
    unless its key is there already (another run made it first); True if new."""
    row = {
        "key": spec.job_key,
        "campaign_id": campaign_id,
        "scene_key": spec.scene_key,
        "spec": spec.to_json(),
        "creative_id": creative_id,
        "scene_id": scene_id,
        "qa": qa,
        "duration_ms": duration_ms,
        "first_run_id": first_run_id,
        "created_at": utcnow(),
        "segment": spec.segment,
        "locale": spec.locale,
        "channel": spec.channel_name,
        "backend": spec.backend,
        "model": spec.model,
    }
    if not _insert(s, Job, row, keys=["key"]):
        return False
    slots = [
        {"job_key": spec.job_key, "name": n, "value": v} for n, v in sorted(spec.slots.items())
    ]
    if slots:
        _insert(s, JobSlot, slots, keys=["job_key", "name"])
    return True


def done_jobs(s: Session, keys: Sequence[str]) -> dict[str, Job]:
    """Jobs already finished in any earlier run, by key."""
    out: dict[str, Job] = {}
    for chunk_start in range(0, len(keys), 500):
        chunk = list(keys[chunk_start : chunk_start + 500])
        for job in s.scalars(select(Job).where(Job.key.in_(chunk))):
            out[job.key] = job
    return out


def scene_by_key(s: Session, scene_key: str) -> Asset | None:
    return s.get(Asset, scene_asset_id(scene_key))


def scene_asset_id(scene_key: str) -> str:
    return "sc_" + scene_key[:24]


def start_run(
    s: Session,
    *,
    run_id: str,
    campaign_id: str,
    brief_sha256: str,
    workers: int,
    backend: str,
    planned: int,
    owner: str | None = None,
    lease_seconds: float = 60.0,
) -> Run:
    """The run's row, now running under ``owner``'s lease: a new row, or a queued (or
    reclaimed) one that a worker starts (again)."""
    now = utcnow()
    run = s.get(Run, run_id)
    if run is None:
        run = Run(id=run_id, campaign_id=campaign_id, brief_sha256=brief_sha256)
        s.add(run)
    resumed = (run.attempts or 0) > 0
    run.status, run.started_at, run.finished_at, run.error = "running", now, None, None
    run.workers, run.backend, run.planned = workers, backend, planned
    run.owner, run.heartbeat_at = owner, now
    run.lease_until = now + timedelta(seconds=lease_seconds) if owner else None
    run.attempts = (run.attempts or 0) + 1
    log_event(
        s,
        "run.resumed" if resumed else "run.started",
        run_id=run_id,
        subject=campaign_id,
        payload={"planned": planned, "owner": owner, "attempt": run.attempts},
    )
    return run


def enqueue_run(
    s: Session,
    *,
    run_id: str,
    campaign_id: str,
    brief_sha256: str,
    backend: str,
    planned: int,
    options: dict[str, Any],
    actor: str,
) -> Run:
    """A run for workers to claim, in submission order."""
    now = utcnow()
    run = Run(
        id=run_id,
        campaign_id=campaign_id,
        brief_sha256=brief_sha256,
        status="queued",
        backend=backend,
        planned=planned,
        options=options,
        queued_at=now,
        started_at=now,
        attempts=0,
    )
    s.add(run)
    log_event(s, "run.queued", run_id=run_id, subject=campaign_id, actor=actor, payload=options)
    return run


def claimable_runs(s: Session, *, limit: int = 20) -> list[Run]:
    """Queued runs, then queue runs whose lease expired, oldest first; on PostgreSQL the
    rows are locked (``FOR UPDATE SKIP LOCKED``) so concurrent workers see different
    ones, on SQLite the write transaction (``BEGIN IMMEDIATE``) serialises them."""
    now = utcnow()
    q = (
        select(Run)
        .where(
            Run.queued_at.is_not(None),
            (Run.status == "queued") | ((Run.status == "running") & (Run.lease_until < now)),
        )
        .order_by(Run.queued_at, Run.id)
        .limit(limit)
    )
    if s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return list(s.scalars(q))


def running_queue_runs(s: Session, owner_prefix: str) -> list[Run]:
    """Queue runs held under a lease by owners on one host (``host:``)."""
    q = select(Run).where(
        Run.queued_at.is_not(None),
        Run.status == "running",
        Run.owner.startswith(owner_prefix, autoescape=True),
    )
    return list(s.scalars(q))


def take_run(s: Session, run: Run, owner: str, lease_seconds: float) -> None:
    now = utcnow()
    run.status, run.owner = "running", owner
    run.heartbeat_at, run.lease_until = now, now + timedelta(seconds=lease_seconds)


def renew_lease(s: Session, run_id: str, owner: str, lease_seconds: float) -> bool:
    """Extend ``owner``'s lease on a run; returns whether cancellation was requested."""
    now = utcnow()
    run = s.get(Run, run_id)
    if run is None:
        return False
    if run.owner == owner and run.status == "running":
        run.heartbeat_at, run.lease_until = now, now + timedelta(seconds=lease_seconds)
    return bool(run.cancel_requested)


def request_cancel(s: Session, run_id: str, actor: str) -> Run:
    """A queued run is cancelled at once; a running one is asked to stop."""
    run = s.get_one(Run, run_id)
    if run.status == "queued":
        run.status, run.finished_at = "cancelled", utcnow()
        run.error = f"cancelled by {actor} before it started"
    elif run.status == "running":
        run.cancel_requested = True
    log_event(s, "run.cancel", run_id=run_id, subject=run.campaign_id, actor=actor)
    return run


def expire_abandoned_runs(s: Session, dead: Sequence[str]) -> None:
    """Runs started in a process that is gone (not from the queue: nobody resumes them)
    end as failed instead of staying 'running' forever."""
    for run in s.scalars(select(Run).where(Run.id.in_(list(dead)))):
        if run.status == "running":
            run.status, run.finished_at = "failed", utcnow()
            run.error = f"interrupted: its process ({run.owner}) stopped"
            log_event(s, "run.finished", run_id=run.id, subject=run.campaign_id,
                      payload={"status": "failed", "error": run.error})  # fmt: skip


def stale_direct_runs(s: Session) -> list[Run]:
    """Directly started runs ('bildwerk run', not the queue) still marked running."""
    q = select(Run).where(Run.queued_at.is_(None), Run.status == "running")
    return list(s.scalars(q))


def record_run_job(
    s: Session, run_id: str, job_key: str, position: int, status: str, error: str | None = None
) -> None:
    row = {
        "run_id": run_id,
        "job_key": job_key,
        "position": position,
        "status": status,
        "error": error,
    }
    _insert(s, RunJob, row, keys=["run_id", "job_key"], update_columns=["status", "error"])


def run_jobs_with_status(s: Session, run_id: str, status: str) -> set[str]:
    q = select(RunJob.job_key).where(RunJob.run_id == run_id, RunJob.status == status)
    return set(s.scalars(q))


def finish_run(s: Session, run_id: str, *, manifest_path: str | None, error: str | None) -> Run:
    run = s.get_one(Run, run_id)
    counts = dict(
        s.execute(
            select(RunJob.status, func.count())
            .where(RunJob.run_id == run_id)
            .group_by(RunJob.status)
        ).all()
    )
    run.generated = int(counts.get("generated", 0))
    run.cached = int(counts.get("cached", 0))
    run.failed = int(counts.get("failed", 0))
    if run.cancel_requested and error:
        run.status = "cancelled"
    else:
        run.status = "failed" if (error or run.failed) else "done"
    run.owner, run.lease_until = None, None
    run.finished_at = utcnow()
    run.manifest_path = manifest_path
    run.error = error
    log_event(
        s,
        "run.finished",
        run_id=run_id,
        subject=run.campaign_id,
        payload={
            "status": run.status,
            "generated": run.generated,
            "cached": run.cached,
            "failed": run.failed,
        },
    )
    return run


def list_runs(s: Session, limit: int = 50) -> list[Run]:
    return list(s.scalars(select(Run).order_by(Run.started_at.desc(), Run.id.desc()).limit(limit)))


def get_run(s: Session, run_id: str) -> Run | None:
    """A run by id, unique id prefix, or ``latest`` (the newest run)."""
    if run_id == "latest":
        newest = list_runs(s, 1)
        return newest[0] if newest else None
    run = s.get(Run, run_id)
    if run is None:
        matches = list(s.scalars(select(Run).where(Run.id.startswith(run_id)).limit(2)))
        run = matches[0] if len(matches) == 1 else None
    return run


def list_assets(
    s: Session, *, kind: str | None = None, campaign_id: str | None = None, limit: int = 200
) -> list[Asset]:
    q = select(Asset).order_by(Asset.created_at.desc(), Asset.id)
    if kind:
        q = q.where(Asset.kind == kind)
    if campaign_id:
        q = q.where(Asset.campaign_id == campaign_id)
    return list(s.scalars(q.limit(limit)))


def get_asset(s: Session, asset_id: str) -> Asset | None:
    q = select(Asset).options(selectinload(Asset.renditions))
    found = s.scalars(q.where(Asset.id == asset_id)).first()
    if found is None:
        matches = list(s.scalars(q.where(Asset.id.startswith(asset_id)).limit(2)))
        found = matches[0] if len(matches) == 1 else None
    return found


def assets_by_id(s: Session, asset_ids: Sequence[str]) -> dict[str, Asset]:
    """Assets by exact id, renditions loaded, in one query per 500 ids."""
    out: dict[str, Asset] = {}
    ids = list(dict.fromkeys(asset_ids))
    q = select(Asset).options(selectinload(Asset.renditions))
    for start in range(0, len(ids), 500):
        for asset in s.scalars(q.where(Asset.id.in_(ids[start : start + 500]))):
            out[asset.id] = asset
    return out


def parents_of(s: Session, child_ids: Sequence[str], relation: str) -> dict[str, str]:
    """child id → parent id for one lineage relation (``logo_in``, ``scene_of``…)."""
    out: dict[str, str] = {}
    ids = list(dict.fromkeys(child_ids))
    for start in range(0, len(ids), 500):
        q = select(Lineage).where(
            Lineage.relation == relation, Lineage.child_id.in_(ids[start : start + 500])
        )
        for link in s.scalars(q):
            out[link.child_id] = link.parent_id
    return out


def assets_with_prefix(s: Session, prefix: str, *, kind: str, limit: int = 20) -> list[str]:
    """Ids of assets of ``kind`` starting with ``prefix`` (a watermark names an id prefix)."""
    q = select(Asset.id).where(Asset.kind == kind, Asset.id.startswith(prefix, autoescape=True))
    return list(s.scalars(q.order_by(Asset.id).limit(limit)))


def lineage_of(s: Session, asset_id: str) -> list[Lineage]:
    return list(
        s.scalars(
            select(Lineage).where((Lineage.child_id == asset_id) | (Lineage.parent_id == asset_id))
        )
    )


def events_for(s: Session, *, run_id: str | None = None, subject: str | None = None) -> list[Event]:
    q = select(Event).order_by(Event.id)
    if run_id:
        q = q.where(Event.run_id == run_id)
    if subject:
        q = q.where(Event.subject == subject)
    return list(s.scalars(q))


def recent_durations(s: Session, limit: int = 200) -> list[int]:
    """Milliseconds the most recent jobs took, for time estimates."""
    q = select(Job.duration_ms).order_by(Job.created_at.desc()).limit(limit)
    return [int(d) for d in s.scalars(q)]


def _signed64(value: int) -> int:
    """64-bit hashes are stored in signed BIGINT columns."""
    return value - (1 << 64) if value >= (1 << 63) else value


def _unsigned64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def set_hashes(s: Session, asset_id: str, phash: int, colour: int) -> None:
    row = {"asset_id": asset_id, "phash": _signed64(phash), "colour": _signed64(colour)}
    _insert(s, ImageHash, row, keys=["asset_id"])


def hashes_for(s: Session, asset_ids: Sequence[str] | None = None) -> dict[str, tuple[int, int]]:
    """Perceptual hashes by asset id (all of them when ``asset_ids`` is None)."""
    q = select(ImageHash)
    if asset_ids is not None:
        q = q.where(ImageHash.asset_id.in_(list(asset_ids)))
    return {r.asset_id: (_unsigned64(r.phash), _unsigned64(r.colour)) for r in s.scalars(q)}


def add_decision(
    s: Session,
    asset_id: str,
    state: str,
    *,
    run_id: str | None = None,
    score: float | None = None,
    rank: int | None = None,
    reasons: Sequence[str] = (),
    actor: str = "gate",
) -> Decision:
    decision = Decision(
        asset_id=asset_id,
        run_id=run_id,
        state=state,
        score=score,
        rank=rank,
        reasons=list(reasons),
        actor=actor,
    )
    s.add(decision)
    log_event(
        s,
        f"decision.{state}",
        run_id=run_id,
        subject=asset_id,
        actor=actor,
        payload={"score": score, "rank": rank, "reasons": list(reasons)},
    )
    return decision


def current_decisions(s: Session, asset_ids: Sequence[str]) -> dict[str, Decision]:
    """The newest decision per asset."""
    out: dict[str, Decision] = {}
    for chunk in _chunks(list(dict.fromkeys(asset_ids))):
        q = select(Decision).where(Decision.asset_id.in_(chunk)).order_by(Decision.id)
        for d in s.scalars(q):
            out[d.asset_id] = d
    return out


def approved_creatives(s: Session, exclude: Sequence[str] = ()) -> list[str]:
    """Creatives whose current decision is 'approved' (or later, 'published')."""
    latest = (
        select(Decision.asset_id, func.max(Decision.id).label("id"))
        .group_by(Decision.asset_id)
        .subquery()
    )
    q = (
        select(Decision.asset_id)
        .join(latest, Decision.id == latest.c.id)
        .where(Decision.state.in_(["approved", "published"]))
    )
    excluded = set(exclude)
    return [a for a in s.scalars(q) if a not in excluded]


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
        _insert(s, Publication, fresh, keys=["target", "key"], update_columns=changing)
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


def last_event_seq(s: Session, stream: str) -> int:
    """The newest sequence number of a stream (0 when it has none)."""
    found = s.scalar(select(func.max(StreamEvent.seq)).where(StreamEvent.stream == stream))
    return int(found or 0)


def add_stream_events(s: Session, events: Sequence[StreamEventRecord]) -> None:
    s.add_all(
        StreamEvent(
            stream=e.stream,
            seq=e.seq,
            at=e.at,
            kind=e.kind,
            stage=e.stage,
            job=e.job,
            total=e.total,
            message=e.message,
            data=dict(e.data),
        )
        for e in events
    )


def stream_events(s: Session, stream: str, *, after: int = 0) -> list[StreamEventRecord]:
    """A stream's events after sequence ``after``, in order."""
    from bildwerk.events import Event as StreamEventRecord

    q = (
        select(StreamEvent)
        .where(StreamEvent.stream == stream, StreamEvent.seq > after)
        .order_by(StreamEvent.seq)
    )
    return [
        StreamEventRecord(
            kind=r.kind,
            stream=r.stream,
            seq=r.seq,
            at=r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC),
            stage=r.stage,
            job=r.job,
            total=r.total,
            message=r.message,
            data=r.data,
        )
        for r in s.scalars(q)
    ]


# --- job claims: two runs of one brief make each job once ----------------------------------

_CLAIMS = cast(Table, JobClaim.__table__)


def claim_jobs(
    s: Session, run_id: str, owner: str, keys: Sequence[str], lease_seconds: float
) -> set[str]:
    """Claim ``keys`` for ``run_id``; returns the keys this run holds now: unclaimed ones,
    ones whose claim expired (no heartbeat for ``lease_seconds``), and its own."""
    now = utcnow()
    cutoff = now - timedelta(seconds=lease_seconds)
    won: set[str] = set()
    table = _CLAIMS
    for chunk in _chunks(list(dict.fromkeys(keys))):
        rows = [
            {"job_key": k, "run_id": run_id, "owner": owner, "claimed_at": now, "heartbeat_at": now}
            for k in chunk
        ]
        _insert(s, JobClaim, rows, keys=["job_key"])
        s.execute(
            update(table)
            .where(table.c.job_key.in_(chunk), table.c.heartbeat_at < cutoff)
            .values(run_id=run_id, owner=owner, claimed_at=now, heartbeat_at=now)
        )
        won.update(
            s.scalars(
                select(JobClaim.job_key).where(
                    JobClaim.job_key.in_(chunk), JobClaim.run_id == run_id
                )
            )
        )
    return won


def job_claims(s: Session, keys: Sequence[str]) -> dict[str, JobClaim]:
    """Current claims on ``keys``, by key."""
    out: dict[str, JobClaim] = {}
    for chunk in _chunks(list(keys)):
        for claim in s.scalars(select(JobClaim).where(JobClaim.job_key.in_(chunk))):
            out[claim.job_key] = claim
    return out


def release_jobs(s: Session, keys: Sequence[str], *, run_id: str | None = None) -> None:
    """Drop claims on ``keys`` (only ``run_id``'s, when given)."""
    table = _CLAIMS
    for chunk in _chunks(list(keys)):
        q = delete(table).where(table.c.job_key.in_(chunk))
        if run_id is not None:
            q = q.where(table.c.run_id == run_id)
        s.execute(q)


def heartbeat(s: Session, run_id: str) -> int:
    """Renew the lease on every claim ``run_id`` holds; returns how many it holds."""
    table = _CLAIMS
    result = s.execute(
        update(table)
        .where(table.c.run_id == run_id)
        .values(heartbeat_at=utcnow())
        .execution_options(preserve_rowcount=True)
    )
    return cast(CursorResult[Any], result).rowcount


# --- gate: approved creatives to compare against -------------------------------------------


def approved_hashes_in(
    s: Session, scopes: Sequence[tuple[str, str]], exclude: Sequence[str] = ()
) -> dict[str, tuple[tuple[str, str], tuple[int, int]]]:
    """Creatives approved (or published) in the given (campaign id, channel) scopes, with
    their scope and perceptual hashes, in one query per campaign. Starts from ``jobs``
    (indexed ``campaign_id`` and ``channel``) and keeps a decision only when no newer one
    exists for its asset (index on ``decisions.asset_id``), so the cost follows the size
    of the campaign, not of the catalog."""
    by_campaign: dict[str, set[str]] = {}
    for campaign, channel in scopes:
        by_campaign.setdefault(campaign, set()).add(channel)
    excluded = set(exclude)
    out: dict[str, tuple[tuple[str, str], tuple[int, int]]] = {}
    for campaign, channels in sorted(by_campaign.items()):
        latest = aliased(Decision)
        newer = select(Decision.id).where(
            Decision.asset_id == latest.asset_id, Decision.id > latest.id
        )
        q = (
            select(Job.creative_id, Job.campaign_id, Job.channel, ImageHash.phash, ImageHash.colour)
            .join(latest, latest.asset_id == Job.creative_id)
            .join(ImageHash, ImageHash.asset_id == Job.creative_id)
            .where(
                Job.campaign_id == campaign,
                Job.channel.in_(sorted(channels)),
                latest.state.in_(["approved", "published"]),
                ~newer.exists(),
            )
        )
        for cid, camp, chan, phash, colour in s.execute(q):
            if cid not in excluded:
                out[cid] = ((camp, chan or ""), (_unsigned64(phash), _unsigned64(colour)))
    return out


# --- publishing: rights, stamps, publications, batched per run ----------------------------


def rights_of(s: Session, asset_ids: Sequence[str]) -> dict[str, AssetRights]:
    """Usage rights by asset id (creatives without a row are absent)."""
    out: dict[str, AssetRights] = {}
    for chunk in _chunks(list(dict.fromkeys(asset_ids))):
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
    for chunk in _chunks(missing):
        rows = [
            {"asset_id": a, "expires_on": expires_on, "revoked_at": None, "reason": None,
             "actor": actor, "updated_at": now}
            for a in chunk
        ]  # fmt: skip
        written = _insert_new(s, AssetRights, rows, keys=["asset_id"], column="asset_id")
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
    _insert(s, AssetRights, row, keys=["asset_id"], update_columns=changing)
    return s.get_one(AssetRights, asset_id, populate_existing=True)


def stamps_for(s: Session, subjects: Sequence[str]) -> list[Stamp]:
    """Every cached stamp of these subjects (``m:<asset>``, ``r:<rendition id>``)."""
    out: list[Stamp] = []
    for chunk in _chunks(list(dict.fromkeys(subjects))):
        out.extend(s.scalars(select(Stamp).where(Stamp.subject.in_(chunk))))
    return out


def add_stamps(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Stamp rows (subject, stamp_key, sha256, bytes); an existing one is kept (the
    first writer's bytes are the ones every later publish uses)."""
    for start in range(0, len(rows), _CHUNK):
        _insert(s, Stamp, list(rows[start : start + _CHUNK]), keys=["subject", "stamp_key"])


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
    for chunk in _chunks(list(dict.fromkeys(asset_ids))):
        out.extend(s.scalars(q.where(Publication.asset_id.in_(chunk))))
    return sorted(out, key=lambda p: p.id)


def live_publications_of(s: Session, asset_ids: Sequence[str]) -> list[Publication]:
    """Files of these assets still published on any target."""
    out: list[Publication] = []
    for chunk in _chunks(list(dict.fromkeys(asset_ids))):
        q = select(Publication).where(
            Publication.state == "published", Publication.asset_id.in_(chunk)
        )
        out.extend(s.scalars(q))
    return sorted(out, key=lambda p: p.id)


def upsert_publications(s: Session, target: str, rows: Sequence[dict[str, Any]]) -> None:
    """Record files as published on ``target`` in one statement per chunk; a file already
    recorded (removed, or published by a concurrent call) is revived and updated."""
    now = utcnow()
    fresh = [
        {**data, "target": target, "state": "published", "published_at": now,
         "removed_at": None, "reason": None}
        for data in rows
    ]  # fmt: skip
    if not fresh:
        return
    changing = [c for c in fresh[0] if c not in ("target", "key")]
    chunk = max(1, _CHUNK // 4)  # ~11 parameters a row
    for start in range(0, len(fresh), chunk):
        part = fresh[start : start + chunk]
        _insert(s, Publication, part, keys=["target", "key"], update_columns=changing)


def mark_unpublished_keys(s: Session, target: str, keys: Sequence[str], reason: str) -> None:
    """``mark_unpublished`` for many files at once (one statement per chunk)."""
    table = cast(Table, Publication.__table__)
    now = utcnow()
    for chunk in _chunks(list(dict.fromkeys(keys))):
        s.execute(
            update(table)
            .where(table.c.target == target, table.c.key.in_(chunk), table.c.state == "published")
            .values(state="removed", removed_at=now, reason=reason)
        )
