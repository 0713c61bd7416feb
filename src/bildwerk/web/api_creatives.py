"""Creatives over the API: filter and page them, one creative's record, its renditions and
thumbnails, decisions (approve, reject, undo) with live updates, stars, rights, and
publishing a run."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from bildwerk.accounts.governance import Actor
from bildwerk.accounts.roles import Permission
from bildwerk.catalog.models import Decision
from bildwerk.catalog.repo.creatives import SORTS, CreativeFilter
from bildwerk.errors import UserError
from bildwerk.events import EventStream, operation_id
from bildwerk.usecases import creatives as uc
from bildwerk.web.auth import Principal, needs
from bildwerk.web.feeds import MAX_SECONDS, SSE_RESPONSES, Item, event_stream, last_event_id
from bildwerk.web.params import MAX_INT, After, ObjectId, UtcDatetime

router = APIRouter(prefix="/api/v1")
Reader = Annotated[Principal, needs(Permission.READ)]
Reviewer = Annotated[Principal, needs(Permission.DECIDE)]
Publisher = Annotated[Principal, needs(Permission.PUBLISH)]
Rights = Annotated[Principal, needs(Permission.RIGHTS)]
Creator = Annotated[Principal, needs(Permission.RUN)]
_log = logging.getLogger("bildwerk.web")
YEAR = "private, max-age=31536000, immutable"
FORMATS = ("avif", "webp", "jpeg")
WEBP: dict[int | str, dict[str, Any]] = {
    200: {"description": "a WebP image", "content": {"image/webp": {}}}
}


class CreativeOut(BaseModel):
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
    decided_at: UtcDatetime | None
    rank: int | None
    score: float | None
    qa_status: str
    flagged: dict[str, str]
    slots: dict[str, str]
    starred: bool
    created_at: UtcDatetime


class CreativePageOut(BaseModel):
    items: list[CreativeOut]
    total: int
    limit: int
    offset: int
    facets: dict[str, list[str]] | None = None


class DecisionIn(BaseModel):
    state: Literal["approved", "rejected"]
    reason: str | None = Field(None, max_length=2000, description="required to reject")
    override: bool = Field(False, description="approve a rejected creative, or (admins) "
                           "approve despite separation of duties; needs a reason")  # fmt: skip


class DecisionOut(BaseModel):
    id: str
    state: str
    actor: str
    reasons: list[str]
    previous: str | None


class RightsIn(BaseModel):
    expires_on: dt.date | None = None
    clear_expiry: bool = False


class RevokeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class PublishIn(BaseModel):
    targets: list[str] = Field(default_factory=list, description="default: every target")
    override: str | None = Field(None, max_length=2000, description="admins: publish own "
                                 "approvals anyway, with this reason (audited)")  # fmt: skip


def _ws(request: Request) -> Any:
    return request.app.state.workspace


def _slots(values: list[str]) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, value = v.partition(":")
        if not sep or not name:
            raise UserError(f"slot filter {v!r}: write it as name:value, e.g. product:serum")
        out[name] = value
    return out


@router.get("/creatives", response_model=CreativePageOut)
def list_creatives(
    request: Request,
    who: Reader,
    run: str | None = None,
    campaign: str | None = None,
    decision: Literal["approved", "rejected", "needs_review", "queued"] | None = None,
    failing: Annotated[str | None, Query(max_length=64, description="a check's name")] = None,
    verdict: Literal["fail", "warn", "unchecked"] = "fail",
    slot: Annotated[list[str], Query(description="name:value, repeatable")] = [],  # noqa: B006
    channel: str | None = None,
    segment: str | None = None,
    locale: str | None = None,
    model: str | None = None,
    q: Annotated[str | None, Query(max_length=200, description="prompt, model, seed, id")] = None,
    starred: bool = False,
    sort: Annotated[str, Query(pattern="^(" + "|".join(SORTS) + ")$")] = "rank",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    facets: bool = False,
) -> CreativePageOut:
    """Creatives matching every given filter, in the contact sheet's order by default."""
    f = CreativeFilter(
        run_id=run, campaign=campaign, decision=decision, failing=failing, verdict=verdict,
        slots=_slots(slot), channel=channel, segment=segment, locale=locale, model=model,
        text=q, starred_by=who.account.name if starred else None, sort=sort,  # type: ignore[arg-type]
        limit=limit, offset=offset,
    )  # fmt: skip
    page = uc.creatives(_ws(request), f, viewer=who.account.name, with_facets=facets)
    return CreativePageOut.model_validate(page.to_json())


