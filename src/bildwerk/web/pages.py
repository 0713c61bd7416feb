"""The web app's pages: server-rendered HTML (Jinja2) over the same use cases as the API,
with one small script of our own (``static/app.js``) for live progress, keyboard review
and compare. Forms carry the session's CSRF token; every route declares its permission."""

from __future__ import annotations

import difflib
import hashlib
import json
from datetime import date, datetime
from itertools import groupby
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from bildwerk.accounts.governance import Actor
from bildwerk.accounts.roles import Permission, allowed
from bildwerk.accounts.sessions import close_session
from bildwerk.catalog.audit import verify
from bildwerk.catalog.models import AuditEntry
from bildwerk.catalog.repo import live_publications_of
from bildwerk.catalog.repo.creatives import CreativeFilter
from bildwerk.checks.annotate import evidence_boxes
from bildwerk.errors import BildwerkError
from bildwerk.usecases import briefs
from bildwerk.usecases import creatives as uc
from bildwerk.web.auth import COOKIE, PUBLIC, Principal, attempt_login, needs, set_session_cookie
from bildwerk.web.params import ObjectId
from bildwerk.web.problems import status_of

HERE = Path(__file__).parent
STATIC = HERE / "static"
QUICK_REASONS = ("off-brand colour", "text hard to read", "logo wrong", "product distorted",
                 "looks like another variant")  # fmt: skip
GALLERY_PAGE = 1000

router = APIRouter(include_in_schema=False)
Reader = Annotated[Principal, needs(Permission.READ)]
Creator = Annotated[Principal, needs(Permission.RUN)]
Publisher = Annotated[Principal, needs(Permission.PUBLISH)]
Rights = Annotated[Principal, needs(Permission.RIGHTS)]
Auditor = Annotated[Principal, needs(Permission.AUDIT)]


def _asset_versions() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:10] for p in STATIC.iterdir()}


def _when(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M") + (" UTC" if value.utcoffset() is not None else "")
    return "" if value is None else str(value)


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["when"] = _when
_VERSIONS = _asset_versions()
templates.env.globals["static"] = lambda name: f"/static/{name}?v={_VERSIONS.get(name, '0')}"


def render(
    request: Request, template: str, who: Principal | None, status: int = 200, **context: Any
) -> HTMLResponse:
    """A page, with who is asking and what they may do (for menus and buttons)."""

    def may(permission: str) -> bool:
        return who is not None and allowed(who.account.roles, Permission(permission))

    page = template.removesuffix(".html")
    context.setdefault("title", page.replace("_", " ").capitalize())
    return templates.TemplateResponse(
        request, template, {"who": who, "may": may, "page": page, **context},
        status_code=status,
    )  # fmt: skip


def error_page(request: Request, status: int, detail: str, hint: str | None) -> Response:
    """How pages answer errors: a login redirect for 401, else a page saying what failed."""
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
    title = {403: "Not allowed", 404: "Not found"}.get(status, "Something went wrong")
    return render(request, "error.html", None, status, title=title, detail=detail, hint=hint)


def _ws(request: Request) -> Any:
    return request.app.state.workspace


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


# ---------------------------------------------------------------- sessions


@router.get("/login", openapi_extra={"x-permission": PUBLIC})
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", None, next=_local(next), name="", error=None)


@router.post("/login", openapi_extra={"x-permission": PUBLIC})
def login(
    request: Request,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form()] = "/",
) -> Response:
    try:
        cookie, session = attempt_login(request, name, password)
    except HTTPException as exc:
        return render(request, "login.html", None, exc.status_code, next=_local(next),
                      name=name, error=exc.detail)  # fmt: skip
    response = _back(_local(next))
    set_session_cookie(response, request, cookie, session)
    return response


