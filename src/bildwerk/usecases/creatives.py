"""Creatives as people browse them: a filtered page, one creative's whole story (how it
was made, what the checks said, who decided what, where it is published), stars, and
small WebP thumbnails for galleries."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bildwerk.atomicio import atomic_write_bytes
from bildwerk.catalog import repo
from bildwerk.catalog.models import BriefVersion, Job, Run, RunJob
from bildwerk.catalog.repo.creatives import CreativeFilter, CreativeRow, facets, find_creatives
from bildwerk.catalog.repo.creatives import set_star as _set_star
from bildwerk.errors import NotFoundError
from bildwerk.usecases.rows import creative_asset

if TYPE_CHECKING:
    from PIL import Image
    from sqlalchemy.orm import Session

    from bildwerk.workspace import Workspace

THUMB_WIDTHS = (160, 320, 640)


@dataclass(frozen=True)
class CreativePage:
    items: list[CreativeRow]
    total: int
    limit: int
    offset: int
    facets: dict[str, list[str]] | None = None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "items": [asdict(r) for r in self.items]}


def creatives(
    ws: Workspace, f: CreativeFilter, *, viewer: str | None = None, with_facets: bool = False
) -> CreativePage:
    """One page of creatives matching ``f`` (a run given by a reference is resolved)."""
    with ws.db.session(write=False) as s:
        if f.run_id:
            run = repo.get_run(s, f.run_id)
            if run is None:
                raise NotFoundError(f"no run '{f.run_id}'", hint="see 'bildwerk runs list'")
            f = CreativeFilter(**{**asdict(f), "run_id": run.id})
        items, total = find_creatives(s, f, viewer=viewer)
        menus = facets(s, f.run_id) if with_facets else None
    return CreativePage(items, total, f.limit, f.offset, menus)


def creative_exists(ws: Workspace, asset_id: str) -> str:
    """The full id of creative ``asset_id``; :class:`NotFoundError` if there is none."""
    with ws.db.session(write=False) as s:
        return creative_asset(s, asset_id).id


def star(ws: Workspace, asset_id: str, *, user: str, on: bool) -> bool:
    """Star or unstar a creative for ``user``; True if it is starred now."""
    with ws.db.session() as s:
        creative_asset(s, asset_id)
        _set_star(s, user, asset_id, on)
        s.commit()
    return on


def creative(ws: Workspace, asset_id: str) -> dict[str, Any]:
    """Everything recorded about one creative: the request it was made from, its scene and
    renditions, every check, every decision, the runs that used it, rights and where it
    is published."""
    with ws.db.session(write=False) as s:
        asset = creative_asset(s, asset_id)
        job = s.scalar(select(Job).where(Job.creative_id == asset.id).limit(1))
        spec = dict(job.spec) if job else {}
        qa = dict(job.qa) if job else {}
        runs = []
        if job is not None:
            q = (select(Run).join(RunJob, RunJob.run_id == Run.id)
                 .where(RunJob.job_key == job.key).order_by(Run.started_at))  # fmt: skip
            runs = [{"id": r.id, "status": r.status, "started_at": r.started_at,
                     "submitted_by": (r.options or {}).get("submitted_by") or None,
                     "brief_sha256": r.brief_sha256} for r in s.scalars(q)]  # fmt: skip
        brief = _brief(s, str(runs[-1]["brief_sha256"])) if runs else None
        rights = repo.rights_of(s, [asset.id]).get(asset.id)
        return {
            "id": asset.id,
            "campaign_id": asset.campaign_id,
            "width": asset.width,
            "height": asset.height,
            "sha256": asset.sha256,
            "created_at": asset.created_at,
            "job_key": job.key if job else None,
            "request": {
                k: spec.get(k)
                for k in (
                    "prompt",
                    "negative_prompt",
                    "seed",
                    "slots",
                    "segment",
                    "locale",
                    "channel",
                    "backend",
                    "model",
                    "generation",
                )
            },
            "qa": {
                "status": qa.get("status"),
                "score": qa.get("score"),
                "checks": list(qa.get("checks") or ()),
                "gate": qa.get("decision"),
            },
            "decisions": [
                {
                    "state": d.state,
                    "actor": d.actor,
                    "at": d.at,
                    "reasons": list(d.reasons),
                    "rank": d.rank,
                    "score": d.score,
                    "run_id": d.run_id,
                }
                for d in repo.decisions_of(s, asset.id)
            ],
            "renditions": [
                {
                    "format": r.format,
                    "width": r.width,
                    "height": r.height,
                    "bytes": r.bytes,
                    "quality": r.quality,
                    "budget": r.budget,
                    "within_budget": r.within_budget,
                    "watermark": r.watermark,
                }
                for r in asset.renditions
            ],
            "lineage": [
                {"parent": link.parent_id, "relation": link.relation}
                for link in repo.lineage_of(s, asset.id)
            ],
            "runs": runs,
            "brief": brief,
            "rights": None
            if rights is None
            else {
                "expires_on": rights.expires_on,
                "revoked_at": rights.revoked_at,
                "reason": rights.reason,
                "actor": rights.actor,
            },
            "publications": [
                {"target": p.target, "url": p.url, "state": p.state, "run_id": p.run_id}
                for p in repo.live_publications_of(s, [asset.id])
            ],
        }


def evidence_image(ws: Workspace, asset_id: str) -> tuple[Path, str]:
    """The creative with the evidence of every failing or warning check drawn on it (as
    in the contact sheet), 640 px wide WebP; named by the master and the QA record, so a
    QA re-run makes a new one."""
    from bildwerk.checks.annotate import annotate

    with ws.db.session(write=False) as s:
        asset = creative_asset(s, asset_id)
        job = s.scalar(select(Job).where(Job.creative_id == asset.id).limit(1))
        checks = list((job.qa or {}).get("checks") or ()) if job else []
        sha = asset.sha256
    tag = hashlib.sha256(f"{sha}{json.dumps(checks, sort_keys=True, default=str)}".encode())
    path = ws.root / ".cache" / "evidence" / f"{tag.hexdigest()[:40]}.webp"
    _cached_webp(ws, asset_id, sha, path, lambda im: annotate(im, checks), quality=80)
    return path, path.stem


def _cached_webp(
    ws: Workspace, asset_id: str, sha: str, path: Path, draw: Callable[[Image.Image], Image.Image],
    *, quality: int,
) -> None:  # fmt: skip
    """Make ``path`` from the master ``sha`` once: ``draw`` it, keep it as WebP."""
    if path.is_file():
        return
    if not ws.blobs.has(sha):
        raise NotFoundError(f"{asset_id}: its image is missing from the blob store",
                            hint="run 'bildwerk fsck' to see what else is missing")  # fmt: skip
    from PIL import Image

    with Image.open(ws.blobs.local_path(sha)) as im:
        made = draw(im)
    buf = io.BytesIO()
    made.save(buf, "WEBP", quality=quality, method=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def _brief(s: Session, sha256: str) -> dict[str, Any] | None:
    """The brief version a run used and the one before it of the same campaign (for a
    diff), oldest first by when the catalog first saw them."""
    row = s.get(BriefVersion, sha256)
    if row is None:
        return None
    earlier = s.scalar(
        select(BriefVersion)
        .where(
            BriefVersion.campaign_id == row.campaign_id, BriefVersion.created_at < row.created_at
        )
        .order_by(BriefVersion.created_at.desc())
        .limit(1)
    )
    return {
        "sha256": row.sha256, "path": row.path, "content": row.content,
        "previous": None if earlier is None else {"sha256": earlier.sha256,
                                                  "content": earlier.content},
    }  # fmt: skip


def rendition_file(ws: Workspace, asset_id: str, fmt: str, width: int) -> tuple[Path, str]:
    """The stored bytes of one rendition of a creative (unstamped, as rendered) and their
    sha256 (an ETag that never changes)."""
    with ws.db.session(write=False) as s:
        asset = creative_asset(s, asset_id)
        for r in asset.renditions:
            if r.format == fmt and r.width == width:
                return ws.blobs.local_path(r.sha256), r.sha256
    raise NotFoundError(f"{asset_id} has no {fmt} rendition {width} px wide")


def thumbnail(ws: Workspace, asset_id: str, width: int) -> tuple[Path, str]:
    """A small WebP of the creative (one of :data:`THUMB_WIDTHS`), made once from the
    master and kept beside the blob cache; named by the master's hash, so it never goes
    stale and can be cached for a year."""
    if width not in THUMB_WIDTHS:
        raise NotFoundError(f"thumbnails are {', '.join(map(str, THUMB_WIDTHS))} px wide")
    with ws.db.session(write=False) as s:
        asset = creative_asset(s, asset_id)
        sha, height = asset.sha256, max(1, round(asset.height * width / asset.width))
    path = ws.root / ".cache" / "thumbs" / f"{sha}-{width}.webp"
    from PIL import Image

    def small(im: Image.Image) -> Image.Image:
        return im.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)

    _cached_webp(ws, asset_id, sha, path, small, quality=72)
    return path, f"{sha[:32]}-{width}"
