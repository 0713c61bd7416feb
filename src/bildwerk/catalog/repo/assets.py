"""Campaigns, brief versions, assets, lineage, renditions and perceptual hashes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bildwerk.catalog.models import (
    Asset,
    BriefVersion,
    Campaign,
    ImageHash,
    Lineage,
    Rendition,
)
from bildwerk.catalog.repo.base import (
    insert_rows,
    log_event,
)

if TYPE_CHECKING:
    pass


def ensure_campaign(s: Session, campaign_id: str, name: str) -> Campaign:
    if insert_rows(s, Campaign, {"id": campaign_id, "name": name or campaign_id}, keys=["id"]):
        log_event(s, "campaign.created", subject=campaign_id)
    return s.get_one(Campaign, campaign_id)


def ensure_brief_version(
    s: Session, *, sha256: str, campaign_id: str, path: str, content: str, template_sha256: str
) -> BriefVersion:
    row = {
        "sha256": sha256,
        "campaign_id": campaign_id,
        "path": path,
        "content": content,
        "template_sha256": template_sha256,
    }
    if insert_rows(s, BriefVersion, row, keys=["sha256"]):
        log_event(s, "brief.version", subject=campaign_id, payload={"sha256": sha256})
    return s.get_one(BriefVersion, sha256)


def ensure_asset(
    s: Session,
    *,
    asset_id: str,
    kind: str,
    sha256: str,
    width: int,
    height: int,
    fmt: str,
    campaign_id: str | None = None,
    source: str | None = None,
    meta: dict[str, Any] | None = None,
) -> tuple[Asset, bool]:
    """Insert an asset unless one with this id exists; returns (asset, created)."""
    found = s.get(Asset, asset_id)
    if found is not None:
        return found, False
    row = {
        "id": asset_id,
        "kind": kind,
        "sha256": sha256,
        "width": width,
        "height": height,
        "format": fmt,
        "campaign_id": campaign_id,
        "source": source,
        "meta": meta or {},
    }
    created = insert_rows(s, Asset, row, keys=["id"]) > 0
    return s.get_one(Asset, asset_id), created


def add_lineage(s: Session, child_id: str, parent_id: str, relation: str) -> None:
    row = {"child_id": child_id, "parent_id": parent_id, "relation": relation}
    insert_rows(s, Lineage, row, keys=["child_id", "parent_id", "relation"])


def add_rendition(s: Session, asset_id: str, **fields: Any) -> None:
    """A rendition, unless the asset has one of this format and width already."""
    insert_rows(
        s, Rendition, {"asset_id": asset_id, **fields}, keys=["asset_id", "format", "width"]
    )


def list_assets(
    s: Session, *, kind: str | None = None, campaign_id: str | None = None, limit: int = 200
) -> list[Asset]:
    q = select(Asset).order_by(Asset.created_at.desc(), Asset.id)
    if kind:
        q = q.where(Asset.kind == kind)
    if campaign_id:
        q = q.where(Asset.campaign_id == campaign_id)
    return list(s.scalars(q.limit(limit)))


def get_asset(s: Session, asset_id: str) -> Asset | None:
    q = select(Asset).options(selectinload(Asset.renditions))
    found = s.scalars(q.where(Asset.id == asset_id)).first()
    if found is None:
        matches = list(s.scalars(q.where(Asset.id.startswith(asset_id, autoescape=True)).limit(2)))
        found = matches[0] if len(matches) == 1 else None
    return found


def assets_by_id(s: Session, asset_ids: Sequence[str]) -> dict[str, Asset]:
    """Assets by exact id, renditions loaded, in one query per 500 ids."""
    out: dict[str, Asset] = {}
    ids = list(dict.fromkeys(asset_ids))
    q = select(Asset).options(selectinload(Asset.renditions))
    for start in range(0, len(ids), 500):
        for asset in s.scalars(q.where(Asset.id.in_(ids[start : start + 500]))):
            out[asset.id] = asset
    return out


def parents_of(s: Session, child_ids: Sequence[str], relation: str) -> dict[str, str]:
    """child id → parent id for one lineage relation (``logo_in``, ``scene_of``…)."""
    out: dict[str, str] = {}
    ids = list(dict.fromkeys(child_ids))
    for start in range(0, len(ids), 500):
        q = select(Lineage).where(
            Lineage.relation == relation, Lineage.child_id.in_(ids[start : start + 500])
        )
        for link in s.scalars(q):
            out[link.child_id] = link.parent_id
    return out


def assets_with_prefix(s: Session, prefix: str, *, kind: str, limit: int = 20) -> list[str]:
    """Ids of assets of ``kind`` starting with ``prefix`` (a watermark names an id prefix)."""
    q = select(Asset.id).where(Asset.kind == kind, Asset.id.startswith(prefix, autoescape=True))
    return list(s.scalars(q.order_by(Asset.id).limit(limit)))


def lineage_of(s: Session, asset_id: str) -> list[Lineage]:
    return list(
        s.scalars(
            select(Lineage).where((Lineage.child_id == asset_id) | (Lineage.parent_id == asset_id))
        )
    )


def signed64(value: int) -> int:
    """64-bit hashes are stored in signed BIGINT columns."""
    return value - (1 << 64) if value >= (1 << 63) else value


def unsigned64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def set_hashes(s: Session, asset_id: str, phash: int, colour: int) -> None:
    row = {"asset_id": asset_id, "phash": signed64(phash), "colour": signed64(colour)}
    insert_rows(s, ImageHash, row, keys=["asset_id"])


def hashes_for(s: Session, asset_ids: Sequence[str] | None = None) -> dict[str, tuple[int, int]]:
    """Perceptual hashes by asset id (all of them when ``asset_ids`` is None)."""
    q = select(ImageHash)
    if asset_ids is not None:
        q = q.where(ImageHash.asset_id.in_(list(asset_ids)))
    return {r.asset_id: (unsigned64(r.phash), unsigned64(r.colour)) for r in s.scalars(q)}
