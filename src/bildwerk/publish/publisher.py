"""``bildwerk publish``: approved creatives, stamped, onto the workspace's targets.

Order matters for "no half-published state": every check (targets, credentials, rights,
watermarks) runs before any byte leaves the machine; every rendition is stamped into the
blob store before any upload; a target's images go up before its pages point at them,
and its publication rows commit only once all of them are up (a failed upload takes back
what this call put there). Stamps are cached, so a re-run uploads the same bytes under the
same content-hashed names and simply resumes. Webhooks hear last.

Nothing reaches a target unrecorded: each file is first recorded as an intent (a row in
state ``uploading``; a page about to be overwritten loses its recorded digest), and
files taken down are ``removing`` until deleted. One publisher per target at a time (a
lease, :mod:`bildwerk.publish.lease`); whoever takes the lease next — a resumed
``publish`` or ``publish --sync`` — first takes back what a killed publish left
(:meth:`Publisher.recover`) and sweeps its temp files. A target's header record is
written once per publish, just before its rows commit.

Each ``publish`` and ``publish --sync`` writes its own event stream (``publish-…``,
``sync-…``; stages ``stamp``, ``upload``, ``pages``, ``notify``, ``unpublish``; the job of
an event is a creative id or a target name) for the progress bars and ``runs watch``.
Catalog reads and writes are batched per run, so the number of SQL statements does not
grow with the number of creatives.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from bildwerk.accounts.governance import Actor, check_publish
from bildwerk.blobs import BlobStore
from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Campaign, Run
from bildwerk.config.brand import BrandKit
from bildwerk.config.delivery import DeliveryProfile
from bildwerk.config.publishing import (
    WebhookTargetSettings,
)
from bildwerk.config.settings import Settings
from bildwerk.errors import NotFoundError, UserError
from bildwerk.events import EventSink, EventStream, ignore, operation_id
from bildwerk.publish import delivery as _delivery
from bildwerk.publish import sync as _sync_module
from bildwerk.publish.delivery import StampedFile
from bildwerk.publish.describe import Creative, describe
from bildwerk.publish.lease import hold_all
from bildwerk.publish.metadata import build_xmp
from bildwerk.publish.rights import brief_rights, set_rights, why_withdrawn
from bildwerk.publish.site import images_from, page_url
from bildwerk.publish.stamp import (
    SigningIdentity,
    load_identity,
    profile_fields,
    stamp,
    stamp_key,
)
from bildwerk.publish.target_config import resolve, site_url
from bildwerk.publishers import (
    PublishError,
    WebhookTarget,
    event_key,
    publish_event,
)
from bildwerk.records import JobSpec

_Wanted = tuple[str, str | None]  # stamp key, and the file's name hash for a remote manifest


def _sidecar_key(key: str) -> str:
    """A sidecar's stamp row: the rendition's subject, its file's stamp key, marked."""
    return stamp_key(key, "sidecar")


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
    events: str = ""  # the event stream's id


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
        on_event: EventSink = ignore,
        governed: Actor | None = None,
    ) -> None:
        self.root = root
        self.governed = governed
        self.settings = settings
        self.db = db
        self.blobs = blobs
        self.brand = brand
        self.actor = actor
        self.on_event = on_event
        self.profiles = settings.delivery_profiles()  # settings are fixed for a publisher

    def stream(self, op: str, **data: Any) -> EventStream:
        stream = EventStream(self.db, operation_id(op), self.on_event)
        stream.emit("run.started", data={"op": op, **data})
        return stream

    @staticmethod
    def failed(stream: EventStream, exc: BaseException) -> None:
        """End the stream of a call that raised (no transaction is open here)."""
        stream.emit("run.finished", message=str(exc) or type(exc).__name__,
                    data={"status": "failed"})  # fmt: skip
        stream.flush_now()

    # ------------------------------------------------------------------ publish

    def publish(
        self,
        run_id: str,
        target_names: Sequence[str],
        *,
        wait: float = 0.0,
        override: str | None = None,
    ) -> PublishReport:
        """Publish ``run_id`` onto ``target_names``; waits up to ``wait`` seconds for
        another publisher of a target to finish (then :class:`TargetBusyError`). A
        governed publisher skips creatives it approved itself unless an admin gives an
        ``override`` reason."""
        stream = self.stream("publish", run_id=run_id, targets=list(target_names))
        try:
            report = self._publish(stream, run_id, target_names, wait, override)
        except BaseException as exc:
            self.failed(stream, exc)
            raise
        stream.emit(
            "run.finished",
            data={
                "status": "done",
                "run_id": report.run_id,
                "published": len(report.published),
                "skipped": len(report.skipped),
                "uploaded": report.uploaded,
                "stamped": report.stamped,
            },
        )
        stream.flush_now()
        return report

    def _publish(
        self,
        stream: EventStream,
        run_id: str,
        target_names: Sequence[str],
        wait: float,
        override: str | None,
    ) -> PublishReport:
        storage, hooks = resolve(self.root, self.settings.targets, target_names)
        with self.db.session() as s:
            run = repo.get_run(s, run_id)
            if run is None:
                raise NotFoundError(f"no run '{run_id}'", hint="see 'bildwerk runs list'")
            report = PublishReport(run.id, [n for n, _ in storage] + [n for n, _ in hooks])
            report.events = stream.stream
            creatives = self._approved(s, run, report, override)
            for cid, why in report.skipped.items():
                stream.emit("message", job=cid, message=f"{cid}: skipped, {why}")
            stream.flush(s)
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
        with contextlib.ExitStack() as stack:
            leases = hold_all(
                stack, self.db, [n for n, _ in storage], op=f"publish {run.id}", wait=wait,
                on_wait=lambda m: stream.emit("message", message=m),
            )  # fmt: skip
            # stamped under the lease: a publisher that waited reuses the first one's stamps
            stamped = self._stamp_all(creatives, identity, report, stream, storage)
            stream.emit("stage.started", stage="upload", total=len(creatives) * len(storage))
            stream.emit("stage.started", stage="pages", total=len(storage))
            for name, target in storage:
                report.pages[name] = _delivery.publish_target(
                    self, name, target, creatives, stamped[name], report, stream, leases[name]
                )
                stream.emit("job.finished", stage="pages", job=name,
                            data={"url": report.pages[name]})  # fmt: skip
                stream.tick()
            stream.emit("stage.finished", stage="upload")
            stream.emit("stage.finished", stage="pages")
        if hooks:
            stream.emit("stage.started", stage="notify", total=len(hooks))
            for name, hook in hooks:
                self._notify(name, hook, report.run_id, creatives)
                stream.emit("job.finished", stage="notify", job=name)
            stream.emit("stage.finished", stage="notify")
        report.published = [c.asset.id for c in creatives]
        return report

    def _approved(
        self, s: Session, run: Run, report: PublishReport, override: str | None = None
    ) -> list[Creative]:
        """The run's publishable creatives, described, in a constant number of queries
        (jobs, decisions, rights, assets with renditions: each batched for the run)."""
        keys = [rj.job_key for rj in run.jobs if rj.status in ("generated", "cached")]
        jobs = sorted(repo.done_jobs(s, keys).values(), key=lambda j: j.creative_id)
        decisions = repo.current_decisions(s, [j.creative_id for j in jobs])
        brief = brief_rights(s, run)
        found = s.get(Campaign, run.campaign_id)
        campaign = (found.name if found else "") or run.campaign_id
        today = dt.date.today()
        wanted = []
        for job in jobs:
            cid = job.creative_id
            d = decisions.get(cid)
            if d is None or d.state != "approved":
                report.skipped[cid] = f"not approved ({d.state if d else 'undecided'})"
                continue
            channel = JobSpec.from_json(job.spec).channel
            if channel.preview:
                report.skipped[cid] = f"{channel.name} is a preview channel"
                continue
            wanted.append((job, channel))
        if self.governed is not None:
            own = check_publish(
                s, self.settings.governance, self.governed,
                {j.creative_id: decisions[j.creative_id].actor for j, _ in wanted},
                override=override is not None, reason=override or "",
            )  # fmt: skip
            for cid in own:
                report.skipped[cid] = "approved by you: publishing needs someone else's approval"
            wanted = [(j, channel) for j, channel in wanted if j.creative_id not in own]
        assets = repo.assets_by_id(
            s, [job.creative_id for job, _ in wanted] + [job.scene_id for job, _ in wanted]
        )
        for job, _ in wanted:
            if job.creative_id not in assets or job.scene_id not in assets:
                report.skipped[job.creative_id] = "missing from the catalog"
        wanted = [(j, channel) for j, channel in wanted if j.creative_id not in report.skipped]
        rights = repo.ensure_rights(
            s,
            [job.creative_id for job, _ in wanted],
            expires_on=brief.expires,
            actor=self.actor,
            source="brief",
        )
        out = []
        for job, channel in wanted:
            cid = job.creative_id
            why = why_withdrawn(rights[cid], today)
            if why:
                report.skipped[cid] = why
                continue
            asset, scene = assets[cid], assets[job.scene_id]
            out.append(
                describe(
                    job, asset, scene, channel, list(asset.renditions), brief, rights[cid],
                    campaign, run, self.brand,
                )
            )  # fmt: skip
        return out

    def _check_watermarks(self, creatives: list[Creative], report: PublishReport) -> None:
        """Renditions the channel's delivery profile marks must carry the mark: a brand
        that requires it refuses them, otherwise a warning. Renditions the profile leaves
        unmarked (other formats, narrower files) are what the profile asked for."""
        for c in creatives:
            mark = self.profile_of(c).watermark
            bare = [r for r in c.renditions if not r.watermark and mark.applies(r.format, r.width)]
            if not bare:
                continue
            sizes = ", ".join(f"{r.format} {r.width}×{r.height}" for r in bare)
            if self.brand.rights.watermark == "required":
                raise UserError(
                    f"creative {c.asset.id} ({c.channel.name}): no invisible watermark in "
                    f"{sizes}, which delivery profile '{c.channel.delivery}' marks; a 32-bit "
                    "mark needs at least 256×256 px.",
                    hint="raise the channel's smallest width or the profile's "
                    "watermark.min_width and re-run the brief, or set rights.watermark: "
                    "when_possible in brand.yaml",
                )
            report.warnings.append(f"{c.asset.id}: published without watermark: {sizes}")

    # ------------------------------------------------------------------ stamping

    def _stamp_all(
        self,
        creatives: list[Creative],
        identity: SigningIdentity,
        report: PublishReport,
        stream: EventStream,
        storage: Sequence[tuple[str, Any]],
    ) -> dict[str, dict[int, StampedFile]]:
        """Per target, the stamped files of each rendition id, stamping only what is not
        cached. A remote manifest's file names its sidecar's URL, so those are stamped per
        target base URL (targets that share one share the stamp). New stamp rows are
        written together at the end (or when stamping stops), each after its blob; a
        crash in between only costs signing those files again."""
        cached = self._stamps(creatives)
        fresh: list[dict[str, Any]] = []
        wanted: dict[str, dict[int, _Wanted]] = {name: {} for name, _ in storage}
        stream.emit("stage.started", stage="stamp", total=len(creatives))
        try:
            for c in creatives:
                before = report.stamped
                self._stamp_one(c, identity, report, cached, fresh, wanted)
                stream.emit("job.finished", stage="stamp", job=c.asset.id,
                            data={"stamped": report.stamped - before})  # fmt: skip
                stream.tick()
        finally:
            if fresh:
                with self.db.session() as s:
                    repo.add_stamps(s, fresh)
        # another publisher (of another target) may have stamped first: its bytes are
        # the ones every later publish uses, so use them here too
        final = self._stamps(creatives) if fresh else cached
        out: dict[str, dict[int, StampedFile]] = {}
        for name, files in wanted.items():
            out[name] = {}
            for rid, (key, remote_name) in files.items():
                sha = final[(f"r:{rid}", key)]
                sidecar = final[(f"r:{rid}", _sidecar_key(key))] if remote_name else None
                out[name][rid] = StampedFile(sha, remote_name or sha, sidecar)
        stream.emit("stage.finished", stage="stamp")
        return out

    def profile_of(self, c: Creative) -> DeliveryProfile:
        """The delivery profile of a creative's channel, from this workspace's settings."""
        known = self.profiles
        profile = known.get(c.channel.delivery)
        if profile is None:
            raise UserError(
                f"channel {c.channel.name}: delivery profile {c.channel.delivery!r} is not "
                f"defined (profiles: {', '.join(sorted(known))}).",
                hint="define it under `delivery:` in bildwerk.yaml or name another one",
            )
        return profile

    def _stamp_one(
        self,
        c: Creative,
        identity: SigningIdentity,
        report: PublishReport,
        cached: dict[tuple[str, str], str],
        fresh: list[dict[str, Any]],
        wanted: dict[str, dict[int, _Wanted]],
    ) -> None:
        """Stamp one creative's master and renditions (what is not cached yet), per its
        channel's delivery profile; the master always carries the full record."""
        author = self.brand.name
        profile = self.profile_of(c)
        fields = profile_fields(profile)

        def store(subject: str, key: str, data: bytes, count: bool = True) -> str:
            sha = self.blobs.put(data)  # durable before the row that names it
            fresh.append({"subject": subject, "stamp_key": key, "sha256": sha,
                          "bytes": len(data)})  # fmt: skip
            cached[(subject, key)] = sha
            report.stamped += count
            return sha

        subject = f"m:{c.asset.id}"
        master_key = stamp_key(identity.fingerprint, build_xmp(c.meta), c.asset.sha256)
        master_sha = cached.get((subject, master_key))
        if master_sha is None:
            signed = stamp(
                self.blobs.get(c.asset.sha256), "png", c.meta, identity=identity, author=author
            )
            master_sha = store(subject, master_key, signed.data)
        master: bytes | None = None
        for r in c.renditions:
            meta = replace(c.meta, generation={**c.meta.generation, "watermark": r.watermark})
            base = stamp_key(identity.fingerprint, fields, build_xmp(meta), r.sha256, master_sha)
            # a remote manifest's file names its sidecar, whose name derives from ``base``
            # (the signed bytes cannot name themselves): one stamp per sidecar URL
            urls = {
                target: _delivery.sidecar_url(self.settings.targets[target],
                                              _delivery.image_key(c, r.width, r.format, base))
                if profile.c2pa == "remote" else ""
                for target in wanted
            }  # fmt: skip
            for url in sorted(set(urls.values())):
                key = stamp_key(base, url) if url else base
                if (f"r:{r.id}", key) not in cached or (
                    url and (f"r:{r.id}", _sidecar_key(key)) not in cached
                ):
                    master = master or self.blobs.get(master_sha)
                    signed = stamp(
                        self.blobs.get(r.sha256), r.format, meta, identity=identity,
                        author=author, master=master, master_title=f"{c.meta.title} (master)",
                        profile=profile, sidecar_url=url, width=r.width,
                    )  # fmt: skip
                    store(f"r:{r.id}", key, signed.data)
                    if signed.sidecar is not None:
                        store(f"r:{r.id}", _sidecar_key(key), signed.sidecar, count=False)
                for target, target_url in urls.items():
                    if target_url == url:
                        wanted[target][r.id] = (key, base if url else None)

    def _stamps(self, creatives: list[Creative]) -> dict[tuple[str, str], str]:
        """Every cached stamp of these creatives whose blob is still there, in one query."""
        subjects = [f"m:{c.asset.id}" for c in creatives]
        subjects += [f"r:{r.id}" for c in creatives for r in c.renditions]
        with self.db.session() as s:
            rows = [(r.subject, r.stamp_key, r.sha256) for r in repo.stamps_for(s, subjects)]
        return {(subj, key): sha for subj, key, sha in rows if self.blobs.has(sha)}

    # ------------------------------------------------------------------ targets

    recover = _delivery.recover

    rebuild_site = _delivery.rebuild_site

    def _notify(
        self, name: str, hook: WebhookTarget, run_id: str, creatives: list[Creative]
    ) -> None:
        conf = self.settings.targets[name]
        assert isinstance(conf, WebhookTargetSettings)
        with self.db.session() as s:
            live = repo.publications(
                s, conf.origin, published_only=True, asset_ids=[c.asset.id for c in creatives]
            )
        files = _delivery.published_files(live)
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
            repo.upsert_publications(
                s,
                name,
                [
                    {"key": f"asset/{img.asset_id}", "asset_id": img.asset_id,
                     "rendition_id": None, "url": hook.url, "sha256": key, "run_id": run_id,
                     "meta": {"origin": conf.origin}}
                    for img in images
                ],
            )  # fmt: skip
            repo.log_event(
                s,
                "publish.notified",
                run_id=run_id,
                actor=self.actor,
                payload={"target": name, "assets": len(images), "idempotency_key": key},
            )

    # ------------------------------------------------------------------ rights

    sync = _sync_module.sync

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
