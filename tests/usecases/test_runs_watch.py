"""`bildwerk runs watch` in another process shows the same events, in the same order,
as the run's own progress."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bildwerk import Workspace
from bildwerk.events import Event

EXE = Path(sys.executable).with_name("bildwerk")


def test_watch_replays_and_follows_the_runs_own_events(
    workspace_dir: Path, small_brief: Path, tmp_path: Path
) -> None:
    log = tmp_path / "run-events.jsonl"
    run = subprocess.Popen(
        [str(EXE), "run", str(small_brief), "-w", str(workspace_dir), "--workers", "2",
         "--event-log", str(log), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    ws = Workspace(workspace_dir)
    deadline = time.monotonic() + 300
    while not ws.runs() and time.monotonic() < deadline:
        time.sleep(0.2)
    run_id = ws.runs()[0].id
    watch = subprocess.run(
        [str(EXE), "runs", "watch", run_id, "-w", str(workspace_dir), "--json", "--timeout", "600"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    _out, err = run.communicate(timeout=900)
    assert run.returncode == 0, err
    assert watch.returncode == 0, watch.stderr
    live = [Event.from_json(json.loads(line)) for line in log.read_text().splitlines()]
    watched = [Event.from_json(json.loads(line)) for line in watch.stdout.splitlines()]
    assert [e.to_json() for e in watched] == [e.to_json() for e in live]
    kinds = [e.kind for e in live]
    assert kinds[0] == "run.started" and kinds[-1] == "run.finished"
    assert {"stage.started", "job.finished", "stage.finished"} <= set(kinds)
    assert [e.seq for e in live] == list(range(1, len(live) + 1))
    finished = [e for e in live if e.kind == "job.finished" and e.stage == "catalog"]
    assert len(finished) == 8
    # watching a finished run replays it and returns at once
    again = subprocess.run(
        [str(EXE), "runs", "watch", "latest", "-w", str(workspace_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert [json.loads(x) for x in again.stdout.splitlines()] == [e.to_json() for e in live]