def _local(target: str) -> str:
    """Only a path on this site (never ``//elsewhere`` or a full URL): no open redirect."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/logout")
def logout(request: Request, who: Reader) -> Response:
    cookie = request.cookies.get(COOKIE)
    if cookie:
        close_session(_ws(request).db, cookie)
    response = _back("/login")
    response.delete_cookie(COOKIE, path="/")
    return response


# ---------------------------------------------------------------- runs


@router.get("/")
def runs(request: Request, who: Reader) -> HTMLResponse:
    return render(request, "runs.html", who, title="Runs", runs=_ws(request).runs_summary(100))


@router.get("/runs/new")
def new_run(request: Request, who: Creator, brief: str = "") -> HTMLResponse:
    ws = _ws(request)
    return render(request, "new_run.html", who, title="New run", page="new",
                  briefs=briefs.briefs(ws), chosen=brief, plan=None, error=None)  # fmt: skip


@router.post("/runs/new")
async def plan_run(
    request: Request,
    who: Creator,
    brief: Annotated[str, Form()] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> HTMLResponse:
    """The plan of a picked or uploaded brief, or the brief's errors where they are."""
    ws = _ws(request)
    chosen, plan, error = brief, None, None
    try:
        if file is not None and file.filename:
            data = await file.read(briefs.MAX_BRIEF_BYTES + 1)
            path = await run_in_threadpool(briefs.save_upload, ws, file.filename, data)
            chosen = str(path.relative_to(ws.root))
        elif not brief:
            raise HTTPException(422, "pick a brief or upload one")
        path = briefs.workspace_brief(ws, chosen)
        plan = (await run_in_threadpool(ws.plan, path)).to_json(jobs=False)
    except BildwerkError as exc:
        error = _problem(exc)
    except HTTPException as exc:
        error = {"detail": exc.detail, "errors": [], "hint": None}
    status = 200 if error is None else 422
    return render(request, "new_run.html", who, status, title="New run", page="new",
                  briefs=briefs.briefs(ws), chosen=chosen, plan=plan, error=error)  # fmt: skip


def _problem(exc: BildwerkError) -> dict[str, Any]:
    errors = []
    path = getattr(exc, "path", None)
    if path is not None and hasattr(exc, "detail"):
        errors = [{"file": path.name, "line": getattr(exc, "line", None),
                   "field": getattr(exc, "field", None), "message": exc.detail}]  # fmt: skip
    return {"detail": exc.message, "errors": errors, "hint": exc.hint}


@router.post("/runs")
def submit_run(request: Request, who: Creator, brief: Annotated[str, Form()]) -> Response:
    ws = _ws(request)
    path = briefs.workspace_brief(ws, brief)
    actor = Actor(who.account.name, who.account.roles)
    row = ws.submit(path, actor=actor.name, governed=actor)
    return _back(f"/runs/{row['run_id']}")


