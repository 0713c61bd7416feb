"""Users, roles and API tokens on real SQLite and PostgreSQL, and through the CLI:
argon2id hashes, tokens stored as hashes and shown once, the permission table, and every
change in the audit chain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bildwerk.accounts import service, sessions
from bildwerk.accounts.roles import GRANTS, Permission, Role, allowed, parse_roles
from bildwerk.catalog.audit import verify
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import ApiToken, AuditEntry, User, WebSession
from bildwerk.errors import NotFoundError, UserError

PASSWORD = "correct horse battery"


@pytest.fixture
def db(catalog_db: Database) -> Database:
    return catalog_db


def test_the_permission_table() -> None:
    assert allowed({Role.VIEWER}, Permission.READ)
    assert not allowed({Role.VIEWER}, Permission.DECIDE)
    assert allowed({Role.REVIEWER}, Permission.DECIDE)
    assert not allowed({Role.REVIEWER}, Permission.PUBLISH)
    assert not allowed({Role.CREATOR}, Permission.DECIDE)
    assert allowed({Role.CREATOR, Role.PUBLISHER}, Permission.RIGHTS)
    assert GRANTS[Role.ADMIN] == frozenset(Permission)
    assert all(Permission.READ in granted for granted in GRANTS.values())
    with pytest.raises(UserError, match="unknown role 'superuser'") as info:
        parse_roles(["superuser"])
    assert "viewer, creator, reviewer, publisher, admin" in (info.value.hint or "")


def test_users_log_in_with_argon2id_and_fail_alike(db: Database) -> None:
    ana = service.add_user(db, "ana", ["reviewer"], password=PASSWORD, actor="root")
    assert ana.roles == {Role.REVIEWER} and ana.has_password
    with db.session(write=False) as s:
        stored = s.get(User, "ana")
        assert stored is not None and stored.password_hash is not None
        assert (
            stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
        )
    assert service.login(db, "ana", PASSWORD).name == "ana"
    for name, password in (("ana", "wrong password!"), ("nobody", PASSWORD)):
        with pytest.raises(service.LoginError, match=r"^wrong user name or password$"):
            service.login(db, name, password)
    service.set_disabled(db, "ana", True, actor="root")
    with pytest.raises(service.LoginError):
        service.login(db, "ana", PASSWORD)


def test_bad_input_is_named_and_nothing_is_stored(db: Database) -> None:
    with pytest.raises(UserError, match="user name 'Ana Smith' is not allowed"):
        service.add_user(db, "Ana Smith", ["viewer"], password=PASSWORD, actor="root")
    with pytest.raises(UserError, match="too short"):
        service.add_user(db, "ana", ["viewer"], password="short", actor="root")
    with pytest.raises(UserError, match="--role: give at least one role"):
        service.add_user(db, "ana", [], password=PASSWORD, actor="root")
    assert service.users(db) == []
    service.add_user(db, "ana", ["viewer"], password=PASSWORD, actor="root")
    with pytest.raises(UserError, match="user 'ana' already exists"):
        service.add_user(db, "ana", ["admin"], password=PASSWORD, actor="root")
    with pytest.raises(NotFoundError, match="no user 'bob'"):
        service.set_roles(db, "bob", ["admin"], actor="root")
    assert [a.roles for a in service.users(db)] == [{Role.VIEWER}]


def test_tokens_are_shown_once_stored_hashed_and_revocable(db: Database) -> None:
    service.add_user(db, "ci-bot", ["creator"], password=None, actor="root")
    info, secret = service.create_token(db, "ci-bot", label="CMS", actor="root")
    assert secret.startswith("bwk_") and len(secret) > 40
    with db.session(write=False) as s:
        rows = s.scalars(select(ApiToken)).all()
    assert len(rows) == 1 and secret not in (rows[0].sha256, rows[0].prefix)
    assert service.token_account(db, secret).name == "ci-bot"
    with pytest.raises(service.LoginError):
        service.token_account(db, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    with pytest.raises(service.LoginError):  # a token-only account has no password
        service.login(db, "ci-bot", "")
    service.revoke_token(db, info.id, actor="root")
    with pytest.raises(service.LoginError, match="not a valid API token"):
        service.token_account(db, secret)
    assert service.tokens(db, "ci-bot")[0].revoked_at is not None


def test_every_account_change_is_in_the_audit_chain(db: Database) -> None:
    service.add_user(db, "ana", ["viewer"], password=PASSWORD, actor="root")
    service.set_roles(db, "ana", ["reviewer", "publisher"], actor="root")
    service.set_password(db, "ana", PASSWORD + "!", actor="ana")
    info, _ = service.create_token(db, "ana", actor="ana")
    service.revoke_token(db, info.id, actor="root")
    service.set_disabled(db, "ana", True, actor="root")
    with db.session(write=False) as s:
        entries = s.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert verify(s).ok
    assert [(e.type, e.actor) for e in entries] == [
        ("user.added", "root"),
        ("user.roles_changed", "root"),
        ("user.password_changed", "ana"),
        ("token.created", "ana"),
        ("token.revoked", "root"),
        ("user.disabled", "root"),
    ]
    changed = json.loads(entries[1].body)["payload"]
    assert changed == {"from": ["viewer"], "to": ["publisher", "reviewer"]}
    assert all(PASSWORD not in e.body for e in entries)


def test_a_new_password_or_disabling_ends_the_users_sessions(db: Database) -> None:
    service.add_user(db, "ana", ["viewer"], password=PASSWORD, actor="root")
    service.add_user(db, "bob", ["viewer"], password=PASSWORD, actor="root")

    def live(name: str) -> int:
        with db.session(write=False) as s:
            return len(s.scalars(select(WebSession).where(WebSession.user == name)).all())

    cookies = [sessions.open_session(db, "ana", PASSWORD)[0] for _ in range(2)]
    sessions.open_session(db, "bob", PASSWORD)
    service.set_password(db, "ana", PASSWORD + "!", actor="ana")
    assert (live("ana"), live("bob")) == (0, 1)
    for cookie in cookies:
        with pytest.raises(service.LoginError, match="the session has ended"):
            sessions.find_session(db, cookie)
    sessions.open_session(db, "ana", PASSWORD + "!")
    service.set_disabled(db, "ana", True, actor="root")
    assert (live("ana"), live("bob")) == (0, 1)
    service.set_disabled(db, "ana", False, actor="root")
    assert sessions.close_sessions_of(db, "bob") == 1 and live("bob") == 0
    assert sessions.close_sessions_of(db, "bob") == 0


def test_cli_users_and_tokens(workspace_dir: Path) -> None:
    cli = [sys.executable, "-m", "bildwerk", "--workspace", str(workspace_dir)]

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], input=stdin, capture_output=True, text=True)

    added = run("users", "add", "ana", "--role", "reviewer", "--password-stdin", "--json",
                stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["roles"] == ["reviewer"]
    bad = run("users", "add", "bob", "--role", "boss", "--password-stdin", stdin=PASSWORD)
    assert bad.returncode == 2 and "unknown role 'boss'" in bad.stderr
    token = run("tokens", "create", "--user", "ana", "--label", "cms", "--json")
    assert token.returncode == 0, token.stderr
    secret = json.loads(token.stdout)["token"]
    listed = run("tokens", "list", "--json")
    assert secret not in listed.stdout and json.loads(listed.stdout)[0]["user"] == "ana"
    users = json.loads(run("users", "list", "--json").stdout)
    assert [(u["name"], u["roles"], u["has_password"]) for u in users] == [
        ("ana", ["reviewer"], True)
    ]
    assert run("audit", "verify").returncode == 0
