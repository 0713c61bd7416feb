"""Usage rights of creatives: licence expiry and revocation, and what follows from them.

One place decides whether a creative may be out there, so ``publish`` (which skips it)
and ``publish --sync`` (which takes it down) can never disagree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml
from sqlalchemy.orm import Session

from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Asset, AssetRights, BriefVersion, Run
from bildwerk.config.brief import Rights as BriefRights
from bildwerk.errors import NotFoundError


def why_withdrawn(row: AssetRights | None, today: dt.date) -> str | None:
    """Why this creative must not be published (revoked, or its licence ended), or None."""
    if row is None:
        return None
    if row.revoked_at is not None:
        return f"revoked: {row.reason or 'no reason'}"
    if row.expires_on is not None and row.expires_on < today:
        return f"licence expired on {row.expires_on}"
    return None


def withdrawn(s: Session, today: dt.date) -> dict[str, str]:
    """Every creative that must come down, with the reason."""
    out = {}
    for row in repo.all_rights(s):
        reason = why_withdrawn(row, today)
        if reason:
            out[row.asset_id] = reason
    return out


def brief_rights(s: Session, run: Run) -> BriefRights:
    """The ``rights:`` block of the brief version a run used."""
    version = s.get(BriefVersion, run.brief_sha256)
    data = yaml.safe_load(version.content) if version is not None else None
    block = data.get("rights") if isinstance(data, dict) else None
    return BriefRights.model_validate(block or {})


def iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def set_rights(
    db: Database,
    asset_id: str,
    *,
    actor: str,
    expires_on: dt.date | None = None,
    revoke: str | None = None,
    clear_expiry: bool = False,
) -> dict[str, Any]:
    """Change a creative's licence expiry or revoke it; ``publish --sync`` enforces it."""
    with db.session() as s:
        asset = s.get(Asset, asset_id)
        if asset is None or asset.kind != "creative":
            raise NotFoundError(
                f"no creative '{asset_id}'", hint="use an id from `bildwerk review RUN`"
            )
        row = repo.set_rights(
            s,
            asset_id,
            actor=actor,
            expires_on=expires_on,
            clear_expiry=clear_expiry,
            revoke=revoke,
        )
        payload = {"expires_on": iso(row.expires_on), "revoked": revoke}
        repo.log_event(
            s,
            "rights.revoked" if revoke else "rights.set",
            subject=asset_id,
            actor=actor,
            payload=payload,
        )
        return {"id": asset_id, **payload}
