"""Runs: starting, finishing, the run queue (leases, cancellation) and each run's
stream of progress events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bildwerk.catalog.models import (
    Event,
    Run,
    RunJob,
    StreamEvent,
    utcnow,
)
from bildwerk.catalog.repo.base import (
    insert_rows,
    log_event,
)

if TYPE_CHECKING:
    from bildwerk.events import Event as StreamEventRecord


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


def cancel_requested(s: Session, run_id: str) -> bool:
    found = s.scalar(select(Run.cancel_requested).where(Run.id == run_id))
    return bool(found)


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
            run.status, run.finished_at = "interrupted", utcnow()
            run.error = f"interrupted: its process ({run.owner}) stopped"
            log_event(s, "run.finished", run_id=run.id, subject=run.campaign_id,
                      payload={"status": "interrupted", "error": run.error})  # fmt: skip


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
    insert_rows(s, RunJob, row, keys=["run_id", "job_key"], update_columns=["status", "error"])


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
    elif error and error.startswith("interrupted"):
        run.status = "interrupted"  # resumable: re-run the brief, or a worker reclaims it
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
        matches = list(
            s.scalars(select(Run).where(Run.id.startswith(run_id, autoescape=True)).limit(2))
        )
        run = matches[0] if len(matches) == 1 else None
    return run


def events_for(s: Session, *, run_id: str | None = None, subject: str | None = None) -> list[Event]:
    q = select(Event).order_by(Event.id)
    if run_id:
        q = q.where(Event.run_id == run_id)
    if subject:
        q = q.where(Event.subject == subject)
    return list(s.scalars(q))


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
