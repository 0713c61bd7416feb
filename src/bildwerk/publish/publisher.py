"""``bildwerk publish``: approved creatives, stamped, onto the workspace's targets.

Order matters for "no half-published state": every check (targets, credentials, rights,
watermarks) runs before any byte leaves the machine; every rendition is stamped into the
blob store before any upload; a target's images go up before its pages point at them,
and its publication rows commit only once all of them are up (a failed upload takes back
what this call put there). Stamps are cached, so a re-run uploads the same bytes under the
same content-hashed names and simply resumes. Webhooks hear last.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bildwerk.atomicio import sha256_bytes
from bildwerk.blobs import BlobStore
from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import (
    Asset,
    AssetRights,
    Campaign,
    Publication,
    Run,
    Stamp,
)
from bildwerk.catalog.models import Rendition as RenditionRow
from bildwerk.config.brand import BrandKit
from bildwerk.config.publishing import (
    WebhookTargetSettings,
)
from bildwerk.config.settings import Settings
from bildwerk.errors import NotFoundError, UserError
from bildwerk.publish.describe import Creative, describe
from bildwerk.publish.metadata import build_xmp
from bildwerk.publish.rights import brief_rights, iso, set_rights, why_withdrawn, withdrawn
from bildwerk.publish.site import PublishedFile, images_from, page_url, site_files
from bildwerk.publish.stamp import SigningIdentity, load_identity, stamp, stamp_key
from bildwerk.publish.target_config import open_target, open_webhook, resolve, site_url
from bildwerk.publishers import (
    IMMUTABLE,
    REVALIDATE,
    PublishError,
    PublishTarget,
    WebhookTarget,
    content_type_for,
    event_key,
    origin_key,
    publish_event,
)
from bildwerk.records import JobSpec

IMAGE_DIR = "img"


@dataclass
class PublishReport:
    run_id: str
    targets: list[str]
    published: list[str] = field(default_factory=list)  # creative ids
    skipped: dict[str, str] = field(default_factory=dict)  # id -> why
    uploaded: int = 0
    unchanged: int = 0
    stamped: int = 0
    pages: dict[str, str] = field(default_factory=dict)  # target -> landing index URL
    dev_keys: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class SyncReport:
    removed: dict[str, list[str]] = field(default_factory=dict)  # target -> asset ids
    notified: list[str] = field(default_factory=list)


class Publisher:
    """Publishes runs and takes expired or revoked creatives down again."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        db: Database,
        blobs: BlobStore,
        brand: BrandKit,
        *,
        actor: str,
    ) -> None:
        self.root = root
        self.settings = settings
        self.db = db
        self.blobs = blobs
        self.brand = brand
        self.actor = actor

    # ------------------------------------------------------------------ publish

    def publish(self, run_id: str, target_names: Sequence[str]) -> PublishReport:
        storage, hooks = resolve(self.root, self.settings.targets, target_names)
        with self.db.session() as s:
            run = repo.get_run(s, run_id)
            if run is None:
                raise NotFoundError(f"no run '{run_id}'", hint="see 'bildwerk runs list'")
            report = PublishReport(run.id, [n for n, _ in storage] + [n for n, _ in hooks])
            creatives = self._approved(s, run, report)
        if not creatives:
            raise UserError(
                f"run {run_id}: no approved creative can be published"
                + (f" ({len(report.skipped)} skipped)" if report.skipped else ""),
                hint=f"see `bildwerk review {run_id}`, then `bildwerk approve ID`",
            )
        self._check_watermarks(creatives, report)
        identity = load_identity(self.root, self.settings.signing)
        report.dev_keys = identity.dev
        report.warnings.extend(identity.signer.warnings)
        stamped = self._stamp_all(creatives, identity, report)
        for name, target in storage:
            self._upload(name, target, creatives, stamped, report)
            report.pages[name] = self._rebuild_site(name, target)
        for name, hook in hooks:
            self._notify(name, hook, report.run_id, creatives)
        report.published = [c.asset.id for c in creatives]
        return report

    def _approved(self, s: Session, run: Run, report: PublishReport) -> list[Creative]:
        keys = [rj.job_key for rj in run.jobs if rj.status in ("generated", "cached")]
        jobs = repo.done_jobs(s, keys)
        decisions = repo.current_decisions(s, [j.creative_id for j in jobs.values()])
        brief = brief_rights(s, run)
        found = s.get(Campaign, run.campaign_id)
        campaign = (found.name if found else "") or run.campaign_id
        today = dt.date.today()
        out = []
        for job in sorted(jobs.values(), key=lambda j: j.creative_id):
            cid = job.creative_id
            d = decisions.get(cid)
            if d is None or d.state != "approved":
                report.skipped[cid] = f"not approved ({d.state if d else 'undecided'})"
                continue
            channel = JobSpec.from_json(job.spec).channel
            if channel.preview:
                report.skipped[cid] = f"{channel.name} is a preview channel"
                continue
            rights = s.get(AssetRights, cid)
            if rights is None:
                rights = AssetRights(asset_id=cid, expires_on=brief.expires, actor=self.actor)
                s.add(rights)
                repo.log_event(
                    s,
                    "rights.set",
                    subject=cid,
                    actor=self.actor,
                    payload={"expires_on": iso(brief.expires), "source": "brief"},
                )
            why = why_withdrawn(rights, today)
            if why:
                report.skipped[cid] = why
                continue
            asset = s.get(Asset, cid)
            scene = s.get(Asset, job.scene_id)
            if asset is None or scene is None:
                report.skipped[cid] = "missing from the catalog"
                continue
            renditions = list(
                s.scalars(
                    select(RenditionRow)
                    .where(RenditionRow.asset_id == cid)
                    .order_by(RenditionRow.format, RenditionRow.width)
                )
            )
            out.append(
                describe(
                    job, asset, scene, channel, renditions, brief, rights, campaign, run, self.brand
                )
            )
        return out

    def _check_watermarks(self, creatives: list[Creative], report: PublishReport) -> None:
        for c in creatives:
            bare = [r for r in c.renditions if not r.watermark]
            if not bare:
                continue
            sizes = ", ".join(f"{r.format} {r.width}×{r.height}" for r in bare)
            if self.brand.rights.watermark == "required":
                raise UserError(
                    f"creative {c.asset.id} ({c.channel.name}): no invisible watermark in "
                    f"{sizes}; a 32-bit mark needs at least 256×256 px.",
                    hint="raise the channel's smallest width, re-run the brief, or set "
                    "rights.watermark: when_possible in brand.yaml",
                )
            report.warnings.append(f"{c.asset.id}: published without watermark: {sizes}")

    # ------------------------------------------------------------------ stamping

    def _stamp_all(
        self, creatives: list[Creative], identity: SigningIdentity, report: PublishReport
    ) -> dict[int, str]:
        """Stamped blob sha per rendition id, stamping only what is not cached."""
        out: dict[int, str] = {}
        author = self.brand.name
        cached = self._stamps(creatives)
        for c in creatives:
            subject = f"m:{c.asset.id}"
            master_key = stamp_key(identity.fingerprint, build_xmp(c.meta), c.asset.sha256)
            master_sha = cached.get((subject, master_key))
            if master_sha is None:
                signed = stamp(
                    self.blobs.get(c.asset.sha256), "png", c.meta, identity=identity, author=author
                )
                master_sha = self._store_stamp(subject, master_key, signed)
                report.stamped += 1
            master: bytes | None = None
            for r in c.renditions:
                meta = replace(c.meta, generation={**c.meta.generation, "watermark": r.watermark})
                key = stamp_key(identity.fingerprint, build_xmp(meta), r.sha256, master_sha)
                sha = cached.get((f"r:{r.id}", key))
                if sha is None:
                    master = master or self.blobs.get(master_sha)
                    signed = stamp(
                        self.blobs.get(r.sha256),
                        r.format,
                        meta,
                        identity=identity,
                        author=author,
                        master=master,
                        master_title=f"{c.meta.title} (master)",
                    )
                    sha = self._store_stamp(f"r:{r.id}", key, signed)
                    report.stamped += 1
                out[r.id] = sha
        return out

    def _stamps(self, creatives: list[Creative]) -> dict[tuple[str, str], str]:
        """Every cached stamp of these creatives whose blob is still there, in one query."""
        subjects = [f"m:{c.asset.id}" for c in creatives]
        subjects += [f"r:{r.id}" for c in creatives for r in c.renditions]
        with self.db.session() as s:
            rows = [
                (row.subject, row.stamp_key, row.sha256)
                for start in range(0, len(subjects), 500)
                for row in s.scalars(
                    select(Stamp).where(Stamp.subject.in_(subjects[start : start + 500]))
                )
            ]
        return {(subj, key): sha for subj, key, sha in rows if self.blobs.has(sha)}

    def _store_stamp(self, subject: str, key: str, data: bytes) -> str:
        sha = self.blobs.put(data)  # durable before the row that names it
        with self.db.session() as s:
            s.merge(Stamp(subject=subject, stamp_key=key, sha256=sha, bytes=len(data)))
        return sha

    # ------------------------------------------------------------------ targets

    def _upload(
        self,
        name: str,
        target: PublishTarget,
        creatives: list[Creative],
        stamped: dict[int, str],
        report: PublishReport,
    ) -> None:
        """All of the run's files onto one target, or none of the new ones."""
        with self.db.session() as s:
            current = {
                p.key: p for p in s.scalars(select(Publication).where(Publication.target == name))
            }
        put: list[str] = []
        rows: list[dict[str, Any]] = []
        try:
            for c in creatives:
                for r in c.renditions:
                    sha = stamped[r.id]
                    key = f"{IMAGE_DIR}/" + origin_key(
                        c.image.slug, c.channel.name, r.width, sha, r.format
                    )
                    row = current.get(key)
                    if row is not None and row.state == "published" and row.sha256 == sha:
                        report.unchanged += 1
                        continue
                    url = target.put(
                        key,
                        self.blobs.get(sha),
                        content_type=content_type_for(key),
                        cache_control=IMMUTABLE,
                    )
                    put.append(key)
                    report.uploaded += 1
                    rows.append(
                        {
                            "key": key,
                            "asset_id": c.asset.id,
                            "rendition_id": r.id,
                            "url": url,
                            "sha256": sha,
                            "run_id": c.run_id,
                            "meta": {
                                "image": c.fields,
                                "format": r.format,
                                "width": r.width,
                                "height": r.height,
                            },
                        }
                    )
        except (PublishError, UserError):
            for key in put:
                if current.get(key) is None:  # only what this call added
                    with contextlib.suppress(Exception):
                        target.delete(key)
            with self.db.session() as s:
                repo.log_event(
                    s,
                    "publish.failed",
                    actor=self.actor,
                    payload={"target": name, "rolled_back": len(put)},
                )
            raise
        superseded: list[Publication] = []
        with self.db.session() as s:
            fresh = {r["rendition_id"] for r in rows}
            for p in current.values():
                if p.state == "published" and p.rendition_id in fresh:
                    superseded.append(p)
            for data in rows:
                repo.upsert_publication(s, name, data)
            for p in superseded:
                repo.mark_unpublished(s, name, p.key, "superseded")
            for c in creatives:
                repo.log_event(
                    s,
                    "asset.published",
                    run_id=c.run_id,
                    subject=c.asset.id,
                    actor=self.actor,
                    payload={"target": name, "files": len(c.renditions)},
                )
        for p in superseded:
            with contextlib.suppress(Exception):
                target.delete(p.key)

    def _rebuild_site(self, name: str, target: PublishTarget) -> str:
        """Pages, sitemaps and robots.txt from what is now published on ``name``."""
        home = site_url(self.settings.targets[name])
        with self.db.session() as s:
            live = list(
                s.scalars(
                    select(Publication)
                    .where(Publication.target == name, Publication.state == "published")
                    .order_by(Publication.id)
                )
            )
        files = _files(p for p in live if p.rendition_id is not None)
        pages = site_files(files, site_url=home, site_name=self.settings.name)
        old = {p.key: p for p in live if p.rendition_id is None}
        for key, data in pages.items():
            sha = sha256_bytes(data)
            if key in old and old[key].sha256 == sha:
                continue
            url = target.put(
                key, data, content_type=content_type_for(key), cache_control=REVALIDATE
            )
            with self.db.session() as s:
                repo.upsert_publication(
                    s,
                    name,
                    {"key": key, "asset_id": None, "rendition_id": None, "url": url,
                     "sha256": sha, "run_id": None, "meta": {"page": True}},
                )  # fmt: skip
        for key in old.keys() - pages.keys():
            target.delete(key)
            with self.db.session() as s:
                repo.mark_unpublished(s, name, key, "nothing left to show")
        return f"{home}/index.html" if pages else ""

    def _notify(
        self, name: str, hook: WebhookTarget, run_id: str, creatives: list[Creative]
    ) -> None:
        conf = self.settings.targets[name]
        assert isinstance(conf, WebhookTargetSettings)
        with self.db.session() as s:
            live = list(
                s.scalars(
                    select(Publication).where(
                        Publication.target == conf.origin,
                        Publication.state == "published",
                        Publication.asset_id.in_([c.asset.id for c in creatives]),
                    )
                )
            )
        files = _files(live)
        home = site_url(self.settings.targets[conf.origin])
        images = images_from(
            files,
            {
                f.image["asset_id"]: page_url(home, f.image["campaign"], f.image["locale"])
                for f in files
            },
        )
        event = publish_event(
            run_id,
            images,
            campaign=creatives[0].asset.campaign_id,
            sitemap_url=f"{home}/sitemap-images.xml",
        )
        key = event_key(event)
        try:
            hook.notify(event, idempotency_key=key)
        except PublishError:
            with self.db.session() as s:
                repo.log_event(
                    s,
                    "publish.notify_failed",
                    run_id=run_id,
                    actor=self.actor,
                    payload={"target": name, "idempotency_key": key},
                )
            raise
        with self.db.session() as s:
            for img in images:
                repo.upsert_publication(
                    s,
                    name,
                    {"key": f"asset/{img.asset_id}", "asset_id": img.asset_id,
                     "rendition_id": None, "url": hook.url, "sha256": key, "run_id": run_id,
                     "meta": {"origin": conf.origin}},
                )  # fmt: skip
            repo.log_event(
                s,
                "publish.notified",
                run_id=run_id,
                actor=self.actor,
                payload={"target": name, "assets": len(images), "idempotency_key": key},
            )

    # ------------------------------------------------------------------ rights

    def sync(self) -> SyncReport:
        """Take expired and revoked creatives off every target, pages and sitemaps
        included, and tell every webhook that had announced them."""
        today = dt.date.today()
        report = SyncReport()
        with self.db.session() as s:
            gone = withdrawn(s, today)
            live = [
                (p.target, p.key, p.asset_id)
                for p in s.scalars(
                    select(Publication).where(
                        Publication.state == "published", Publication.asset_id.in_(list(gone))
                    )
                )
            ]
        by_target: dict[str, list[tuple[str, str]]] = {}
        for target, key, asset_id in live:
            by_target.setdefault(target, []).append((key, asset_id or ""))
        declared = self.settings.targets
        order = sorted(by_target, key=lambda n: isinstance(declared.get(n), WebhookTargetSettings))
        for name in order:
            conf = declared.get(name)
            if conf is None:
                raise UserError(
                    f"bildwerk.yaml: target {name!r} has published files but is no longer "
                    "declared.",
                    hint="declare it again so its files can be taken down",
                )
            entries = by_target[name]
            ids = sorted({a for _, a in entries})
            store: PublishTarget | None = None
            if isinstance(conf, WebhookTargetSettings):
                hook = open_webhook(name, conf)
                event = {
                    "type": "bildwerk.unpublished",
                    "version": 1,
                    "assets": [{"asset_id": a, "reason": gone[a]} for a in ids],
                }
                hook.notify(event, idempotency_key=event_key(event))
                report.notified.extend(ids)
            else:
                store = open_target(self.root, conf)
                for key, _ in entries:
                    store.delete(key)
            with self.db.session() as s:
                for key, asset_id in entries:
                    repo.mark_unpublished(s, name, key, gone[asset_id])
                for asset_id in ids:
                    repo.log_event(
                        s,
                        "asset.unpublished",
                        subject=asset_id,
                        actor=self.actor,
                        payload={"target": name, "reason": gone[asset_id]},
                    )
            report.removed[name] = ids
            if store is not None:  # pages follow the rows just marked
                self._rebuild_site(name, store)
        return report

    def set_rights(
        self,
        asset_id: str,
        *,
        expires_on: dt.date | None = None,
        revoke: str | None = None,
        clear_expiry: bool = False,
    ) -> dict[str, Any]:
        return set_rights(
            self.db,
            asset_id,
            actor=self.actor,
            expires_on=expires_on,
            revoke=revoke,
            clear_expiry=clear_expiry,
        )


def _files(rows: Iterable[Publication]) -> list[PublishedFile]:
    """Publication rows of renditions as the pages and webhook events need them."""
    return [
        PublishedFile(p.meta["image"], p.meta["format"], p.meta["width"], p.meta["height"], p.url)
        for p in rows
    ]
