"""Delivering to one target: taking back what a killed publish left, putting a run's
files up behind recorded intents, taking superseded names down, and rebuilding the
target's pages and sitemaps from its publication rows. Called by :class:`Publisher`
(and ``--sync``) while it holds the target's lease.

A rendition whose delivery profile keeps its Content Credentials remote has a second
file, its ``.c2pa`` sidecar (``<file>.c2pa``): it goes up with the image behind the same
intents, is rolled back, superseded and taken down with it, and never reaches the pages
(its row carries ``meta.sidecar``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from bildwerk.atomicio import sha256_bytes
from bildwerk.catalog import repo
from bildwerk.catalog.models import Publication
from bildwerk.config.publishing import FolderTargetSettings, S3TargetSettings, TargetSettings
from bildwerk.errors import UserError
from bildwerk.events import EventStream
from bildwerk.publish.describe import Creative
from bildwerk.publish.lease import TargetLease
from bildwerk.publish.site import PublishedFile, site_files
from bildwerk.publish.target_config import site_url
from bildwerk.publishers import (
    IMMUTABLE,
    REVALIDATE,
    PublishError,
    PublishTarget,
    check_key,
    content_type_for,
    origin_key,
)
from bildwerk.records import PublicationRecord

IMAGE_DIR = "img"
SIDECAR_SUFFIX = ".c2pa"
SIDECAR_TYPE = "application/c2pa"


@dataclass(frozen=True)
class StampedFile:
    """A rendition as stamped for one target: the file's blob, the hash its name carries
    (its own sha256, or for a remote manifest the stamp's, as the file names its
    sidecar's URL and so cannot name its own bytes) and the sidecar's blob, if any."""

    sha: str
    name: str
    sidecar: str | None = None


def sidecar_url(conf: TargetSettings, key: str) -> str:
    """Where ``key``'s sidecar will be served: under the target's public base URL, else
    relative to the file itself (its name), which resolves wherever the pair is served."""
    base = None
    if isinstance(conf, FolderTargetSettings):
        base = conf.base_url
    elif isinstance(conf, S3TargetSettings):
        base = conf.public_base_url
    if base:
        return f"{base.rstrip('/')}/{quote(key)}{SIDECAR_SUFFIX}"
    return key.rsplit("/", 1)[-1] + SIDECAR_SUFFIX


def is_sidecar(row: Publication) -> bool:
    return bool((row.meta or {}).get("sidecar"))


if TYPE_CHECKING:
    from bildwerk.publish.publisher import Publisher, PublishReport


def recover(pub: Publisher, name: str, target: PublishTarget) -> bool:
    """Take back what a killed publish left on ``name`` (files of ``uploading`` rows,
    ``removing`` rows not yet deleted, temp files); call it holding the target's
    lease. Returns whether the site's pages need rebuilding."""
    swept = _sweep(target)
    with pub.db.session() as s:
        pending = repo.pending_publications(s, name)
        stale_pages = any(p.sha256 == "" for p in repo.publications(s, name, published_only=True))
    if not pending:
        return stale_pages
    for p in pending:
        target.delete(p.key)
    with pub.db.session() as s:
        repo.drop_intents(s, name, [p.key for p in pending if p.state == "uploading"])
        repo.finish_removal(s, name, [p.key for p in pending if p.state == "removing"])
        repo.log_event(
            s, "publish.recovered", actor=pub.actor,
            payload={"target": name, "taken_back": len(pending), "temp_files": swept},
        )  # fmt: skip
    return True


def publish_target(
    pub: Publisher,
    name: str,
    target: PublishTarget,
    creatives: list[Creative],
    stamped: dict[int, StampedFile],
    report: PublishReport,
    stream: EventStream,
    lease: TargetLease,
) -> str:
    """All of the run's files and the pages onto one target, recorded in one
    transaction, or none of the new ones; returns the landing index URL."""
    with _batched(target):
        recover(pub, name, target)
        with pub.db.session() as s:
            current = {p.key: p for p in repo.publications(s, name)}
        rows = plan_files(pub, creatives, stamped, current, report)
        keys = {check_key(str(r["key"])) for r in rows}
        fresh = {r["rendition_id"] for r in rows}
        superseded = [
            p.key
            for p in current.values()
            if p.state == "published" and p.rendition_id in fresh and p.key not in keys
        ]
        with pub.db.session() as s:
            repo.record_intents(s, name, rows)  # before the first byte goes up
        put: list[str] = []
        c: Creative | None = None
        try:
            # the pages these files will make, built (their keys checked) before any byte
            # leaves: a page that cannot be made stops the publish with nothing sent
            home = site_url(pub.settings.targets[name])
            _site(pub, name, {k: f"{home}/{k}" for k in keys}, set(superseded))
            by_key = {str(r["key"]): r for r in rows}
            for c in creatives:
                before = report.uploaded
                for r in c.renditions:
                    file = stamped[r.id]
                    key = image_key(c, r.width, r.format, file.name)
                    if key not in by_key:
                        continue
                    if file.sidecar is not None:  # before the file that points at it
                        side = key + SIDECAR_SUFFIX
                        by_key[side]["url"] = target.put(
                            side, pub.blobs.get(file.sidecar),
                            content_type=SIDECAR_TYPE, cache_control=IMMUTABLE,
                        )  # fmt: skip
                        put.append(side)
                    by_key[key]["url"] = target.put(
                        key, pub.blobs.get(file.sha),
                        content_type=content_type_for(key), cache_control=IMMUTABLE,
                    )  # fmt: skip
                    put.append(key)
                    report.uploaded += 1
                done = {"target": name, "uploaded": report.uploaded - before}
                stream.emit("job.finished", stage="upload", job=c.asset.id, data=done)
                stream.tick()
            c = None

            def commit(s: Session) -> None:
                repo.upsert_publications(s, name, rows)
                repo.mark_removing(s, name, superseded, "superseded")
                repo.log_events(
                    s,
                    [
                        {
                            "type": "asset.published",
                            "run_id": c.run_id,
                            "subject": c.asset.id,
                            "actor": pub.actor,
                            "payload": {"target": name, "files": len(c.renditions)},
                        }
                        for c in creatives
                    ],
                )
                stream.flush(s)

            url = rebuild_site(
                pub,
                name,
                target,
                include={k: str(r["url"]) for k, r in by_key.items()},
                exclude=set(superseded),
                commit=commit,
                lease=lease,
            )
        except (PublishError, UserError) as exc:
            if c is not None:
                stream.emit("job.failed", stage="upload", job=c.asset.id, message=str(exc),
                            data={"target": name})  # fmt: skip
            live = {k for k, p in current.items() if p.state == "published"}
            taken = [k for k in put if k not in live]
            for key in taken:  # only what this call added
                with contextlib.suppress(Exception):
                    target.delete(key)
            with pub.db.session() as s:
                repo.drop_intents(s, name, sorted(keys))
                repo.log_event(
                    s,
                    "publish.failed",
                    actor=pub.actor,
                    payload={"target": name, "rolled_back": len(taken)},
                )
            raise
        finish_removals(pub, name, target, superseded)
    return url


def plan_files(
    pub: Publisher,
    creatives: list[Creative],
    stamped: dict[int, StampedFile],
    current: dict[str, Publication],
    report: PublishReport,
) -> list[dict[str, Any]]:
    """The rows of the files to upload (keys checked before any byte leaves); what
    is already live with the same bytes is counted as unchanged. A sidecar's row
    comes with its file's, whenever the file goes up."""
    rows = []
    for c in creatives:
        for r in c.renditions:
            stamp = stamped[r.id]
            sha = stamp.sha
            key = image_key(c, r.width, r.format, stamp.name)
            row = current.get(key)
            side = current.get(key + SIDECAR_SUFFIX)
            if (
                row is not None
                and row.state == "published"
                and row.sha256 == sha
                and (stamp.sidecar is None or (side is not None and side.sha256 == stamp.sidecar
                                               and side.state == "published"))
            ):  # fmt: skip
                report.unchanged += 1
                continue
            if stamp.sidecar is not None:
                rows.append(
                    {
                        "key": key + SIDECAR_SUFFIX,
                        "asset_id": c.asset.id,
                        "rendition_id": r.id,
                        "url": "",
                        "sha256": stamp.sidecar,
                        "run_id": c.run_id,
                        "meta": {"sidecar": "c2pa", "of": key},
                    }
                )
            rows.append(
                {
                    "key": key,
                    "asset_id": c.asset.id,
                    "rendition_id": r.id,
                    "url": "",
                    "sha256": sha,
                    "run_id": c.run_id,
                    "meta": PublicationRecord(c.fields, r.format, r.width, r.height).to_json(),
                }
            )
    return rows


def finish_removals(pub: Publisher, name: str, target: PublishTarget, keys: Sequence[str]) -> None:
    """Delete files whose rows say ``removing``, then record them ``removed``."""
    if not keys:
        return
    for key in keys:
        target.delete(key)
    with pub.db.session() as s:
        repo.finish_removal(s, name, keys)


def rebuild_site(
    pub: Publisher,
    name: str,
    target: PublishTarget,
    *,
    include: Mapping[str, str] | None = None,
    exclude: Iterable[str] = (),
    commit: Callable[[Session], None] | None = None,
    lease: TargetLease | None = None,
) -> str:
    """Pages, sitemaps and robots.txt from what is published on ``name`` (plus the
    ``include`` keys about to be, at the URLs given, less the ``exclude`` ones about to
    go). New pages are intents before they are written; the pages, the header record
    and then the rows (``commit``'s and the pages') are recorded in one transaction."""
    home = site_url(pub.settings.targets[name])
    live, pages = _site(pub, name, dict(include or {}), set(exclude))
    old = {p.key: p for p in live if p.rendition_id is None}
    changed = {
        key: data
        for key, data in pages.items()
        if not (key in old and old[key].sha256 == sha256_bytes(data))
    }
    gone = sorted(old.keys() - pages.keys())
    written = [
        {"key": key, "asset_id": None, "rendition_id": None, "url": "",
         "sha256": sha256_bytes(data), "run_id": None, "meta": {"page": True}}
        for key, data in changed.items()
    ]  # fmt: skip
    if written:
        with pub.db.session() as s:
            repo.record_intents(s, name, [w for w in written if w["key"] not in old])
            repo.forget_sha(s, name, [w["key"] for w in written if w["key"] in old])
    for w in written:
        key = str(w["key"])
        w["url"] = target.put(
            key, changed[key], content_type=content_type_for(key), cache_control=REVALIDATE
        )
    _flush(target)  # the header record before the rows that rely on it
    if lease is not None:
        lease.check()
    if written or gone or commit is not None:
        with pub.db.session() as s:
            if commit is not None:
                commit(s)
            repo.upsert_publications(s, name, written)
            repo.mark_removing(s, name, gone, "nothing left to show")
    finish_removals(pub, name, target, gone)
    return f"{home}/index.html" if pages else ""


def _site(
    pub: Publisher, name: str, plus: Mapping[str, str], minus: set[str]
) -> tuple[list[Publication], dict[str, bytes]]:
    """The target's rows once ``plus`` is up and ``minus`` gone, and the site's pages by
    key, every key checked."""
    home = site_url(pub.settings.targets[name])
    with pub.db.session() as s:
        live = [
            p
            for p in repo.publications(s, name)
            if (p.state == "published" and p.key not in minus) or p.key in plus
        ]
    images = [p for p in live if p.rendition_id is not None and not is_sidecar(p)]
    files = [
        replace(f, url=plus.get(p.key, f.url))
        for p, f in zip(images, published_files(images), strict=True)
    ]
    pages = site_files(files, site_url=home, site_name=pub.settings.name)
    for key in pages:
        check_key(key)
    return live, pages


def image_key(c: Creative, width: int, fmt: str, sha: str) -> str:
    """The key of a rendition's file (its sidecar's is this plus ``.c2pa``)."""
    return f"{IMAGE_DIR}/" + origin_key(c.image.slug, c.channel.name, width, sha, fmt)


@contextlib.contextmanager
def _batched(target: PublishTarget) -> Iterator[None]:
    """The target's ``batch()`` (header files written once) if it has one."""
    batch = getattr(target, "batch", None)
    if batch is None:
        yield
        return
    with batch():
        yield


def _flush(target: PublishTarget) -> None:
    flush = getattr(target, "flush", None)
    if flush is not None:
        flush()


def _sweep(target: PublishTarget) -> int:
    """Temp files a killed writer left on the target (targets that can have them)."""
    sweep = getattr(target, "sweep", None)
    return int(sweep()) if sweep is not None else 0


def published_files(rows: Iterable[Publication]) -> list[PublishedFile]:
    """Publication rows of renditions as the pages and webhook events need them
    (sidecars left out: pages and events show images)."""
    records = [(PublicationRecord.from_json(p.meta), p.url) for p in rows if not is_sidecar(p)]
    return [PublishedFile(r.image, r.format, r.width, r.height, url) for r, url in records]
