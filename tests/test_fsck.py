"""fsck: a real catalog (SQLite) against local and object blob stores; repair; the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bildwerk.blobs import BlobStore, LocalBlobStore, ObjectBlobStore, sha256_bytes
from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Stamp
from bildwerk.cli import main
from bildwerk.fsck import fsck
from bildwerk.tempfiles import this_host

pytestmark = pytest.mark.timeout(60)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def seed(db: Database, store: BlobStore) -> dict[str, str]:
    """A catalog whose rows name: good blobs, one never stored, one to be damaged;
    plus an orphan in the store. Returns the digests by role."""
    good = store.put(b"product pixels")
    rendition = store.put(b"webp rendition")
    stamp = store.put(b"stamped jpeg")
    rotten = store.put(b"creative pixels")
    lost = sha256_bytes(b"scene never stored")
    orphan = store.put(b"nobody names me")
    with db.session() as s:
        for asset_id, kind, digest in (
            ("product-1", "product", good),
            ("creative-1", "creative", rotten),
            ("creative-2", "creative", rotten),  # same pixels, two segments
            ("scene-1", "scene", lost),
        ):
            repo.ensure_asset(
                s, asset_id=asset_id, kind=kind, sha256=digest, width=8, height=8, fmt="png"
            )
        repo.add_rendition(
            s,
            "creative-1",
            format="webp",
            width=8,
            height=8,
            sha256=rendition,
            bytes=14,
            quality=80,
        )
        s.add(Stamp(subject="m:creative-1", stamp_key="k1", sha256=stamp, bytes=12))
        s.add(Stamp(subject="r:1", stamp_key="k2", sha256=lost, bytes=1))
    return {"good": good, "rotten": rotten, "lost": lost, "orphan": orphan}


def rot(store: BlobStore, digest: str) -> None:
    if isinstance(store, LocalBlobStore):
        path = store.path(digest)
        path.chmod(0o644)
        path.write_bytes(b"X" + path.read_bytes()[1:])
    else:
        assert isinstance(store, ObjectBlobStore)
        key = store.key(digest)
        store.fs.pipe_file(key, b"X" + store.fs.cat_file(key)[1:])
        store.cache.delete(digest)


def half_written(store: BlobStore, digest: str) -> str:
    """A temp file of a writer that died, next to ``digest``."""
    name = f".tmp-{this_host()}-{_dead_pid()}-ffff"
    if isinstance(store, LocalBlobStore):
        path = store.path(digest).parent / name
        path.write_bytes(b"half")
        return str(path)
    assert isinstance(store, ObjectBlobStore)
    key = store.key(digest).rsplit("/", 1)[0] + "/" + name
    store.fs.pipe_file(key, b"half")
    return f"{store.url}/{digest[:2]}/{name}"


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    return ObjectBlobStore(f"memory://bw-{uuid.uuid4().hex}/blobs", cache=tmp_path / "cache")


def test_fsck_finds_everything_and_repair_leaves_it_clean(store: BlobStore, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'catalog.db'}")
    d = seed(db, store)
    rot(store, d["rotten"])
    temp = half_written(store, d["good"])

    report = fsck(db, store, repair=False)
    assert report.referenced == 5 and report.stored == 5
    assert [m.digest for m in report.missing] == [d["lost"]]
    needers = {(r.table, r.row, r.asset_id) for r in report.missing[0].refs}
    assert needers == {("assets", "scene-1", "scene-1"), ("stamps", "r:1", None)}
    assert [c.digest for c in report.corrupt] == [d["rotten"]]
    corrupt = report.corrupt[0]
    assert corrupt.quarantined_to is None and corrupt.ref_count == 2
    assert {r.asset_id for r in corrupt.refs} == {"creative-1", "creative-2"}
    assert [o.digest for o in report.orphans] == [d["orphan"]]
    assert report.stale_temps == (temp,) and report.temps_removed == 0
    assert report.problems == 3 and not report.clean
    json.dumps(report.to_json())  # JSON-able

    repaired = fsck(db, store, repair=True, prune_orphans=True, orphan_grace=timedelta(0))
    assert repaired.temps_removed == 1
    moved = repaired.corrupt[0].quarantined_to
    assert moved and "quarantine" in moved and not repaired.corrupt[0].healed
    assert [o.pruned for o in repaired.orphans] == [True]
    assert not store.has(d["orphan"]) and not store.has(d["rotten"])
    assert repaired.problems == 2  # the lost blob and the quarantined one need a re-run

    # what a re-run does: produce the same bytes again
    store.put(b"creative pixels")
    store.put(b"scene never stored")
    again = fsck(db, store, repair=False)
    assert again.clean and again.problems == 0 and not again.orphans
    assert again.referenced == again.stored == 5


def test_young_orphans_and_live_temps_are_spared(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'catalog.db'}")
    store = LocalBlobStore(tmp_path / "blobs")
    orphan = store.put(b"in-flight writer's blob; its row is not committed yet")
    live = store.path(orphan).parent / f".tmp-{this_host()}-{os.getpid()}-abcd"
    live.write_bytes(b"half")
    report = fsck(db, store, repair=True, prune_orphans=True)  # default grace: one hour
    assert [(o.digest, o.pruned) for o in report.orphans] == [(orphan, False)]
    assert store.has(orphan) and live.exists() and report.stale_temps == ()
    assert report.clean  # orphans waste space, they break nothing
    hour_ago = time.time() - 3700
    os.utime(store.path(orphan), (hour_ago, hour_ago))
    assert fsck(db, store, repair=True, prune_orphans=True).orphans[0].pruned
    assert not store.has(orphan)


def test_quarantined_blob_is_healed_from_a_verified_cache(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'catalog.db'}")
    store = ObjectBlobStore(f"memory://bw-{uuid.uuid4().hex}", cache=tmp_path / "cache")
    digest = store.put(b"creative")
    with db.session() as s:
        repo.ensure_asset(
            s, asset_id="c", kind="creative", sha256=digest, width=1, height=1, fmt="png"
        )
    store.fs.pipe_file(store.key(digest), b"CREATIVE")  # rots in the bucket, cache is good
    report = fsck(db, store, repair=True)
    assert report.corrupt[0].healed and report.clean
    store.verify(digest)


# --------------------------------------------------------------------------- CLI


def cli(args: list[str], capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch) -> Any:
    mp.setattr(sys, "argv", ["bildwerk", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code, capsys.readouterr().out


def test_cli_fsck_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bildwerk.workspace import Workspace

    (tmp_path / "bildwerk.yaml").write_text("name: fsck-test\n", encoding="utf-8")
    ws = Workspace(tmp_path)
    store = ws.blobs
    assert isinstance(store, LocalBlobStore)
    d = seed(ws.db, store)
    rot(store, d["rotten"])
    temp = half_written(store, d["good"])
    w = ["-w", str(tmp_path)]

    code, out = cli(["fsck", *w], capsys, monkeypatch)
    assert code == 1
    assert d["lost"] in out and "scene-1" in out and d["rotten"] in out and "half-written" in out

    code, out = cli(["fsck", "--repair", "--json", *w], capsys, monkeypatch)
    data = json.loads(out)
    assert code == 1 and data["temps_removed"] == 1 and data["problems"] == 2
    assert data["corrupt"][0]["quarantined_to"].startswith(str(tmp_path / ".bildwerk/blobs"))
    assert Path(data["corrupt"][0]["quarantined_to"]).read_bytes().startswith(b"X")
    assert not Path(temp).exists()

    code, _ = cli(["fsck", "--prune-orphans", *w], capsys, monkeypatch)
    assert code == 2  # deleting needs --repair too
    assert store.has(d["orphan"])

    store.put(b"creative pixels")
    store.put(b"scene never stored")
    code, out = cli(["fsck", *w], capsys, monkeypatch)
    assert code == 0 and "clean" in out
