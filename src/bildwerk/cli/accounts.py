"""``bildwerk users`` and ``bildwerk tokens``: the accounts of a shared workspace."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from bildwerk.cli.common import (
    JsonOpt,
    WorkspaceOpt,
    _actor,
    _print_json,
    _report,
    _table,
    _ws,
    app,
    out,
)

users_app = typer.Typer(no_args_is_help=True, help="People and bots, and their roles.")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens for scripts and the CMS.")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")

RoleOpt = Annotated[
    list[str],
    typer.Option(
        "--role", "-r", help="viewer, creator, reviewer, publisher or admin (repeatable)."
    ),
]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who makes the change (audit trail).")]


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _account_json(account: Any) -> dict[str, Any]:
    data = asdict(account)
    data["roles"] = sorted(str(r) for r in account.roles)
    return data


@users_app.command("add")
def users_add(
    name: str,
    role: RoleOpt,
    password_stdin: StdinOpt = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="An account that only uses API tokens.")
    ] = False,
    by: ByOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a user with one or more roles; asks for a password unless told otherwise."""
    from bildwerk.accounts.service import add_user

    ws = _ws(workspace)
    password = None if no_password else _password(password_stdin)
    account = add_user(ws.db, name, role, password=password, actor=_actor(by))
    roles = ", ".join(sorted(account.roles))
    _report(as_json, _account_json(account), f"[green]✓[/] user {escape(name)} ({roles})")


@users_app.command("list")
def users_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Every user with roles and state."""
    from bildwerk.accounts.service import users

    rows = users(_ws(workspace).db)
    if as_json:
        _print_json([_account_json(a) for a in rows])
        return
    _table(
        ("user", "roles", "password", "state"),
        [
            (a.name, ", ".join(sorted(a.roles)), "yes" if a.has_password else "tokens only",
             "disabled" if a.disabled else "active")
            for a in rows
        ],
    )  # fmt: skip


@users_app.command("set-role")
def users_set_role(
    name: str, role: RoleOpt, by: ByOpt = None, workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:  # fmt: skip
    """Replace a user's roles."""
    from bildwerk.accounts.service import set_roles

    account = set_roles(_ws(workspace).db, name, role, actor=_actor(by))
    roles = ", ".join(sorted(account.roles))
    _report(as_json, _account_json(account), f"[green]✓[/] {escape(name)}: {roles}")


@users_app.command("passwd")
def users_passwd(
    name: str, password_stdin: StdinOpt = False, by: ByOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:  # fmt: skip
    """Set a user's password."""
    from bildwerk.accounts.service import set_password

    set_password(_ws(workspace).db, name, _password(password_stdin), actor=_actor(by))
    out.print(f"[green]✓[/] password of {escape(name)} changed")


@users_app.command("disable")
def users_disable(
    name: str, by: ByOpt = None, workspace: WorkspaceOpt = None, as_json: JsonOpt = False
) -> None:
    """Stop an account logging in and its tokens working (what it did stays)."""
    _set_disabled(name, True, by, workspace, as_json)


@users_app.command("enable")
def users_enable(
    name: str, by: ByOpt = None, workspace: WorkspaceOpt = None, as_json: JsonOpt = False
) -> None:
    """Let a disabled account log in again."""
    _set_disabled(name, False, by, workspace, as_json)


def _set_disabled(
    name: str, disabled: bool, by: str | None, workspace: Path | None, as_json: bool
) -> None:
    from bildwerk.accounts.service import set_disabled

    account = set_disabled(_ws(workspace).db, name, disabled, actor=_actor(by))
    state = "disabled" if disabled else "enabled"
    _report(as_json, _account_json(account), f"[green]✓[/] {escape(name)} {state}")


@tokens_app.command("create")
def tokens_create(
    user: Annotated[str, typer.Option("--user", "-u", help="Whose token it is.")],
    label: Annotated[str, typer.Option("--label", help="What it is for.")] = "",
    by: ByOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API token; it is shown this once and stored only as a hash."""
    from bildwerk.accounts.service import create_token

    info, secret = create_token(_ws(workspace).db, user, label=label, actor=_actor(by))
    data = {**asdict(info), "token": secret}
    _report(as_json, data, f"{secret}\n[dim]token {info.id} for {escape(user)}: "
            "store it now, it is not shown again[/]")  # fmt: skip


@tokens_app.command("list")
def tokens_list(
    user: Annotated[str | None, typer.Option("--user", "-u")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """API tokens (never their secrets)."""
    from bildwerk.accounts.service import tokens

    rows = tokens(_ws(workspace).db, user)
    if as_json:
        _print_json([asdict(t) for t in rows])
        return
    _table(
        ("id", "user", "label", "starts with", "created", "state"),
        [
            (t.id, t.user, t.label, t.prefix + "…", t.created_at.isoformat(timespec="minutes"),
             "revoked" if t.revoked_at else "active")
            for t in rows
        ],
    )  # fmt: skip


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: str, by: ByOpt = None, workspace: WorkspaceOpt = None, as_json: JsonOpt = False
) -> None:
    """Revoke an API token at once."""
    from bildwerk.accounts.service import revoke_token

    info = revoke_token(_ws(workspace).db, token_id, actor=_actor(by))
    _report(as_json, asdict(info), f"[green]✓[/] token {info.id} of {escape(info.user)} revoked")
