"""Roles and the permission table: the one place that says who may do what.

Every entry point asks :func:`allowed` with a :class:`Permission`; nothing compares role
names anywhere else. Roles do not inherit from one another: each row lists what it
grants, so reading the table is enough to know what a role can do.
"""

from __future__ import annotations

from enum import StrEnum

from bildwerk.errors import UserError


class Role(StrEnum):
    """What a person does in the team."""

    VIEWER = "viewer"  # sees runs, creatives, publications and the audit log
    CREATOR = "creator"  # plans and runs briefs
    REVIEWER = "reviewer"  # approves and rejects creatives
    PUBLISHER = "publisher"  # publishes, sets rights, revokes
    ADMIN = "admin"  # users, tokens, settings


class Permission(StrEnum):
    """One kind of action; the web routes and API endpoints each declare theirs."""

    READ = "read"
    RUN = "run"  # plan, submit and cancel runs; reproduce
    DECIDE = "decide"  # approve, reject, undo
    PUBLISH = "publish"  # publish, sync
    RIGHTS = "rights"  # licence expiry, revoke
    AUDIT = "audit"  # read and verify the audit chain
    MANAGE_USERS = "manage_users"  # users, roles, tokens of others
    SETTINGS = "settings"


DOING: dict[Permission, str] = {
    Permission.READ: "see runs and creatives",
    Permission.RUN: "plan, start or cancel runs",
    Permission.DECIDE: "approve or reject creatives",
    Permission.PUBLISH: "publish",
    Permission.RIGHTS: "change rights or revoke",
    Permission.AUDIT: "read the audit log",
    Permission.MANAGE_USERS: "manage users and their tokens",
    Permission.SETTINGS: "change settings",
}
"""What a permission lets one do, for messages that say what was refused."""

GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.CREATOR: frozenset({Permission.READ, Permission.RUN}),
    Role.REVIEWER: frozenset({Permission.READ, Permission.DECIDE}),
    Role.PUBLISHER: frozenset({Permission.READ, Permission.PUBLISH, Permission.RIGHTS}),
    Role.ADMIN: frozenset(Permission),
}
"""Role -> the permissions it grants. Separation of duties (nobody approves their own
run, publishing needs someone else's approval) is checked on top, per object."""


def allowed(roles: frozenset[Role] | set[Role], permission: Permission) -> bool:
    """Whether someone holding ``roles`` may do ``permission``."""
    return any(permission in GRANTS[role] for role in roles)


def parse_roles(names: list[str] | tuple[str, ...], *, where: str = "--role") -> frozenset[Role]:
    """``names`` as roles; an unknown or missing one is a :class:`UserError` naming it and
    the roles there are."""
    known = ", ".join(r.value for r in Role)
    if not names:
        raise UserError(f"{where}: give at least one role ({known}).")
    out = set()
    for name in names:
        try:
            out.add(Role(name.strip().lower()))
        except ValueError:
            raise UserError(f"{where}: unknown role {name!r}.", hint=f"roles: {known}") from None
    return frozenset(out)
