"""Who is asking, and may they: every route declares a :class:`Permission` through
:func:`needs`, and nothing else decides access.

A request is someone by its session cookie (HttpOnly, SameSite=Lax, Secure over HTTPS)
or an ``Authorization: Bearer`` API token, never by a header a client could set itself.
Requests that change something with a cookie must also send the session's CSRF token
(``X-CSRF-Token`` header or ``csrf`` form field); token requests need none, as browsers
never attach tokens on their own. Logins are throttled per name and per client.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response

from bildwerk.accounts.roles import DOING, Permission, Role, allowed
from bildwerk.accounts.service import Account, LoginError, named_account, token_account
from bildwerk.accounts.sessions import Session, find_session, open_session

COOKIE = "bildwerk_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC = "public"
"""The ``x-permission`` of the few routes anyone may call (logging in)."""


@dataclass(frozen=True)
class Principal:
    """The account behind a request and how it proved itself."""

    account: Account
    via: str  # "session" | "token" | "proxy"
    csrf: str = ""


def principal(request: Request) -> Principal:
    """The request's account; 401 when there is none (or it is no longer valid)."""
    ws = request.app.state.workspace
    db = ws.db
    header = request.headers.get("authorization", "")
    proxy = ws.settings.web.trusted_proxy
    try:
        if header.lower().startswith("bearer "):
            return Principal(token_account(db, header[7:].strip()), "token")
        client = request.client.host if request.client else None
        if proxy is not None and proxy.trusts(client) and request.headers.get(proxy.header):
            account = named_account(db, request.headers[proxy.header].strip())
            return Principal(account, "proxy", _proxy_csrf(request, account.name))
        cookie = request.cookies.get(COOKIE)
        if cookie:
            session = find_session(db, cookie)
            return Principal(session.account, "session", session.csrf)
    except LoginError as exc:
        raise HTTPException(401, exc.message) from None
    raise HTTPException(401, "log in, or send an API token as 'Authorization: Bearer …'")


def _proxy_csrf(request: Request, name: str) -> str:
    """A proxy-authenticated browser has no session: its CSRF token is derived from the
    app's secret (new at each start) and the name, so forms work and other sites cannot
    forge one."""
    secret: bytes = request.app.state.secret
    return hmac.new(secret, f"csrf:{name}".encode(), hashlib.sha256).hexdigest()


def needs(permission: Permission) -> Any:
    """The dependency a route declares: the caller must hold ``permission`` (403), be
    logged in (401), and send the CSRF token with a cookie on unsafe methods (403)."""

    async def check(request: Request, who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not allowed(who.account.roles, permission):
            roles = ", ".join(sorted(who.account.roles)) or "none"
            raise HTTPException(
                403,
                f"{who.account.name} ({roles}) may not {DOING[permission]}: ask an admin "
                f"for a role that may ({', '.join(r for r in Role if allowed({r}, permission))})",
            )
        if who.via in ("session", "proxy") and request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER)
            if sent is None and "form" in request.headers.get("content-type", ""):
                sent = str((await request.form()).get("csrf") or "")
            if not sent or sent != who.csrf:
                raise HTTPException(403, "missing or wrong CSRF token: reload the page")
        return who

    check.permission = permission  # type: ignore[attr-defined]  # read by route audits
    return Depends(check)


def route_permission(route: Any) -> str | None:
    """The permission a route's :func:`needs` declares, ``public`` for routes marked
    :data:`PUBLIC`, None for a route that declares nothing (a bug the tests catch)."""
    if (route.openapi_extra or {}).get("x-permission") == PUBLIC:
        return PUBLIC
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if getattr(dep.call, "permission", None) is not None:
            return str(dep.call.permission)
        stack.extend(dep.dependencies)
    return None


class Throttle:
    """At most ``limit`` failed logins per key (a name, a client) in ``window`` seconds."""

    def __init__(
        self, limit: int = 5, window: float = 900.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def blocked(self, *keys: str) -> bool:
        now = self.clock()
        for key in keys:
            seen = self._failures[key]
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if len(seen) >= self.limit:
                return True
        return False

    def failed(self, *keys: str) -> None:
        for key in keys:
            self._failures[key].append(self.clock())


def attempt_login(request: Request, name: str, password: str) -> tuple[str, Session]:
    """Log in through the app's throttle (5 failures per name or client in 15 minutes):
    the cookie value and the session; 429 while throttled, 401 for a failure."""
    app = request.app.state
    client = request.client.host if request.client else "?"
    keys = (f"name:{name}", f"client:{client}")
    if app.throttle.blocked(*keys):
        raise HTTPException(429, "too many failed logins: wait 15 minutes")
    try:
        return open_session(app.workspace.db, name, password, source=client)
    except LoginError as exc:
        app.throttle.failed(*keys)
        raise HTTPException(401, exc.message) from None


def set_session_cookie(response: Response, request: Request, cookie: str, session: Session) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure over HTTPS, until it expires."""
    left = session.expires_at - datetime.now(session.expires_at.tzinfo)
    response.set_cookie(
        COOKIE, cookie, httponly=True, samesite="lax", path="/",
        secure=request.url.scheme == "https", max_age=int(left.total_seconds()),
    )  # fmt: skip
