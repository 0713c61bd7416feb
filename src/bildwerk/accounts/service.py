"""Accounts as use cases: add users, change their roles, disable them, log in, and issue,
resolve and revoke API tokens. The CLI and the web app call these; every change is an
audited event (``user.*``, ``token.*``) in the same transaction.

Passwords are hashed with argon2id (argon2-cffi's defaults: 64 MiB, 3 passes, 4 lanes).
Tokens are 256 random bits shown once (``bwk_<id>_<secret>``); the catalog keeps their
SHA-256, enough for a secret that cannot be guessed. A failed login says the same thing
for an unknown user and a wrong password, and takes as long.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from bildwerk.accounts.roles import Role, parse_roles
from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import ApiToken, User, WebSession, utcnow
from bildwerk.errors import NotFoundError, UserError

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD = 12
TOKEN_PREFIX = "bwk_"
_HASHER = PasswordHasher()
# verified against when the user does not exist, so both failures take the same time
_DUMMY = _HASHER.hash(secrets.token_hex(16))


class LoginError(UserError):
    """Wrong name or password, a disabled account, or a bad token: one message for all,
    so a failure tells nobody which accounts exist."""


@dataclass(frozen=True)
class Account:
    """Who is acting: a user's name and roles."""

    name: str
    roles: frozenset[Role]
    disabled: bool = False
    has_password: bool = False
    created_at: datetime | None = None


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    label: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def check_name(name: str) -> str:
    """``name`` if it can be a user name (lowercase letters, digits, ``.``, ``_``, ``-``;
    1-64 characters, starting with a letter or digit)."""
    if not NAME.match(name):
        raise UserError(
            f"user name {name!r} is not allowed",
            hint="use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a "
            "letter or digit",
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    return password


def add_user(
    db: Database, name: str, roles: list[str], *, password: str | None, actor: str
) -> Account:
    """A new user; ``password=None`` makes an account that only uses API tokens."""
    check_name(name)
    granted = parse_roles(roles)
    hashed = _HASHER.hash(check_password(password)) if password is not None else None
    with db.session() as s:
        if s.get(User, name) is not None:
            raise UserError(f"user {name!r} already exists", hint="bildwerk users set-role")
        s.add(User(name=name, roles=sorted(granted), password_hash=hashed, created_by=actor))
        payload = {"roles": sorted(granted), "password": hashed is not None}
        repo.log_event(s, "user.added", subject=name, actor=actor, payload=payload)
        s.commit()
    return Account(name, granted, has_password=hashed is not None)


def set_roles(db: Database, name: str, roles: list[str], *, actor: str) -> Account:
    granted = parse_roles(roles)
    with db.session() as s:
        user = _user(s, name)
        before = sorted(user.roles)
        user.roles = sorted(granted)
        repo.log_event(s, "user.roles_changed", subject=name, actor=actor,
                       payload={"from": before, "to": sorted(granted)})  # fmt: skip
        s.commit()
        return account_of(user)


def set_password(db: Database, name: str, password: str, *, actor: str) -> None:
    """A new password; the user's browser sessions end (log in again with it)."""
    hashed = _HASHER.hash(check_password(password))
    with db.session() as s:
        _user(s, name).password_hash = hashed
        end_sessions(s, name)
        repo.log_event(s, "user.password_changed", subject=name, actor=actor)
        s.commit()


def set_disabled(db: Database, name: str, disabled: bool, *, actor: str) -> Account:
    """Disable (or enable again) an account: a disabled one cannot log in, its browser
    sessions end and its tokens stop working, without losing what it did."""
    with db.session() as s:
        user = _user(s, name)
        user.disabled = disabled
        if disabled:
            end_sessions(s, name)
        repo.log_event(s, "user.disabled" if disabled else "user.enabled", subject=name,
                       actor=actor)  # fmt: skip
        s.commit()
        return account_of(user)


def end_sessions(s: Session, user: str) -> int:
    """Delete every browser session of ``user`` in ``s`` (no commit: the caller's change
    and its audit event go with it); how many there were."""
    ended = s.execute(
        delete(WebSession).where(WebSession.user == user).execution_options(preserve_rowcount=True)
    )
    return cast(CursorResult[Any], ended).rowcount


def users(db: Database) -> list[Account]:
    with db.session(write=False) as s:
        return [account_of(u) for u in s.scalars(select(User).order_by(User.name))]


def login(db: Database, name: str, password: str) -> Account:
    """The account ``name`` if ``password`` is its password; :class:`LoginError` for
    anything else. Rehashes a password whose hash uses older parameters."""
    with db.session() as s:
        user = s.get(User, name)
        stored = user.password_hash if user is not None else None
        try:
            _HASHER.verify(stored or _DUMMY, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise LoginError("wrong user name or password") from None
        if user is None or stored is None or user.disabled:
            raise LoginError("wrong user name or password")
        if _HASHER.check_needs_rehash(stored):
            user.password_hash = _HASHER.hash(password)
            s.commit()
        return account_of(user)


def create_token(db: Database, user: str, *, label: str = "", actor: str) -> tuple[TokenInfo, str]:
    """A new API token for ``user`` and its secret, which is shown this once."""
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    full = f"{TOKEN_PREFIX}{token_id}_{secret}"
    with db.session() as s:
        owner = _user(s, user)
        if owner.disabled:
            raise UserError(f"user {user!r} is disabled", hint="bildwerk users enable")
        row = ApiToken(id=token_id, user=user, label=label, prefix=full[:12], sha256=_digest(full))
        s.add(row)
        repo.log_event(s, "token.created", subject=user, actor=actor,
                       payload={"token": token_id, "label": label})  # fmt: skip
        s.commit()
        return _token(row), full


def revoke_token(db: Database, token_id: str, *, actor: str) -> TokenInfo:
    with db.session() as s:
        row = s.get(ApiToken, token_id)
        if row is None:
            raise NotFoundError(f"no API token {token_id!r}", hint="bildwerk tokens list")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            repo.log_event(s, "token.revoked", subject=row.user, actor=actor,
                           payload={"token": token_id})  # fmt: skip
            s.commit()
        return _token(row)


def token(db: Database, token_id: str) -> TokenInfo:
    """One API token (never its secret)."""
    with db.session(write=False) as s:
        row = s.get(ApiToken, token_id)
        if row is None:
            raise NotFoundError(f"no API token {token_id!r}", hint="bildwerk tokens list")
        return _token(row)


def tokens(db: Database, user: str | None = None) -> list[TokenInfo]:
    with db.session(write=False) as s:
        query = select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)
        if user is not None:
            query = query.where(ApiToken.user == user)
        return [_token(t) for t in s.scalars(query)]


def token_account(db: Database, presented: str) -> Account:
    """The account an API token belongs to; :class:`LoginError` for an unknown or revoked
    token or a disabled account."""
    if not presented.startswith(TOKEN_PREFIX):
        raise LoginError("not a valid API token")
    with db.session(write=False) as s:
        row = s.scalar(select(ApiToken).where(ApiToken.sha256 == _digest(presented)))
        if row is None or row.revoked_at is not None:
            raise LoginError("not a valid API token")
        user = s.get(User, row.user)
        if user is None or user.disabled:
            raise LoginError("not a valid API token")
        return account_of(user)


def named_account(db: Database, name: str) -> Account:
    """The enabled account ``name`` (a trusted proxy said who is asking);
    :class:`LoginError` for an unknown or disabled one."""
    with db.session(write=False) as s:
        user = s.get(User, name)
        if user is None or user.disabled:
            raise LoginError(f"the proxy named {name[:64]!r}, which is not an enabled account")
        return account_of(user)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user(s: Session, name: str) -> User:
    user = s.get(User, name)
    if user is None:
        raise NotFoundError(f"no user {name!r}", hint="bildwerk users list")
    return user


def account_of(user: User) -> Account:
    """The :class:`Account` of a ``users`` row."""
    return Account(
        user.name,
        frozenset(Role(r) for r in user.roles),
        user.disabled,
        user.password_hash is not None,
        user.created_at,
    )


def _token(row: ApiToken) -> TokenInfo:
    return TokenInfo(row.id, row.user, row.label, row.prefix, row.created_at, row.revoked_at)
