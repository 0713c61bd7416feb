"""Issue 10 items 3 and 4: a publish killed with SIGKILL at seeded random points, then
resumed or revoked and synced, leaves exactly what the rows say on the target (no
orphans, no temp files); two concurrent publishes to one folder put each creative live
once with a complete ``_headers`` record; a held target names its holder."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bildwerk.atomicio import sha256_file
from bildwerk.catalog.models import Publication
from bildwerk.publish.lease import TargetBusyError, TargetLease
from bildwerk.workspace import Workspace
from tests.publish.test_publish import FILES, fresh, ran  # noqa: F401  (the module fixture)

HEADERS = {"_headers", "_headers.json"}


def start_publish(root: Path, run_id: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, "-m", "bildwerk", "publish", run_id, "--to", "site",
         "-w", str(root), "--json", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def on_target(root: Path) -> dict[str, Path]:
    public = root / "public"
    return {
        p.relative_to(public).as_posix(): p
        for p in public.rglob("*")
        if p.is_file() and p.name not in HEADERS
    }


def assert_target_matches_rows(ws: Workspace) -> list[Publication]:
    """Every file on the target is a published row with those bytes, and the reverse."""
    files = on_target(ws.root)
    assert not [k for k in files if "/." in f"/{k}"], "temp files left in the served tree"
    with ws.db.session() as s:
        rows = list(s.scalars(select(Publication).where(Publication.target == "site")))
        s.expunge_all()
    live = {p.key: p for p in rows if p.state == "published"}
    assert [p.key for p in rows if p.state in ("uploading", "removing")] == []
    assert sorted(files) == sorted(live)
    for key, row in live.items():
        assert sha256_file(files[key]) == row.sha256, key
    record = ws.root / "public" / "_headers.json"
    if live:
        assert sorted(json.loads(record.read_text())) == sorted(live)
    per_rendition: dict[int, int] = {}
    for p in live.values():
        if p.rendition_id is not None and not p.key.endswith(".c2pa"):
            per_rendition[p.rendition_id] = per_rendition.get(p.rendition_id, 0) + 1
    assert all(n == 1 for n in per_rendition.values()), "a rendition is live twice"
    # a remote manifest's sidecar is live exactly when its file is
    sidecars = [k for k in live if k.endswith(".c2pa")]
    assert all(k.removesuffix(".c2pa") in live for k in sidecars), "a sidecar without its file"
    return rows


def test_killed_publish_resumed_or_revoked_leaves_no_orphan(
    ran: tuple[Path, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    ws, run_id = fresh(ran, tmp_path)
    t0 = time.monotonic()
    done = start_publish(ws.root, run_id)
    assert done.wait(120) == 0, done.stderr.read() if done.stderr else ""
    full = time.monotonic() - t0
    assert_target_matches_rows(ws)
    # start over from an empty target, killed at seeded points within a publish's time
    ws, run_id = fresh(ran, tmp_path / "again")
    rng = random.Random(10)
    for at in sorted(rng.uniform(0.3, 1.0) * full for _ in range(4)):
        proc = start_publish(ws.root, run_id)
        time.sleep(at)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with ws.db.session() as s:
        rows = list(s.scalars(select(Publication).where(Publication.asset_id.is_not(None))))
        revoked = sorted({p.asset_id for p in rows if p.asset_id})
    pub = ws.publisher("legal")
    if revoked:  # kill, then revoke and sync: nothing of the creative stays
        # its keys as the kill left them: intents that sync clears leave no row behind
        gone = {p.key.rsplit("/", 1)[-1] for p in rows if p.asset_id == revoked[0]}
        pub.set_rights(revoked[0], revoke="model release withdrawn")
        pub.sync()
        assert_target_matches_rows(ws)
        assert gone and not gone & {Path(k).name for k in on_target(ws.root)}
        pages = " ".join(
            p.read_text() for k, p in on_target(ws.root).items() if k.endswith((".html", ".xml"))
        )
        assert not any(name in pages for name in gone)
    resumed = pub.publish(run_id, ["site"])  # resume: the rest goes up, exactly once
    assert resumed.published
    assert_target_matches_rows(ws)


def test_concurrent_publishes_put_each_creative_live_once(
    ran: tuple[Path, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    ws, run_id = fresh(ran, tmp_path)
    procs = [start_publish(ws.root, run_id, "--wait", "300") for _ in range(2)]
    for p in procs:
        assert p.wait(300) == 0, p.stderr.read() if p.stderr else ""
    rows = assert_target_matches_rows(ws)
    images = [p for p in rows if p.rendition_id is not None and not p.key.endswith(".c2pa")]
    assert len([p for p in images if p.state == "published"]) == FILES


def test_a_held_target_names_its_holder(ran: tuple[Path, str], tmp_path: Path) -> None:  # noqa: F811
    ws, run_id = fresh(ran, tmp_path)
    busy = r"'site' is being published by elsewhere:4242"
    with (
        TargetLease(ws.db, "site", op="publish other", owner="elsewhere:4242"),
        pytest.raises(TargetBusyError, match=busy),
    ):
        ws.publisher("t").publish(run_id, ["site"], wait=0.5)
    assert not (ws.root / "public" / "img").exists()
    assert ws.publisher("t").publish(run_id, ["site"]).uploaded == FILES  # released


def test_a_page_that_cannot_be_keyed_stops_the_publish_before_any_byte_leaves(
    ran: tuple[Path, str],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 10 item 7: every key, the pages' too, is checked before the first upload;
    a bad one leaves the target empty and no row behind."""
    from bildwerk.errors import UserError
    from bildwerk.publish.site import Page

    ws, run_id = fresh(ran, tmp_path)
    monkeypatch.setattr(Page, "key", property(lambda self: f"../{self.locale}/index.html"))
    with pytest.raises(UserError, match=r"invalid publish key '\.\./"):
        ws.publisher("t").publish(run_id, ["site"])
    assert on_target(ws.root) == {}
    with ws.db.session() as s:
        assert list(s.scalars(select(Publication))) == []
    monkeypatch.undo()
    assert ws.publisher("t").publish(run_id, ["site"]).uploaded == FILES
    assert_target_matches_rows(ws)
