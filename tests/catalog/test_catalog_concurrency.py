"""Many processes on one catalog: idempotent inserts, job claims, two runs of one brief."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bildwerk.catalog import repo
from bildwerk.catalog.claims import JobClaims
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import (
    Asset,
    Campaign,
    Event,
    ImageHash,
    Job,
    JobClaim,
    Lineage,
    Rendition,
    Run,
    RunJob,
    utcnow,
)
from bildwerk.records import JobSpec

ASSETS = [f"cr_{i}" for i in range(6)]
KEYS = [f"k{i:02d}" for i in range(30)]


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _writer(url: str, barrier: Any, worker: int, won: Any) -> None:
    """Everything a run writes, for the same content as every other worker."""
    db = Database(url)
    run_id = f"run{worker}"
    barrier.wait()
    for _ in range(3):
        with db.session() as s:
            repo.ensure_campaign(s, "c1", "Campaign")
            repo.ensure_brief_version(
                s, sha256="b" * 64, campaign_id="c1", path="b.yaml", content="x", template_sha256=""
            )
            if s.get(Run, run_id) is None:
                repo.start_run(
                    s,
                    run_id=run_id,
                    campaign_id="c1",
                    brief_sha256="b" * 64,
                    workers=1,
                    backend="studio",
                    planned=len(ASSETS),
                )
            repo.ensure_asset(
                s, asset_id="sc_1", kind="scene", sha256="s" * 64, width=8, height=8, fmt="png"
            )
        for n, asset_id in enumerate(ASSETS):
            with db.session() as s:
                repo.ensure_asset(
                    s,
                    asset_id=asset_id,
                    kind="creative",
                    sha256="d" * 64,
                    width=8,
                    height=8,
                    fmt="png",
                )
                repo.add_lineage(s, asset_id, "sc_1", "scene_of")
                for fmt in ("webp", "jpeg"):
                    repo.add_rendition(
                        s,
                        asset_id,
                        format=fmt,
                        width=8,
                        height=8,
                        sha256="e" * 64,
                        bytes=10,
                        quality=80,
                    )
                repo.set_hashes(s, asset_id, 2**63 + n, 5)
                repo.insert_job(
                    s,
                    _spec(f"job{n}"),
                    campaign_id="c1",
                    creative_id=asset_id,
                    scene_id="sc_1",
                    qa={},
                    duration_ms=1,
                    first_run_id=run_id,
                )
                repo.record_run_job(s, run_id, f"job{n}", n, "generated")
    with db.session() as s:
        mine = repo.claim_jobs(s, run_id, f"test:{worker}", KEYS, 60)
    won.put(sorted(mine))
    db.close()


def _spec(key: str) -> JobSpec:
    from bildwerk.backends.base import SceneRequest
    from bildwerk.config.brief import Copy
    from bildwerk.config.channels import PRESETS
    from bildwerk.geometry import plan_layout

    channel = PRESETS["og_image"]
    layout = plan_layout(channel.width, channel.height, channel.unsafe, 0.05)
    scene = SceneRequest("s", "p", "", {"product": "serum"}, 1, 8, 8, {}, layout)
    return JobSpec(
        id="cr_" + key,
        job_key=key,
        scene_key=scene.key,
        seed=1,
        slots={"product": "serum"},
        prompt="p",
        negative_prompt="",
        segment="a",
        locale="en-US",
        direction="ltr",
        channel=channel,
        backend="studio",
        model=None,
        params={},
        copy=Copy(headline="x"),
    )


def test_many_processes_insert_the_same_rows(catalog_url: str) -> None:
    Database(catalog_url).close()
    ctx = multiprocessing.get_context("spawn")
    n = 3
    barrier, won = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(catalog_url, barrier, i, won)) for i in range(n)]
    for p in procs:
        p.start()
    claimed = [won.get(timeout=90) for _ in procs]
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * n
    # each job key was won by exactly one process
    assert sorted(k for keys in claimed for k in keys) == KEYS
    db = Database(catalog_url)
    try:
        with db.session(write=False) as s:

            def count(model: Any) -> int:
                return int(s.scalar(select(func.count()).select_from(model)) or 0)

            assert count(Campaign) == 1 and count(Asset) == len(ASSETS) + 1
            assert count(Lineage) == len(ASSETS) and count(Rendition) == 2 * len(ASSETS)
            assert count(ImageHash) == len(ASSETS) and count(Job) == len(ASSETS)
            assert count(RunJob) == n * len(ASSETS) and count(JobClaim) == len(KEYS)
            created = s.scalars(select(Event.type).where(Event.type == "campaign.created"))
            assert len(list(created)) == 1  # only the process that inserted it logs it
            assert repo.hashes_for(s, ["cr_1"])["cr_1"] == (2**63 + 1, 5)
    finally:
        db.close()


def test_claims_lease_heartbeat_release(catalog_url: str) -> None:
    db = Database(catalog_url)
    try:
        with db.session() as s:
            assert repo.claim_jobs(s, "r1", "h:1", ["a", "b"], 60) == {"a", "b"}
        with db.session() as s:
            assert repo.claim_jobs(s, "r2", "h:2", ["a", "b", "c"], 60) == {"c"}
            assert repo.heartbeat(s, "r1") == 2
        with db.session() as s:  # r1 stops beating: after the lease, r2 takes "a" over
            old = utcnow() - timedelta(seconds=120)
            s.execute(update(JobClaim).where(JobClaim.job_key == "a").values(heartbeat_at=old))
        with db.session() as s:
            assert repo.claim_jobs(s, "r2", "h:2", ["a", "b"], 60) == {"a", "c"} - {"c"}
            repo.release_jobs(s, ["b"], run_id="r2")  # not r2's: stays
            assert repo.job_claims(s, ["b"])["b"].run_id == "r1"
            repo.release_jobs(s, ["b"], run_id="r1")
            assert repo.claim_jobs(s, "r2", "h:2", ["b"], 60) == {"b"}
    finally:
        db.close()


def test_claims_of_a_dead_process_are_taken_at_once(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        with db.session() as s:
            owner = f"{JobClaims(db, 'x').owner.rpartition(':')[0]}:{dead.pid}"
            assert repo.claim_jobs(s, "killed", owner, ["a"], 3600) == {"a"}
            assert repo.claim_jobs(s, "elsewhere", "otherhost:1", ["b"], 3600) == {"b"}
        with JobClaims(db, "resumed", heartbeat_seconds=0.05) as claims:
            assert claims.take(["a", "b"]) == {"a"}  # the live remote claim is respected
            time.sleep(0.2)
            with db.session(write=False) as s:
                beat = repo.job_claims(s, ["a"])["a"]
                assert beat.run_id == "resumed" and beat.owner == claims.owner
        with db.session(write=False) as s:  # released when the run ends
            assert set(repo.job_claims(s, ["a", "b"])) == {"b"}
    finally:
        db.close()


def _bildwerk(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("bildwerk")), *args]


def test_two_runs_of_one_brief_and_an_approval(workspace_dir: Path, small_brief: Path) -> None:
    ws = str(workspace_dir)
    env = {**os.environ, "BILDWERK_USER": "tester"}
    runs = [
        subprocess.Popen(
            _bildwerk("run", str(small_brief), "-w", ws, "--workers", "1", "--json"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    catalog = workspace_dir / ".bildwerk" / "catalog.db"
    deadline = time.monotonic() + 60
    started = 0
    while started == 0 and time.monotonic() < deadline:
        time.sleep(0.3)
        if catalog.exists():
            try:
                db = Database(f"sqlite:///{catalog}")
            except Exception:  # still being created by one of the runs
                continue
            with db.session(write=False) as s:
                started = len(repo.list_runs(s))
            db.close()
    approve = subprocess.run(
        _bildwerk("approve", "--run", "latest", "--by", "x", "-w", ws, "--json"),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    results = [p.communicate(timeout=180) for p in runs]
    for p, (_, err) in zip(runs, results, strict=True):
        assert p.returncode == 0, err
    assert approve.returncode == 0, approve.stderr
    for text in (approve.stderr, *(err for _, err in results)):
        assert "Traceback" not in text and "locked" not in text
    db = Database(f"sqlite:///{catalog}")
    try:
        with db.session(write=False) as s:
            rows = s.execute(select(RunJob.job_key, RunJob.status)).all()
            jobs = int(s.scalar(select(func.count()).select_from(Job)) or 0)
    finally:
        db.close()
    per_key: dict[str, list[str]] = {}
    for key, status in rows:
        per_key.setdefault(key, []).append(status)
    assert jobs == len(per_key) > 0
    odd = {k: v for k, v in per_key.items() if sorted(v) != ["cached", "generated"]}
    assert not odd, (odd, results)
    assert Counter(s for v in per_key.values() for s in v) == {
        "cached": len(per_key),
        "generated": len(per_key),
    }
