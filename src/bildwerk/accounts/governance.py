"""Separation of duties and quotas, checked where the action happens (the use cases), so
the web app, the API and a governed command line refuse the same things the same way.
See :mod:`bildwerk.config.governance` for the settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bildwerk.accounts.roles import Role
from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Job, Run, RunJob, User, utcnow
from bildwerk.config.governance import Governance
from bildwerk.errors import NotAllowedError, QuotaError, UserError

DAY = timedelta(hours=24)


@dataclass(frozen=True)
class Actor:
    """Who acts under governance: a name and the roles it holds."""

    name: str
    roles: frozenset[Role] = frozenset()

    @property
    def admin(self) -> bool:
        return Role.ADMIN in self.roles


def submitters(s: Session, creative_id: str) -> set[str]:
    """Everyone who submitted a queued run that made or reused ``creative_id``."""
    q = (
        select(Run.options)
        .join(RunJob, RunJob.run_id == Run.id)
        .join(Job, Job.key == RunJob.job_key)
        .where(Job.creative_id == creative_id)
    )
    return {str(o["submitted_by"]) for o in s.scalars(q) if o and o.get("submitted_by")}


def check_approval(
    s: Session, rules: Governance, actor: Actor, creative_id: str, *, override: bool, reason: str
) -> None:
    """Refuse ``actor`` approving a creative of a run they submitted, unless an admin
    overrides (with a reason; recorded as ``governance.override``)."""
    if not rules.separation_of_duties or actor.name not in submitters(s, creative_id):
        return
    rule = "nobody approves a creative from a run they submitted"
    _override_or_refuse(s, actor, creative_id, rule, override=override, reason=reason,
                        hint="ask another reviewer to approve it")  # fmt: skip


def check_publish(
    s: Session,
    rules: Governance,
    actor: Actor,
    approvals: dict[str, str],
    *,
    override: bool,
    reason: str,
) -> set[str]:
    """The creatives (id -> approver) ``actor`` may not publish because they approved them
    themselves; empty when an admin overrides (each override recorded)."""
    if not rules.separation_of_duties:
        return set()
    own = {cid for cid, by in approvals.items() if by == actor.name}
    if own and override:
        for cid in sorted(own):
            _override_or_refuse(s, actor, cid, "publishing needs someone else's approval",
                                override=True, reason=reason, hint="")  # fmt: skip
        return set()
    return own


def _override_or_refuse(
    s: Session, actor: Actor, subject: str, rule: str, *, override: bool, reason: str, hint: str
) -> None:
    if not override:
        raise NotAllowedError(f"{actor.name} may not do this: {rule}", hint=hint or None)
    if not actor.admin:
        raise NotAllowedError(
            f"{actor.name} may not override '{rule}': only admins can", hint=hint or None
        )
    if not reason.strip():
        raise UserError("an override needs a reason", hint="say why, it is kept in the audit")
    repo.log_event(s, "governance.override", subject=subject, actor=actor.name,
                   payload={"rule": rule, "reason": reason})  # fmt: skip


def check_quota(s: Session, rules: Governance, actor: Actor, images: int) -> dict[str, Any]:
    """Refuse queuing ``images`` new images that would take ``actor`` over their quota
    for the last 24 hours; returns the quota, what is used, and what is left after."""
    limit = rules.quotas.limit_for(actor.name, {r.value for r in actor.roles})
    if limit is None:
        return {"limit": None, "used": None, "left": None}
    since = utcnow() - DAY
    used, oldest = 0, None
    q = select(Run.options, Run.queued_at).where(Run.queued_at.is_not(None), Run.queued_at >= since)
    for options, queued_at in s.execute(q):
        if options and options.get("submitted_by") == actor.name:
            used += int(options.get("images") or 0)
            oldest = queued_at if oldest is None or queued_at < oldest else oldest
    if used + images > limit:
        when = f"; room frees up from {(oldest + DAY):%Y-%m-%d %H:%M} UTC" if oldest else ""
        raise QuotaError(
            f"{actor.name}: this run would queue {images} new images, but the quota is "
            f"{limit} per 24 hours and {used} are queued already{when}",
            hint="plan fewer images (fewer seeds, locales or channels), or ask an admin to "
            "raise governance.quotas in bildwerk.yaml",
        )
    return {"limit": limit, "used": used + images, "left": limit - used - images}


def cli_actor(db: Database, rules: Governance, name: str) -> Actor | None:
    """The command line's actor under governance (``governance.cli: true``), with the roles
    of the account of that name if there is one; None when the CLI is not governed."""
    if not rules.cli:
        return None
    with db.session(write=False) as s:
        user = s.get(User, name)
        return Actor(
            name, frozenset(Role(r) for r in user.roles) if user is not None else frozenset()
        )
