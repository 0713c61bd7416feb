"""``bildwerk publish --sync``: expired and revoked creatives come off every target —
files, pages and sitemaps — and every webhook that announced them hears of it, with one
``sync-…`` event stream (stages ``unpublish``, ``pages``, ``notify``).

Sync holds each storage target's lease while it works on it, and first takes back what
a killed publish left there (its ``uploading`` intents and temp files), so a creative
revoked after an interrupted publish leaves nothing behind either."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bildwerk.catalog import repo
from bildwerk.config.publishing import WebhookTargetSettings
from bildwerk.errors import UserError
from bildwerk.events import EventStream
from bildwerk.publish.lease import TargetLease
from bildwerk.publish.rights import withdrawn
from bildwerk.publish.target_config import open_target, open_webhook
from bildwerk.publishers import event_key

if TYPE_CHECKING:
    from bildwerk.publish.publisher import Publisher


@dataclass
class SyncReport:
    removed: dict[str, list[str]] = field(default_factory=dict)  # target -> asset ids
    notified: list[str] = field(default_factory=list)
    events: str = ""


def sync(pub: Publisher, *, wait: float = 0.0) -> SyncReport:
    """Take expired and revoked creatives off every target, pages and sitemaps
    included, and tell every webhook that had announced them; waits up to ``wait``
    seconds for a publisher of a target to finish."""
    stream = pub.stream("sync")
    try:
        report = _sync_all(pub, stream, wait)
    except BaseException as exc:
        pub.failed(stream, exc)
        raise
    stream.emit(
        "run.finished",
        data={
            "status": "done",
            "removed": sum(len(ids) for ids in report.removed.values()),
            "notified": len(report.notified),
        },
    )
    stream.flush_now()
    return report


def _sync_all(pub: Publisher, stream: EventStream, wait: float) -> SyncReport:
    today = dt.date.today()
    report = SyncReport(events=stream.stream)
    with pub.db.session() as s:
        pending = {p.target for p in repo.pending_publications(s)}
    declared = pub.settings.targets
    for name in sorted(pending):  # what killed publishes left, before anything else
        conf = declared.get(name)
        if conf is None or isinstance(conf, WebhookTargetSettings):
            continue
        store = open_target(pub.root, conf)
        with TargetLease(pub.db, name, op="sync", wait=wait), _batched(store):
            if pub.recover(name, store):
                pub.rebuild_site(name, store)
    with pub.db.session() as s:
        gone = withdrawn(s, today)
        live = [(p.target, p.key, p.asset_id) for p in repo.live_publications_of(s, list(gone))]
    by_target: dict[str, list[tuple[str, str]]] = {}
    for target, key, asset_id in live:
        by_target.setdefault(target, []).append((key, asset_id or ""))
    hooks = [n for n in by_target if isinstance(declared.get(n), WebhookTargetSettings)]
    storage = [n for n in by_target if n not in hooks]
    total = sum(len({a for _, a in by_target[n]}) for n in storage)
    if storage:
        stream.emit("stage.started", stage="unpublish", total=total)
    for i, name in enumerate(storage):
        conf = declared.get(name)
        if conf is None:
            raise UserError(
                f"bildwerk.yaml: target {name!r} has published files but is no longer declared.",
                hint="declare it again so its files can be taken down",
            )
        assert not isinstance(conf, WebhookTargetSettings)
        entries = by_target[name]
        ids = sorted({a for _, a in entries})
        store = open_target(pub.root, conf)
        with TargetLease(pub.db, name, op="sync", wait=wait), _batched(store):
            pub.recover(name, store)  # a publish may have been killed since the first pass
            for asset_id in ids:
                for key, of in entries:
                    if of == asset_id:
                        store.delete(key)
                stream.emit("job.finished", stage="unpublish", job=asset_id,
                            data={"target": name, "reason": gone[asset_id]})  # fmt: skip
                stream.tick()
            _record_unpublished(pub, name, entries, ids, gone, stream)
            report.removed[name] = ids
            if i == len(storage) - 1:
                stream.emit("stage.finished", stage="unpublish")
            if i == 0:
                stream.emit("stage.started", stage="pages", total=len(storage))
            url = pub.rebuild_site(name, store)  # pages follow the rows just marked
        stream.emit("job.finished", stage="pages", job=name, data={"url": url})
    if storage:
        stream.emit("stage.finished", stage="pages")
    if hooks:
        stream.emit("stage.started", stage="notify", total=len(hooks))
    for name in hooks:
        conf = declared[name]
        assert isinstance(conf, WebhookTargetSettings)
        entries = by_target[name]
        ids = sorted({a for _, a in entries})
        event = {
            "type": "bildwerk.unpublished",
            "version": 1,
            "assets": [{"asset_id": a, "reason": gone[a]} for a in ids],
        }
        open_webhook(name, conf).notify(event, idempotency_key=event_key(event))
        report.notified.extend(ids)
        _record_unpublished(pub, name, entries, ids, gone, stream)
        report.removed[name] = ids
        stream.emit("job.finished", stage="notify", job=name, data={"assets": len(ids)})
    if hooks:
        stream.emit("stage.finished", stage="notify")
    return report


@contextlib.contextmanager
def _batched(store: object) -> Iterator[None]:
    """The target's ``batch()`` (its header files written once) if it has one."""
    batch = getattr(store, "batch", None)
    if batch is None:
        yield
        return
    with batch():
        yield


def _record_unpublished(
    pub: Publisher,
    name: str,
    entries: list[tuple[str, str]],
    ids: list[str],
    gone: dict[str, str],
    stream: EventStream,
) -> None:
    """Mark a target's files removed (one statement per reason) and log each asset."""
    by_reason: dict[str, list[str]] = {}
    for key, asset_id in entries:
        by_reason.setdefault(gone[asset_id], []).append(key)
    with pub.db.session() as s:
        for reason, keys in sorted(by_reason.items()):
            repo.mark_unpublished_keys(s, name, keys, reason)
        repo.log_events(
            s,
            [
                {
                    "type": "asset.unpublished",
                    "subject": asset_id,
                    "actor": pub.actor,
                    "payload": {"target": name, "reason": gone[asset_id]},
                }
                for asset_id in ids
            ],
        )
        stream.flush(s)
