"""The run queue: submit, workers that claim with a lease, a dead worker's run reclaimed
and resumed, cancellation, and claims that never hand one run to two workers."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bildwerk import Workspace
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Event, Job, Run, RunJob
from bildwerk.events import replay
from bildwerk.runqueue import claim

EXE = Path(sys.executable).with_name("bildwerk")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=600)


def _wait(predicate, timeout: float = 300.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


def test_submit_queues_and_a_worker_runs_it(workspace_dir: Path, small_brief: Path) -> None:
    ws = Workspace(workspace_dir)
    queued = ws.submit(small_brief, workers=1, actor="ana")
    with ws.db.session() as s:
        run = s.get_one(Run, queued["run_id"])
        assert run.status == "queued" and run.planned == queued["planned"] == 8
        assert s.query(Job).count() == 0  # nothing made at submit
    # a fresh process (a restart) finds the queued run and runs it
    proc = cli("worker", "--once", "-w", str(workspace_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"run_id": queued["run_id"], "status": "done"}]
    with ws.db.session() as s:
        run = s.get_one(Run, queued["run_id"])
        assert run.status == "done" and run.generated == 8 and run.owner is None
        assert (workspace_dir / (run.manifest_path or "-")).is_file()  # relative to it
    events = list(replay(ws.db, queued["run_id"]))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].kind == "run.started" and events[-1].kind == "run.finished"
    assert ws.work(once=True) == []  # nothing left


def test_cancel_a_queued_run(workspace_dir: Path, small_brief: Path) -> None:
    ws = Workspace(workspace_dir)
    run_id = ws.submit(small_brief)["run_id"]
    proc = cli("runs", "cancel", run_id[:10], "-w", str(workspace_dir), "--by", "ben")
    assert proc.returncode == 0, proc.stderr
    assert ws.work(once=True) == []
    with ws.db.session() as s:
        run = s.get_one(Run, run_id)
        assert run.status == "cancelled" and "ben" in (run.error or "")
    proc = cli("runs", "cancel", run_id, "-w", str(workspace_dir))
    assert proc.returncode == 2 and "cancelled" in proc.stderr


def test_a_changed_brief_fails_its_queued_run(workspace_dir: Path, small_brief: Path) -> None:
    ws = Workspace(workspace_dir)
    run_id = ws.submit(small_brief)["run_id"]
    small_brief.write_text(small_brief.read_text().replace("seeds: {base: 5", "seeds: {base: 6"))
    assert ws.work(once=True, workers=1) == [{"run_id": run_id, "status": "failed"}]
    with ws.db.session() as s:
        run = s.get_one(Run, run_id)
        assert "changed since" in (run.error or "") and str(small_brief) in (run.error or "")


def _start_worker(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(EXE), "worker", "--once", "--workers", "1", "-w", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _generated(db: Database, run_id: str) -> int:
    with db.session() as s:
        return s.query(RunJob).filter_by(run_id=run_id, status="generated").count()


def test_a_dead_workers_run_is_reclaimed_and_resumed(
    workspace_dir: Path, small_brief: Path
) -> None:
    ws = Workspace(workspace_dir)
    run_id = ws.submit(small_brief, workers=1)["run_id"]
    first = _start_worker(workspace_dir)
    try:
        _wait(lambda: _generated(ws.db, run_id) >= 2)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    with ws.db.session() as s:
        assert s.get_one(Run, run_id).status == "running"  # its lease says who died
    second = cli("worker", "--once", "--workers", "1", "-w", str(workspace_dir), "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == [{"run_id": run_id, "status": "done"}]
    with ws.db.session() as s:
        run = s.get_one(Run, run_id)
        assert run.attempts == 2 and run.generated == 8 and run.failed == 0
        made = [e.subject for e in s.query(Event).filter_by(type="creative.created")]
        assert len(made) == len(set(made)) == 8  # each creative made once
        assert s.query(Job).count() == 8


def test_cancel_a_running_run(workspace_dir: Path, small_brief: Path) -> None:
    ws = Workspace(workspace_dir)
    run_id = ws.submit(small_brief, workers=1)["run_id"]
    worker = _start_worker(workspace_dir)
    try:
        _wait(lambda: _generated(ws.db, run_id) >= 1)
        assert ws.cancel(run_id, actor="ben")["cancel_requested"]
        assert worker.wait(timeout=120) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    with ws.db.session() as s:
        run = s.get_one(Run, run_id)
        assert run.status == "cancelled" and run.generated < 8
    events = list(replay(ws.db, run_id))
    assert events[-1].kind == "run.finished" and events[-1].data["status"] == "cancelled"


def _claim_in_process(url: str, out: Any, done: Any) -> None:
    run = claim(Database(url))
    out.put(run.id if run else None)
    # stay alive until every claimer has tried: a claimer that exits is a dead worker,
    # whose run the next one rightly reclaims (on a loaded machine, before it even tried)
    done.wait(timeout=120)


def claims_are_exclusive(url: str, root: Path, small_brief: Path) -> None:
    ws = Workspace(root)
    queued = {ws.submit(small_brief)["run_id"] for _ in range(3)}
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    done = ctx.Barrier(4)
    procs = [ctx.Process(target=_claim_in_process, args=(url, out, done)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    got = [out.get(timeout=10) for _ in procs]
    claimed = [g for g in got if g is not None]
    assert sorted(claimed) == sorted(queued) and got.count(None) == 1


def test_claims_are_exclusive_on_sqlite(workspace_dir: Path, small_brief: Path) -> None:
    claims_are_exclusive(Workspace(workspace_dir).catalog_url, workspace_dir, small_brief)


def test_claims_are_exclusive_on_postgres(
    workspace_dir: Path, small_brief: Path, postgres_url: str
) -> None:
    config = workspace_dir / "bildwerk.yaml"
    text = config.read_text(encoding="utf-8")
    assert "url: sqlite:///.bildwerk/catalog.db" in text
    config.write_text(
        text.replace("url: sqlite:///.bildwerk/catalog.db", f"url: {postgres_url}"),
        encoding="utf-8",
    )
    ws = Workspace(workspace_dir)
    assert ws.catalog_url == postgres_url
    claims_are_exclusive(postgres_url, workspace_dir, small_brief)


@pytest.mark.parametrize("status", ["done"])
def test_runs_list_shows_queue_states(workspace_dir: Path, small_brief: Path, status: str) -> None:
    ws = Workspace(workspace_dir)
    run_id = ws.submit(small_brief, workers=1)["run_id"]
    proc = cli("runs", "list", "-w", str(workspace_dir), "--json")
    assert {r["id"]: r["status"] for r in json.loads(proc.stdout)}[run_id] == "queued"
    ws.work(once=True, workers=1)
    proc = cli("runs", "list", "-w", str(workspace_dir), "--json")
    assert {r["id"]: r["status"] for r in json.loads(proc.stdout)}[run_id] == status