@router.get("/creatives/{creative_id}")
def get_creative(creative_id: ObjectId, request: Request, who: Reader) -> dict[str, Any]:
    """Everything recorded about one creative (its lineage)."""
    return uc.creative(_ws(request), creative_id)


@router.get(
    "/creatives/{creative_id}/renditions/{fmt}/{width}",
    response_class=FileResponse,
    responses={200: {"description": "the file", "content": {f"image/{f}": {} for f in FORMATS}}},
)
def rendition(
    creative_id: ObjectId,
    fmt: Literal["avif", "webp", "jpeg"],
    width: int,
    request: Request,
    who: Reader,
) -> FileResponse:
    """One rendition's bytes as rendered (before stamping)."""
    path, sha = uc.rendition_file(_ws(request), creative_id, fmt, width)
    return FileResponse(path, media_type=f"image/{fmt}",
                        headers={"Cache-Control": YEAR, "ETag": f'"{sha}"'})  # fmt: skip


@router.get("/creatives/{creative_id}/thumb/{width}", response_class=FileResponse,
            responses=WEBP)  # fmt: skip
def thumb(creative_id: ObjectId, width: int, request: Request, who: Reader) -> FileResponse:
    """A small WebP for galleries (160, 320 or 640 px wide), cacheable for a year."""
    path, tag = uc.thumbnail(_ws(request), creative_id, width)
    return FileResponse(path, media_type="image/webp",
                        headers={"Cache-Control": YEAR, "ETag": f'"{tag}"'})  # fmt: skip


@router.get("/creatives/{creative_id}/evidence", response_class=FileResponse,
            responses=WEBP)  # fmt: skip
def evidence(creative_id: ObjectId, request: Request, who: Reader) -> FileResponse:
    """The creative with the boxes behind every failing or warning check drawn on it."""
    path, tag = uc.evidence_image(_ws(request), creative_id)
    return FileResponse(path, media_type="image/webp",
                        headers={"Cache-Control": YEAR, "ETag": f'"{tag}"'})  # fmt: skip


@router.post("/creatives/{creative_id}/decisions", response_model=DecisionOut, status_code=201)
def decide(creative_id: ObjectId, body: DecisionIn, request: Request, who: Reviewer) -> DecisionOut:
    """Approve or reject (with a reason); separation of duties applies."""
    row = _ws(request).decide(
        creative_id, body.state, actor=who.account.name, reason=body.reason,
        override=body.override, governed=Actor(who.account.name, who.account.roles),
    )  # fmt: skip
    return DecisionOut.model_validate(row)


@router.post("/creatives/{creative_id}/undo", response_model=DecisionOut, status_code=201)
def undo(creative_id: ObjectId, request: Request, who: Reviewer) -> DecisionOut:
    """Take back your latest decision on this creative."""
    return DecisionOut.model_validate(_ws(request).undo(creative_id, actor=who.account.name))


class ReproduceOut(BaseModel):
    events: str = Field(description="follow it at /api/v1/runs/{events}/events[/stream]")


@router.post("/creatives/{creative_id}/reproduce", response_model=ReproduceOut,
             status_code=202)  # fmt: skip
