"""Runs over the API: briefs to pick or upload, the plan before submitting, submitting
(202 + Location), a run's state, cancelling, and its progress as pages or live events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Header, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from bildwerk.accounts.roles import Permission, Role
from bildwerk.catalog import repo
from bildwerk.events import END
from bildwerk.usecases import briefs
from bildwerk.web.api import RunOut
from bildwerk.web.auth import Principal, needs
from bildwerk.web.feeds import MAX_SECONDS, SSE_RESPONSES, Item, event_stream, last_event_id
from bildwerk.web.params import After, ObjectId, UtcDatetime

router = APIRouter(prefix="/api/v1")
Reader = Annotated[Principal, needs(Permission.READ)]
Creator = Annotated[Principal, needs(Permission.RUN)]
PAGE = 500


class BriefRef(BaseModel):
    brief: str = Field(description="a brief in the workspace, e.g. campaigns/summer.yaml")
    backend: str | None = Field(None, max_length=64)
    model: str | None = Field(None, max_length=128)


class Uploaded(BaseModel):
    brief: str = Field(description="where the upload is kept, to plan and submit it")


class PlanOut(BaseModel):
    brief: str
    variants: int
    scenes: int
    cached: int
    to_make: int
    full_matrix: int
    strategy: str
    estimated_seconds: float
    workers: int
    per_channel: dict[str, int]
    per_segment: dict[str, int]
    per_locale: dict[str, int]


class Queued(BaseModel):
    run_id: str
    planned: int
    images: int = Field(description="images not made before: what counts against quotas")
    quota: dict[str, int | None] | None = None


class RunDetail(RunOut):
    error: str | None = None
    submitted_by: str | None = None
    cancel_requested: bool = False


class EventOut(BaseModel):
    seq: int
    kind: str
    at: UtcDatetime
    stage: str | None = None
    job: str | None = None
    total: int | None = None
    message: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class EventPage(BaseModel):
    events: list[EventOut]
    after: int = Field(description="ask again with ?after= this for what follows")
    finished: bool


def _ws(request: Request) -> Any:
    return request.app.state.workspace


@router.get("/briefs", response_model=list[str])
def list_briefs(request: Request, who: Creator) -> list[str]:
    """Briefs in the workspace (``campaigns/``), to plan and submit."""
    return briefs.briefs(_ws(request))


@router.post("/briefs", response_model=Uploaded, status_code=201)
async def upload_brief(
    request: Request,
    who: Creator,
    file: Annotated[UploadFile, File(description="a YAML brief, at most 1 MB")],
) -> Uploaded:
    """Upload a brief; it is checked in full (as ``bildwerk plan`` would) before it is
    kept, and an invalid one is refused with the file, line and field."""
    data = await file.read(briefs.MAX_BRIEF_BYTES + 1)
    name = file.filename or "brief.yaml"
    ws = _ws(request)
    path = await run_in_threadpool(briefs.save_upload, ws, name, data)
    return Uploaded(brief=str(path.relative_to(ws.root)))


@router.post("/plans", response_model=PlanOut)
def plan(body: BriefRef, request: Request, who: Creator) -> PlanOut:
    """What a brief would make: the matrix, counts, what is cached, a time estimate."""
    ws = _ws(request)
    path = briefs.workspace_brief(ws, body.brief)
    summary = ws.plan(path, backend=body.backend, model=body.model)
    return PlanOut(brief=body.brief, **summary.to_json(jobs=False))


@router.post("/runs", response_model=Queued, status_code=202)
def submit(body: BriefRef, request: Request, response: Response, who: Creator) -> Queued:
    """Queue a brief's run for the workers; counts against the submitter's quota."""
    from bildwerk.accounts.governance import Actor

    ws = _ws(request)
    path = briefs.workspace_brief(ws, body.brief)
    actor = Actor(who.account.name, who.account.roles)
    row = ws.submit(path, backend=body.backend, model=body.model, actor=actor.name,
                    governed=actor)  # fmt: skip
    response.headers["Location"] = f"/api/v1/runs/{row['run_id']}"
    return Queued.model_validate(row)


@router.get("/runs/{run_id}", response_model=RunDetail)
def get_run(run_id: ObjectId, request: Request, who: Reader) -> RunDetail:
    """One run (an id, a unique prefix, or ``latest``)."""
    info = _ws(request).run_row(run_id)
    return RunDetail.model_validate(
        {**info, "submitted_by": (info.get("options") or {}).get("submitted_by") or None}
    )


@router.post("/runs/{run_id}/cancel", response_model=RunDetail, status_code=202)
def cancel(run_id: ObjectId, request: Request, who: Creator) -> RunDetail:
    """Cancel a queued run, or stop a running one between tasks. Creators cancel their
    own runs; admins anyone's."""
    ws = _ws(request)
    info = ws.run_row(run_id)
    owner = (info.get("options") or {}).get("submitted_by")
    if owner != who.account.name and Role.ADMIN not in who.account.roles:
        raise HTTPException(403, f"run {info['id']} was submitted by {owner or 'the CLI'}; "
                                 "only they or an admin may cancel it")  # fmt: skip
    ws.cancel(info["id"], actor=who.account.name)
    return get_run(info["id"], request, who)


def _events(ws: Any, stream: str, after: int) -> list[Item]:
    with ws.db.session(write=False) as s:
        events = repo.stream_events(s, stream, after=after)[:PAGE]
    return [(e.seq, e.kind, e.to_json()) for e in events]


@router.get("/runs/{run_id}/events", response_model=EventPage)
def events(run_id: ObjectId, request: Request, who: Reader, after: After = None) -> EventPage:
    """A run's progress events after ``after``, oldest first, at most 500 per page."""
    ws = _ws(request)
    stream = ws.stream_id(run_id)
    after = after or 0
    items = _events(ws, stream, after)
    out = [EventOut.model_validate(data) for _, _, data in items]
    return EventPage(events=out, after=out[-1].seq if out else after,
                     finished=any(e.kind == END for e in out))  # fmt: skip


@router.get(
    "/runs/{run_id}/events/stream",
    response_class=StreamingResponse,
    responses=SSE_RESPONSES,
)
async def follow(
    run_id: ObjectId,
    request: Request,
    who: Reader,
    after: After = None,
    last_event: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    seconds: Annotated[float, Query(ge=0, le=MAX_SECONDS)] = MAX_SECONDS,
) -> StreamingResponse:
    """A run's progress as Server-Sent Events (``id`` = sequence); reconnecting with
    ``Last-Event-ID`` resumes after it. The stream ends after ``run.finished``."""
    ws = _ws(request)
    stream = await run_in_threadpool(ws.stream_id, run_id)

    def head() -> int:
        with ws.db.session(write=False) as s:
            return repo.last_event_seq(s, stream)

    items = request.app.state.feeds.follow(
        f"run:{stream}", lambda a: _events(ws, stream, a), head,
        last_event_id(last_event, after), until=lambda item: item[1] == END, seconds=seconds,
    )  # fmt: skip
    return event_stream(items)
