"""Catalog rows as plain JSON-ready dicts, for ``--json`` output and the Python API."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from bildwerk.catalog import repo
from bildwerk.catalog.models import Asset
from bildwerk.errors import NotFoundError


def as_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in obj.__table__.columns:
        value = getattr(obj, col.key)
        out[col.key] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def creative_asset(s: Session, asset_id: str) -> Asset:
    """The creative ``asset_id``; :class:`NotFoundError` for anything else."""
    asset = repo.get_asset(s, asset_id)
    if asset is None or asset.kind != "creative":
        raise NotFoundError(
            f"no creative '{asset_id}'",
            hint="use a creative id from the run manifest, the gallery or 'bildwerk review RUN'",
        )
    return asset
