"""Finished jobs (with their filter dimensions and slot rows) and the claims that let
concurrent runs make each job once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Table, delete, insert, select, update
from sqlalchemy.orm import Session

from bildwerk.catalog.models import (
    Asset,
    Job,
    JobCheck,
    JobClaim,
    JobSlot,
    utcnow,
)
from bildwerk.catalog.repo.base import (
    chunks,
    insert_rows,
)
from bildwerk.records import JobSpec

if TYPE_CHECKING:
    pass


_INT64 = (-(2**63), 2**63 - 1)  # the seed column's range; larger seeds stay in the spec


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
        "seed": spec.seed if _INT64[0] <= spec.seed <= _INT64[1] else None,
        "prompt": spec.prompt,
    }
    if not insert_rows(s, Job, row, keys=["key"]):
        return False
    slots = [
        {"job_key": spec.job_key, "name": n, "value": v} for n, v in sorted(spec.slots.items())
    ]
    if slots:
        insert_rows(s, JobSlot, slots, keys=["job_key", "name"])
    _write_checks(s, spec.job_key, qa)
    return True


def set_job_qa(s: Session, job: Job, qa: dict[str, Any]) -> None:
    """Replace a job's QA record and its ``job_checks`` rows together."""
    job.qa = qa
    s.execute(delete(JobCheck).where(JobCheck.job_key == job.key))
    _write_checks(s, job.key, qa)


def _write_checks(s: Session, job_key: str, qa: dict[str, Any]) -> None:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for c in qa.get("checks") or ():
        stage = str(c.get("stage") or "qa")
        rows[(stage, c["name"])] = {"job_key": job_key, "stage": stage, "name": c["name"],
                                    "verdict": c["verdict"], "score": c.get("score")}  # fmt: skip
    if rows:
        s.execute(insert(JobCheck), list(rows.values()))


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


def recent_durations(s: Session, limit: int = 200) -> list[int]:
    """Milliseconds the most recent jobs took, for time estimates."""
    q = select(Job.duration_ms).order_by(Job.created_at.desc()).limit(limit)
    return [int(d) for d in s.scalars(q)]


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
    for chunk in chunks(list(dict.fromkeys(keys))):
        rows = [
            {"job_key": k, "run_id": run_id, "owner": owner, "claimed_at": now, "heartbeat_at": now}
            for k in chunk
        ]
        insert_rows(s, JobClaim, rows, keys=["job_key"])
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
    for chunk in chunks(list(keys)):
        for claim in s.scalars(select(JobClaim).where(JobClaim.job_key.in_(chunk))):
            out[claim.job_key] = claim
    return out


def release_jobs(s: Session, keys: Sequence[str], *, run_id: str | None = None) -> None:
    """Drop claims on ``keys`` (only ``run_id``'s, when given)."""
    table = _CLAIMS
    for chunk in chunks(list(keys)):
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
