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
    whether ``viewer`` starred each. Only the columns a list shows are read (no spec or
    QA JSON), and the current decision is looked up per row, not for the whole catalog."""
    cur = aliased(Decision)
    columns = (
        Job.key, Job.campaign_id, Job.channel, Job.segment, Job.locale, Job.backend,
        Job.model, Job.seed, Job.prompt, Job.created_at, Asset.id, Asset.width, Asset.height,
        Job.qa["status"].as_string().label("qa_status"), cur.state, cur.actor.label("by"),
        cur.at.label("at"), cur.rank, cur.score,
    )  # fmt: skip
    query = _filtered(select(*columns), f, cur, decided=True)
    total = s.scalar(_filtered(select(func.count(Job.key)), f, cur, decided=bool(f.decision)))
    query = query.order_by(*_order(f.sort, cur)).limit(max(1, f.limit)).offset(max(0, f.offset))
    page = s.execute(query).all()
    keys = [r.key for r in page]
    slots, flagged = _slots(s, keys), _flagged(s, keys)
    starred = _starred(s, [r.id for r in page], viewer)
    rows = [
        CreativeRow(
            id=r.id,
            job_key=r.key,
            campaign_id=r.campaign_id,
            channel=r.channel,
            segment=r.segment,
            locale=r.locale,
            backend=r.backend,
            model=r.model,
            seed=r.seed,
            prompt=r.prompt,
            width=r.width,
            height=r.height,
            state=r.state,
            decided_by=r.by,
            decided_at=r.at,
            rank=r.rank,
            score=r.score,
            qa_status=str(r.qa_status or ""),
            flagged=flagged.get(r.key, {}),
            slots=slots.get(r.key, {}),
            starred=r.id in starred,
            created_at=r.created_at,
        )
        for r in page
    ]
    return rows, int(total or 0)


def _filtered(query: Any, f: CreativeFilter, cur: Any, *, decided: bool) -> Any:
    """``query`` (a select over jobs) joined and narrowed by ``f``; with ``decided``, the
    current decision is joined as ``cur`` (the newest ``decisions`` row of the creative)."""
    query = query.select_from(Job).join(Asset, Asset.id == Job.creative_id)
    if decided:
        newest = (
            select(func.max(Decision.id))
            .where(Decision.asset_id == Job.creative_id)
            .correlate(Job)
            .scalar_subquery()
        )
        query = query.outerjoin(cur, cur.id == newest)
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
        checks = select(JobCheck.job_key).where(
            JobCheck.name == f.failing, JobCheck.verdict == f.verdict
        )
        where.append(Job.key.in_(checks))
    for name, value in f.slots.items():
        having = select(JobSlot.job_key).where(JobSlot.name == name, JobSlot.value == value)
        where.append(Job.key.in_(having))
    if f.starred_by:
        mine = select(Star.asset_id).where(Star.user == f.starred_by)
        where.append(Job.creative_id.in_(mine))
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