def reproduce(
    creative_id: ObjectId, request: Request, response: Response, who: Creator
) -> ReproduceOut:
    """Make the creative again from its record, in the background; its last event says
    whether the pixels are identical."""
    ws = _ws(request)
    uc.creative_exists(ws, creative_id)
    stream = operation_id("reproduce")
    queued = EventStream(ws.db, stream)  # the stream exists before the answer names it
    queued.emit("message", message=f"reproducing {creative_id}: queued")
    queued.flush_now()
    request.app.state.jobs.submit(_reproduce, ws, creative_id, stream)
    response.headers["Location"] = f"/api/v1/runs/{stream}/events"
    return ReproduceOut(events=stream)


def _reproduce(ws: Any, creative_id: str, stream: str) -> None:
    try:
        ws.reproduce(creative_id, stream_id=stream)
    except Exception:  # recorded as the stream's failed run.finished
        _log.warning("reproduce %s failed", creative_id, exc_info=True)


@router.put("/creatives/{creative_id}/star", status_code=204)
def star(creative_id: ObjectId, request: Request, who: Reader) -> None:
    """Star a creative (your favourites; others do not see them)."""
    uc.star(_ws(request), creative_id, user=who.account.name, on=True)


@router.delete("/creatives/{creative_id}/star", status_code=204)
def unstar(creative_id: ObjectId, request: Request, who: Reader) -> None:
    uc.star(_ws(request), creative_id, user=who.account.name, on=False)


def _decisions(ws: Any, after: int) -> list[Item]:
    with ws.db.session(write=False) as s:
        q = select(Decision).where(Decision.id > after).order_by(Decision.id).limit(500)
        return [(d.id, "decision", {"id": d.id, "creative": d.asset_id, "state": d.state,
                                    "actor": d.actor, "reasons": list(d.reasons),
                                    "at": d.at.isoformat()}) for d in s.scalars(q)]  # fmt: skip


@router.get(
    "/decisions/stream",
    response_class=StreamingResponse,
    responses=SSE_RESPONSES,
)
async def follow_decisions(
    request: Request,
    who: Reader,
    after: After = None,
    last_event: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    seconds: Annotated[float, Query(ge=0, le=MAX_SECONDS)] = MAX_SECONDS,
) -> StreamingResponse:
    """Every new decision, live, as Server-Sent Events (reviewers see each other's)."""
    ws = _ws(request)

    def head() -> int:
        with ws.db.session(write=False) as s:
            return int(s.scalar(select(func.max(Decision.id))) or 0)

    start = last_event_id(last_event, after)
    if start == 0 and after is None:
        start = await run_in_threadpool(head)  # from now on, unless asked to replay
    items = request.app.state.feeds.follow(
        "decisions", lambda a: _decisions(ws, a), head, start, lookback=200, seconds=seconds
    )
    return event_stream(items)


@router.put("/creatives/{creative_id}/rights")
def set_rights(
    creative_id: ObjectId, body: RightsIn, request: Request, who: Rights
) -> dict[str, Any]:
    """Set or clear a creative's licence expiry (expired creatives are taken down by
    ``bildwerk publish --sync``)."""
    publisher = _ws(request).publisher(who.account.name)
    return dict(publisher.set_rights(creative_id, expires_on=body.expires_on,
                                     clear_expiry=body.clear_expiry))  # fmt: skip


@router.post("/creatives/{creative_id}/revoke")
def revoke(creative_id: ObjectId, body: RevokeIn, request: Request, who: Rights) -> dict[str, Any]:
    """Revoke a creative: it is never published again and taken down at the next sync."""
    return dict(
        _ws(request).publisher(who.account.name).set_rights(creative_id, revoke=body.reason)
    )


@router.post("/runs/{run_id}/publish")
def publish(run_id: ObjectId, body: PublishIn, request: Request, who: Publisher) -> dict[str, Any]:
    """Publish a run's approved creatives to the targets; a creative you approved yourself
    is skipped (someone else must approve it) unless an admin overrides."""
    ws = _ws(request)
    governed = Actor(who.account.name, who.account.roles)
    report = ws.publisher(who.account.name, governed=governed).publish(
        run_id, body.targets, override=body.override
    )
    return asdict(report)
