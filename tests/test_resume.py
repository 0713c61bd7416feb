"""Failures and interruptions leave a consistent catalog; a re-run resumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bildwerk import Workspace
from bildwerk.catalog.models import Asset, Job, Rendition, Run
from bildwerk.stages import work


def assert_consistent(ws: Workspace) -> None:
    """Every row that names a blob has it, complete (its sha256 matches)."""
    from bildwerk.blobs import sha256_file

    with ws.db.session() as s:
        shas = [a.sha256 for a in s.query(Asset)] + [r.sha256 for r in s.query(Rendition)]
        for job in s.query(Job):
            assert s.get(Asset, job.creative_id) is not None
    for sha in shas:
        assert sha256_file(ws.blobs.path(sha)) == sha


def test_failed_jobs_are_recorded_and_rerun_resumes(
    workspace_dir: Path, small_brief: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = work.render
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise RuntimeError("encoder exploded")
        return real(*args, **kwargs)

    monkeypatch.setattr(work, "render", flaky)
    ws = Workspace(workspace_dir)
    first = ws.run(small_brief, workers=1)
    assert first.failed == 2 and first.generated == 6
    assert all("encoder exploded" in e for e in first.errors.values())
    info = ws.run_info(first.run_id)
    assert info["status"] == "failed"
    assert_consistent(ws)
    monkeypatch.setattr(work, "render", real)
    second = ws.run(small_brief, workers=1)
    assert (second.generated, second.cached, second.failed) == (2, 6, 0)
    assert ws.run_info(second.run_id)["status"] == "done"


def test_interrupt_mid_run_then_resume(
    workspace_dir: Path, small_brief: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = work.compose
    calls = {"n": 0}

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(work, "compose", interrupted)
    ws = Workspace(workspace_dir)
    with pytest.raises(KeyboardInterrupt):
        ws.run(small_brief, workers=1)
    with ws.db.session() as s:
        run = s.query(Run).one()
        assert run.status == "interrupted" and "interrupted" in (run.error or "")
        done = s.query(Job).count()
    assert 0 < done < 8
    assert_consistent(ws)
    monkeypatch.setattr(work, "compose", real)
    again = ws.run(small_brief, workers=1)
    assert again.cached == done and again.generated == 8 - done and again.failed == 0
