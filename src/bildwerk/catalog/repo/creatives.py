"""Finding creatives: one filtered, sorted, paged query over jobs, their assets, their
current decision, check verdicts, slot values and stars. The gallery, the API and the
CLI all list creatives through :func:`find_creatives`, so a filter means the same in each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from bildwerk.catalog.models import Asset, Decision, Job, JobCheck, JobSlot, RunJob, Star
from bildwerk.catalog.repo.base import chunks

Sort = Literal["rank", "newest", "score"]
SORTS: tuple[str, ...] = Sort.__args__  # type: ignore[attr-defined]
VERDICTS = ("fail", "warn", "unchecked", "pass")


@dataclass(frozen=True)
class CreativeFilter:
    """What to list. Every field narrows; unset fields do not. ``failing`` names a check
    whose verdict is ``verdict``; ``text`` matches the prompt, the model, a seed or the
    start of a creative id."""

    run_id: str | None = None
    campaign: str | None = None
    decision: str | None = None
    failing: str | None = None
    verdict: str = "fail"
    slots: Mapping[str, str] = field(default_factory=dict)
    channel: str | None = None
    segment: str | None = None
    locale: str | None = None
    model: str | None = None
    text: str | None = None
    starred_by: str | None = None
    sort: Sort = "rank"
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class CreativeRow:
    """One creative as a list shows it."""

    id: str
    job_key: str
    campaign_id: str
    channel: str | None
    segment: str | None
    locale: str | None
    backend: str | None
    model: str | None
    seed: int | None
    prompt: str | None
    width: int
    height: int
    state: str | None
    decided_by: str | None
    decided_at: datetime | None
    rank: int | None
    score: float | None
    qa_status: str
    flagged: dict[str, str]  # check -> verdict, for checks that did not pass
    slots: dict[str, str]
    starred: bool
    created_at: datetime


def find_creatives(
    s: Session, f: CreativeFilter, *, viewer: str | None = None
) -> tuple[list[CreativeRow], int]:
    """One page of creatives matching ``f`` and how many match in all; ``starred`` is
    whether ``viewer`` starred each."""
    cur = aliased(Decision)
    query = _filtered(select(Job, Asset, cur), f, cur)
    total = s.scalar(_filtered(select(func.count(Job.key)), f, cur)) or 0
    query = query.order_by(*_order(f.sort, cur)).limit(max(1, f.limit)).offset(max(0, f.offset))
    page = s.execute(query).all()
    keys = [job.key for job, _, _ in page]
    slots, flagged = _slots(s, keys), _flagged(s, keys)
    starred = _starred(s, [job.creative_id for job, _, _ in page], viewer)
    rows = [
        CreativeRow(
            id=asset.id,
            job_key=job.key,
            campaign_id=job.campaign_id,
            channel=job.channel,
            segment=job.segment,
            locale=job.locale,
            backend=job.backend,
            model=job.model,
            seed=job.seed,
            prompt=job.prompt,
            width=asset.width,
            height=asset.height,
            state=d.state if d else None,
            decided_by=d.actor if d else None,
            decided_at=d.at if d else None,
            rank=d.rank if d else None,
            score=d.score if d else None,
            qa_status=str((job.qa or {}).get("status", "")),
            flagged=flagged.get(job.key, {}),
            slots=slots.get(job.key, {}),
            starred=asset.id in starred,
            created_at=job.created_at,
        )
        for job, asset, d in page
    ]
    return rows, int(total)


def _filtered(query: Any, f: CreativeFilter, cur: Any) -> Any:
    """``query`` (a select over jobs) joined and narrowed by ``f``."""
    latest = (
        select(Decision.asset_id, func.max(Decision.id).label("id"))
        .group_by(Decision.asset_id)
        .subquery()
    )
    query = (
        query.select_from(Job)
        .join(Asset, Asset.id == Job.creative_id)
        .outerjoin(latest, latest.c.asset_id == Job.creative_id)
        .outerjoin(cur, cur.id == latest.c.id)
    )
    if f.run_id:
        query = query.join(RunJob, and_(RunJob.job_key == Job.key, RunJob.run_id == f.run_id))
    where: list[Any] = []
    if f.campaign:
        where.append(Job.campaign_id == f.campaign)
    if f.decision:
        where.append(cur.state == f.decision)
    for column, value in ((Job.channel, f.channel), (Job.segment, f.segment),
                          (Job.locale, f.locale), (Job.model, f.model)):  # fmt: skip
        if value:
            where.append(column == value)
    if f.failing:
        where.append(
            select(JobCheck.job_key)
            .where(
                JobCheck.job_key == Job.key,
                JobCheck.name == f.failing,
                JobCheck.verdict == f.verdict,
            )
            .exists()
        )
    for name, value in f.slots.items():
        where.append(
            select(JobSlot.job_key)
            .where(JobSlot.job_key == Job.key, JobSlot.name == name, JobSlot.value == value)
            .exists()
        )
    if f.starred_by:
        where.append(
            select(Star.asset_id)
            .where(Star.asset_id == Job.creative_id, Star.user == f.starred_by)
            .exists()
        )
    if f.text and f.text.strip():
        where.append(_text(f.text.strip()))
    return query.where(*where) if where else query


def _text(text: str) -> Any:
    like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    terms = [
        Job.prompt.ilike(like, escape="\\"),
        Job.model.ilike(like, escape="\\"),
        Job.creative_id.startswith(text, autoescape=True),
    ]
    if text.lstrip("-").isdigit() and -(2**63) <= int(text) < 2**63:
        terms.append(Job.seed == int(text))
    return or_(*terms)


def _order(sort: str, cur: Any) -> list[Any]:
    if sort == "newest":
        return [Job.created_at.desc(), Job.creative_id]
    if sort == "score":
        return [cur.score.is_(None), cur.score.desc(), Job.creative_id]
    # the contact sheet's order: channel -> segment -> locale, best first in each cell
    return [Job.channel, Job.segment, Job.locale, cur.rank.is_(None), cur.rank, Job.creative_id]


def _slots(s: Session, keys: Sequence[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for chunk in chunks(list(keys)):
        for row in s.scalars(select(JobSlot).where(JobSlot.job_key.in_(chunk))):
            out.setdefault(row.job_key, {})[row.name] = row.value
    return out


def _flagged(s: Session, keys: Sequence[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for chunk in chunks(list(keys)):
        q = select(JobCheck).where(JobCheck.job_key.in_(chunk), JobCheck.verdict != "pass")
        for row in s.scalars(q):
            out.setdefault(row.job_key, {})[row.name] = row.verdict
    return out


def _starred(s: Session, ids: Sequence[str], viewer: str | None) -> set[str]:
    if viewer is None or not ids:
        return set()
    out: set[str] = set()
    for chunk in chunks(list(ids)):
        q = select(Star.asset_id).where(Star.user == viewer, Star.asset_id.in_(chunk))
        out.update(s.scalars(q))
    return out


def facets(s: Session, run_id: str | None) -> dict[str, list[str]]:
    """The values each filter can take (within a run, if given), for the gallery's menus."""
    jobs = select(Job.key)
    if run_id:
        jobs = jobs.join(RunJob, and_(RunJob.job_key == Job.key, RunJob.run_id == run_id))
    keys = jobs.scalar_subquery()
    out: dict[str, list[str]] = {}
    for name, column in (("channel", Job.channel), ("segment", Job.segment),
                         ("locale", Job.locale), ("model", Job.model)):  # fmt: skip
        q = select(column).where(Job.key.in_(keys), column.is_not(None)).distinct()
        out[name] = sorted(str(v) for v in s.scalars(q))
    q = select(JobCheck.name).where(JobCheck.job_key.in_(keys), JobCheck.verdict != "pass")
    out["check"] = sorted(set(s.scalars(q.distinct())))
    for name, value in s.execute(
        select(JobSlot.name, JobSlot.value).where(JobSlot.job_key.in_(keys)).distinct()
    ):
        out.setdefault(f"slot:{name}", []).append(value)
    for key in out:
        out[key].sort()
    return out


def set_star(s: Session, user: str, asset_id: str, on: bool) -> bool:
    """Star (or unstar) a creative for ``user``; True if that changed anything."""
    row = s.get(Star, (user, asset_id))
    if on and row is None:
        s.add(Star(user=user, asset_id=asset_id))
        return True
    if not on and row is not None:
        s.delete(row)
        return True
    return False