@router.get("/runs/{run_id}")
def gallery(
    request: Request,
    run_id: ObjectId,
    who: Reader,
    decision: str = "",
    failing: str = "",
    channel: str = "",
    segment: str = "",
    locale: str = "",
    model: str = "",
    slot: Annotated[list[str], Query()] = [],  # noqa: B006
    q: Annotated[str, Query(max_length=200)] = "",
    sort: Annotated[str, Query(pattern="^(rank|score|newest)$")] = "rank",
    starred: bool = False,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    """A run's creatives grouped like the contact sheet, with filters and keyboard review."""
    ws = _ws(request)
    info = ws.run_row(run_id)
    slots = dict(s.split(":", 1) for s in slot if ":" in s)
    f = CreativeFilter(
        run_id=info["id"], decision=decision or None, failing=failing or None,
        channel=channel or None, segment=segment or None, locale=locale or None,
        model=model or None, slots=slots, text=q or None, sort=sort,  # type: ignore[arg-type]
        starred_by=who.account.name if starred else None, limit=GALLERY_PAGE, offset=offset,
    )  # fmt: skip
    page = uc.creatives(ws, f, viewer=who.account.name, with_facets=True)
    facets = page.facets or {}
    cells = groupby(page.items, key=lambda c: (c.channel or "", c.segment or "", c.locale or ""))
    groups = [(key, list(items)) for key, items in cells]
    run = {**info, "submitted_by": (info.get("options") or {}).get("submitted_by")}
    slot_facets = [(k.removeprefix("slot:"), v) for k, v in facets.items() if k.startswith("slot:")]
    return render(request, "gallery.html", who, title=f"Run {info['id']}", page="gallery",
                  run=run, f=f, facets=facets, slot_facets=slot_facets, page_=page,
                  groups=groups, quick_reasons=QUICK_REASONS)  # fmt: skip


# ---------------------------------------------------------------- creatives


@router.get("/compare")
def compare(
    request: Request,
    who: Reader,
    id: Annotated[list[str], Query(max_length=4)] = [],  # noqa: B006
) -> HTMLResponse:
    """2-4 creatives side by side, with what differs between them."""
    ids = list(dict.fromkeys(id))
    if not 2 <= len(ids) <= 4:
        raise HTTPException(422, "compare 2 to 4 creatives: add them with 'c' in a gallery")
    records = [uc.creative(_ws(request), cid) for cid in ids]
    items = []
    for r in records:
        boxes = [{"x": x0, "y": y0, "w": x1 - x0, "h": y1 - y0, "verdict": k["verdict"],
                  "check": k["name"]}
                 for k in r["qa"]["checks"] if k["verdict"] != "pass"
                 for x0, y0, x1, y1 in evidence_boxes(k.get("evidence") or {})]  # fmt: skip
        state = r["decisions"][-1]["state"] if r["decisions"] else None
        items.append({"id": r["id"], "width": r["width"], "height": r["height"],
                      "boxes": boxes, "state": state})  # fmt: skip
    return render(request, "compare.html", who, title="Compare", items=items,
                  diffs=_differences(records))  # fmt: skip


def _differences(records: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    flat = [_flatten(r["request"]) for r in records]
    names = sorted({k for f in flat for k in f})
    rows = [(n, [f.get(n, "—") for f in flat]) for n in names]
    return [(n, values) for n, values in rows if len(set(values)) > 1]


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value if isinstance(value, str) else json.dumps(value, default=str)}


@router.get("/creatives/{creative_id}")
def creative(request: Request, creative_id: ObjectId, who: Reader) -> HTMLResponse:
    """One creative's lineage: request, checks, decisions, renditions, rights, runs."""
    c = uc.creative(_ws(request), creative_id)
    diff = ""
    brief = c.get("brief")
    if brief and brief.get("previous"):
        diff = "".join(difflib.unified_diff(
            brief["previous"]["content"].splitlines(keepends=True),
            brief["content"].splitlines(keepends=True), "previous", "this run's",
        ))  # fmt: skip
    state = c["decisions"][-1]["state"] if c["decisions"] else None
    return render(request, "creative.html", who, title=f"Creative {c['id']}", c=c,
                  state=state, brief_diff=diff)  # fmt: skip


@router.post("/creatives/{creative_id}/rights")
def set_rights(
    request: Request, creative_id: ObjectId, who: Rights,
    expires_on: Annotated[date | None, Form()] = None,
) -> Response:  # fmt: skip
    publisher = _ws(request).publisher(who.account.name)
    publisher.set_rights(creative_id, expires_on=expires_on, clear_expiry=expires_on is None)
    return _back(f"/creatives/{creative_id}")


@router.post("/creatives/{creative_id}/revoke")
def revoke(
    request: Request, creative_id: ObjectId, who: Rights,
    reason: Annotated[str, Form(min_length=1, max_length=2000)],
) -> Response:  # fmt: skip
    _ws(request).publisher(who.account.name).set_rights(creative_id, revoke=reason)
    return _back(f"/creatives/{creative_id}")


# ---------------------------------------------------------------- publish, audit


@router.get("/publish")
def publish_page(request: Request, who: Publisher) -> HTMLResponse:
    return _publish_page(request, who)


def _publish_page(
    request: Request, who: Principal, status: int = 200, **extra: Any
) -> HTMLResponse:
    ws = _ws(request)
    waiting = []
    for run in ws.runs_summary(50):
        approved = uc.creatives(ws, CreativeFilter(run_id=run["id"], decision="approved",
                                                   limit=10000))  # fmt: skip
        ids = [c.id for c in approved.items]
        with ws.db.session(write=False) as s:
            live = {p.asset_id for p in live_publications_of(s, ids)}
        if left := [i for i in ids if i not in live]:
            waiting.append((run["id"], left))
    return render(request, "publish.html", who, status, title="Publish", waiting=waiting,
                  targets=list(ws.settings.targets), **extra)  # fmt: skip


@router.post("/publish")
def publish(
    request: Request, who: Publisher, run: Annotated[str, Form(max_length=128)],
    target: Annotated[str, Form(max_length=64)],
) -> HTMLResponse:  # fmt: skip
    ws = _ws(request)
    governed = Actor(who.account.name, who.account.roles)
    try:
        report = ws.publisher(who.account.name, governed=governed).publish(run, [target])
    except BildwerkError as exc:
        return _publish_page(request, who, status_of(exc), error=exc.message)
    return _publish_page(request, who, report=report)


@router.get("/audit")
def audit(
    request: Request, who: Auditor, type: str = "", actor: str = "", subject: str = "",
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:  # fmt: skip
    """The audit log, newest first, with the chain's status."""
    with _ws(request).db.session(write=False) as s:
        chain = verify(s)
        query = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(101)
        if type:
            query = query.where(AuditEntry.type.startswith(type, autoescape=True))
        if actor:
            query = query.where(AuditEntry.actor == actor)
        if subject:
            query = query.where(AuditEntry.subject == subject)
        if before:
            query = query.where(AuditEntry.seq < before)
        rows = list(s.scalars(query))
    entries = [{"seq": e.seq, "at": e.at, "type": e.type, "actor": e.actor, "subject": e.subject,
                "payload": json.loads(e.body).get("payload")} for e in rows[:100]]  # fmt: skip
    more = ""
    if len(rows) > 100:
        more = urlencode({"type": type, "actor": actor, "subject": subject,
                          "before": rows[99].seq})  # fmt: skip
    return render(request, "audit.html", who, title="Audit", chain=chain, entries=entries,
                  q={"type": type, "actor": actor, "subject": subject}, more=more)  # fmt: skip
