"""Browser sessions: opened by a login, found by their cookie, closed by logout or expiry.

The cookie carries 256 random bits; the catalog keeps their SHA-256 with the user, the
session's CSRF token and its expiry, so a leaked database copy opens no session, logout
really ends one, and disabling a user ends all of theirs at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from bildwerk.accounts.service import Account, LoginError, account_of, end_sessions, login
from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import User, WebSession, utcnow

DEFAULT_TTL = timedelta(hours=12)


@dataclass(frozen=True)
class Session:
    """A logged-in browser: who, the CSRF token its forms must send, until when."""

    account: Account
    csrf: str
    expires_at: datetime


def open_session(
    db: Database, name: str, password: str, *, ttl: timedelta = DEFAULT_TTL, source: str = ""
) -> tuple[str, Session]:
    """Log ``name`` in; the cookie value to set and the session. A failure is audited
    (``login.failed``, with ``source``, e.g. the client address) and raises
    :class:`LoginError`."""
    try:
        account = login(db, name, password)
    except LoginError:
        with db.session() as s:
            repo.log_event(s, "login.failed", subject=name[:128], payload={"source": source})
            s.commit()
        raise
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = utcnow() + ttl
    with db.session() as s:
        s.execute(delete(WebSession).where(WebSession.expires_at < utcnow()))  # sweep
        s.add(WebSession(sha256=_digest(cookie), user=account.name, csrf=csrf, expires_at=expires))
        repo.log_event(s, "login.succeeded", subject=account.name, actor=account.name,
                       payload={"source": source})  # fmt: skip
        s.commit()
    return cookie, Session(account, csrf, expires)


def find_session(db: Database, cookie: str) -> Session:
    """The live session a cookie names; :class:`LoginError` when it is unknown, expired,
    or its user was disabled."""
    with db.session(write=False) as s:
        row = s.get(WebSession, _digest(cookie))
        if row is None or _aware(row.expires_at) <= utcnow():
            raise LoginError("the session has ended: log in again")
        user = s.get(User, row.user)
        if user is None or user.disabled:
            raise LoginError("the session has ended: log in again")
        return Session(account_of(user), row.csrf, _aware(row.expires_at))


def close_session(db: Database, cookie: str) -> None:
    """Log out: the session is gone, whatever the browser still holds."""
    with db.session() as s:
        row = s.get(WebSession, _digest(cookie))
        if row is not None:
            s.delete(row)
            repo.log_event(s, "login.logout", subject=row.user, actor=row.user)
            s.commit()


def close_sessions_of(db: Database, user: str) -> int:
    """End every session of ``user``; how many there were. (A changed password or a
    disabled account ends them in its own transaction: :func:`end_sessions`.)"""
    with db.session() as s:
        ended = end_sessions(s, user)
        s.commit()
    return ended


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
