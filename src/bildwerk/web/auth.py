"""Who is asking, and may they: every route declares a :class:`Permission` through
:func:`needs`, and nothing else decides access.

A request is someone by its session cookie (HttpOnly, SameSite=Lax, Secure over HTTPS)
or an ``Authorization: Bearer`` API token, never by a header a client could set itself.
Requests that change something with a cookie must also send the session's CSRF token
(``X-CSRF-Token`` header or ``csrf`` form field); token requests need none, as browsers
never attach tokens on their own. Logins are throttled per name and per client.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from bildwerk.accounts.roles import Permission, allowed
from bildwerk.accounts.service import Account, LoginError, token_account
from bildwerk.accounts.sessions import find_session

COOKIE = "bildwerk_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC = "public"
"""The ``x-permission`` of the few routes anyone may call (logging in)."""


@dataclass(frozen=True)
class Principal:
    """The account behind a request and how it proved itself."""

    account: Account
    via: str  # "session" | "token"
    csrf: str = ""


def principal(request: Request) -> Principal:
    """The request's account; 401 when there is none (or it is no longer valid)."""
    db = request.app.state.workspace.db
    header = request.headers.get("authorization", "")
    try:
        if header.lower().startswith("bearer "):
            return Principal(token_account(db, header[7:].strip()), "token")
        cookie = request.cookies.get(COOKIE)
        if cookie:
            session = find_session(db, cookie)
            return Principal(session.account, "session", session.csrf)
    except LoginError as exc:
        raise HTTPException(401, exc.message) from None
    raise HTTPException(401, "log in, or send an API token as 'Authorization: Bearer …'")


def needs(permission: Permission) -> Any:
    """The dependency a route declares: the caller must hold ``permission`` (403), be
    logged in (401), and send the CSRF token with a cookie on unsafe methods (403)."""

    async def check(request: Request, who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not allowed(who.account.roles, permission):
            roles = ", ".join(sorted(who.account.roles)) or "none"
            raise HTTPException(403, f"{who.account.name} ({roles}) may not {permission}")
        if who.via == "session" and request.method not in SAFE_METHODS:
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
