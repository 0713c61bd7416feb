"""The REST API under ``/api/v1``: typed models in and out, described by the generated
OpenAPI schema, errors as problem+json. Every route names its permission."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from bildwerk.accounts import service
from bildwerk.accounts.roles import Permission, allowed
from bildwerk.accounts.sessions import close_session
from bildwerk.catalog.audit import verify
from bildwerk.web.auth import (
    COOKIE,
    PUBLIC,
    Principal,
    attempt_login,
    needs,
    set_session_cookie,
)
from bildwerk.web.params import ObjectId, UtcDatetime

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
    created_at: UtcDatetime | None


class UserChange(BaseModel):
    roles: list[str] | None = Field(None, min_length=1)
    disabled: bool | None = None


class TokenIn(BaseModel):
    user: str | None = Field(None, description="whose token (admins); default: your own")
    label: str = Field("", max_length=128)


class TokenOut(BaseModel):
    id: str
    user: str
    label: str
    prefix: str
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None
    secret: str | None = Field(None, description="shown once, when the token is created")


class RunOut(BaseModel):
    id: str
    campaign_id: str | None = None
    status: str
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
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
    cookie, session = attempt_login(request, body.name, body.password)
    set_session_cookie(response, request, cookie, session)
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


@router.patch("/users/{name}", response_model=UserOut)
def change_user(name: ObjectId, body: UserChange, request: Request, who: Admin) -> UserOut:
    """Change an account's roles, or disable / enable it (admins)."""
    db = request.app.state.workspace.db
    if body.disabled and name == who.account.name:
        raise HTTPException(409, "you cannot disable your own account")
    account = None
    if body.roles is not None:
        account = service.set_roles(db, name, body.roles, actor=who.account.name)
    if body.disabled is not None:
        account = service.set_disabled(db, name, body.disabled, actor=who.account.name)
    if account is None:
        raise HTTPException(422, "nothing to change: give roles or disabled")
    return _user(account)


def _token(info: service.TokenInfo, secret: str | None = None) -> TokenOut:
    return TokenOut(**asdict(info), secret=secret)


def _may_manage(who: Principal, user: str) -> None:
    """Tokens are one's own to manage; an admin manages anyone's."""
    if user != who.account.name and not allowed(who.account.roles, Permission.MANAGE_USERS):
        raise HTTPException(403, f"{who.account.name} may only manage their own tokens")


@router.get("/tokens", response_model=list[TokenOut])
def tokens(request: Request, who: Reader, user: str | None = None) -> list[TokenOut]:
    """API tokens (never their secrets): yours, or anyone's for admins."""
    user = user or (None if allowed(who.account.roles, Permission.MANAGE_USERS)
                    else who.account.name)  # fmt: skip
    if user is not None:
        _may_manage(who, user)
    return [_token(t) for t in service.tokens(request.app.state.workspace.db, user)]


@router.post("/tokens", response_model=TokenOut, status_code=201)
def create_token(body: TokenIn, request: Request, who: Reader) -> TokenOut:
    """A new API token; its secret is in this answer only."""
    user = body.user or who.account.name
    _may_manage(who, user)
    info, secret = service.create_token(request.app.state.workspace.db, user, label=body.label,
                                        actor=who.account.name)  # fmt: skip
    return _token(info, secret)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(token_id: ObjectId, request: Request, who: Reader) -> TokenOut:
    """Revoke a token at once (yours, or anyone's for admins)."""
    db = request.app.state.workspace.db
    _may_manage(who, service.token(db, token_id).user)
    return _token(service.revoke_token(db, token_id, actor=who.account.name))
