"""The REST API under ``/api/v1``: typed models in and out, described by the generated
OpenAPI schema, errors as problem+json. Every route names its permission."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from bildwerk.accounts import service
from bildwerk.accounts.roles import Permission
from bildwerk.accounts.sessions import close_session, open_session
from bildwerk.catalog.audit import verify
from bildwerk.web.auth import COOKIE, PUBLIC, Principal, needs

router = APIRouter(prefix="/api/v1")
Reader = Annotated[Principal, needs(Permission.READ)]
Auditor = Annotated[Principal, needs(Permission.AUDIT)]
Admin = Annotated[Principal, needs(Permission.MANAGE_USERS)]


class Credentials(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    name: str
    roles: list[str]
    via: str
    csrf: str = Field("", description="send it as X-CSRF-Token with changes (sessions)")


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    roles: list[str] = Field(min_length=1)
    password: str | None = Field(None, description="unset: an account for API tokens only")


class UserOut(BaseModel):
    name: str
    roles: list[str]
    disabled: bool
    has_password: bool
    created_at: datetime | None


class RunOut(BaseModel):
    id: str
    campaign_id: str | None = None
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    planned: int = 0
    generated: int = 0
    cached: int = 0
    failed: int = 0


class AuditOut(BaseModel):
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    broken_at: int | None
    problem: str


def _me(who: Principal) -> Me:
    return Me(name=who.account.name, roles=sorted(who.account.roles), via=who.via, csrf=who.csrf)


def _user(account: service.Account) -> UserOut:
    return UserOut(name=account.name, roles=sorted(account.roles), disabled=account.disabled,
                   has_password=account.has_password, created_at=account.created_at)  # fmt: skip


@router.post("/session", response_model=Me, openapi_extra={"x-permission": PUBLIC})
def login(body: Credentials, request: Request, response: Response) -> Me:
    """Log in: sets the session cookie and returns the CSRF token for changes."""
    app = request.app.state
    client = request.client.host if request.client else "?"
    keys = (f"name:{body.name}", f"client:{client}")
    if app.throttle.blocked(*keys):
        raise HTTPException(429, "too many failed logins: wait 15 minutes")
    try:
        cookie, session = open_session(app.workspace.db, body.name, body.password, source=client)
    except service.LoginError as exc:
        app.throttle.failed(*keys)
        raise HTTPException(401, exc.message) from None
    response.set_cookie(
        COOKIE, cookie, httponly=True, samesite="lax", secure=request.url.scheme == "https",
        max_age=int((session.expires_at - datetime.now(session.expires_at.tzinfo)).total_seconds()),
        path="/",
    )  # fmt: skip
    return _me(Principal(session.account, "session", session.csrf))


@router.delete("/session", status_code=204)
def logout(request: Request, response: Response, who: Reader) -> None:
    """Log out: the session ends on the server, the cookie is cleared."""
    cookie = request.cookies.get(COOKIE)
    if cookie:
        close_session(request.app.state.workspace.db, cookie)
    response.delete_cookie(COOKIE, path="/")


@router.get("/me", response_model=Me)
def me(who: Reader) -> Me:
    """Who the request is, with which roles."""
    return _me(who)


@router.get("/runs", response_model=list[RunOut])
def runs(request: Request, who: Reader, limit: int = 50) -> list[RunOut]:
    """The newest runs first."""
    rows: list[dict[str, Any]] = request.app.state.workspace.runs_summary(max(1, min(limit, 500)))
    return [RunOut.model_validate(row) for row in rows]


@router.get("/audit", response_model=AuditOut)
def audit(request: Request, who: Auditor, expect: str | None = None) -> AuditOut:
    """Recompute the audit chain (see ``bildwerk audit verify``)."""
    with request.app.state.workspace.db.session(write=False) as s:
        return AuditOut(**asdict(verify(s, expect=expect)))


@router.get("/users", response_model=list[UserOut])
def users(request: Request, who: Admin) -> list[UserOut]:
    """Every account."""
    return [_user(a) for a in service.users(request.app.state.workspace.db)]


@router.post("/users", response_model=UserOut, status_code=201)
def add_user(body: NewUser, request: Request, who: Admin) -> UserOut:
    """Add an account (admins)."""
    account = service.add_user(request.app.state.workspace.db, body.name, body.roles,
                               password=body.password, actor=who.account.name)  # fmt: skip
    return _user(account)
