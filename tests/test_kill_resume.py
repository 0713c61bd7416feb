"""kill -9 at random points of `bildwerk run` (one and two workers), then resume: the
masters and renditions are byte-identical to an uninterrupted run, and fsck is clean."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bildwerk import Workspace
from bildwerk.catalog.models import Asset, Job, Rendition, Run
from tests.conftest import SMALL_BRIEF

EXE = Path(sys.executable).with_name("bildwerk")
KILLS = 30


def _workspace(template: Path, dest: Path, catalog: str | None = None) -> tuple[Path, Path]:
    shutil.copytree(template, dest)
    if catalog is not None:
        config = dest / "bildwerk.yaml"
        text = config.read_text(encoding="utf-8")
        assert "url: sqlite:///.bildwerk/catalog.db" in text
        config.write_text(
            text.replace("url: sqlite:///.bildwerk/catalog.db", f"url: {catalog}"),
            encoding="utf-8",
        )
    product = sorted(p.stem for p in (dest / "assets" / "products").glob("*.png"))[0]
    brief = dest / "campaigns" / "small.yaml"
    brief.write_text(SMALL_BRIEF.format(product=product), encoding="utf-8")
    return dest, brief


def _outputs(root: Path) -> dict[str, object]:
    """Every creative's master and rendition digests, by creative id."""
    ws = Workspace(root)
    with ws.db.session() as s:
        out: dict[str, object] = {}
        for job in s.query(Job):
            master = s.get_one(Asset, job.creative_id)
            renditions = sorted(
                (r.format, r.width, r.sha256)
                for r in s.query(Rendition).filter_by(asset_id=job.creative_id)
            )
            out[job.creative_id] = (master.sha256, renditions)
    return out


@pytest.mark.slow
def test_kill_9_anywhere_then_resume_is_byte_identical(
    template_workspace: Path, tmp_path: Path
) -> None:
    kill_and_resume(template_workspace, tmp_path, KILLS, None)


@pytest.mark.slow
def test_kill_9_on_postgres_then_resume_is_byte_identical(
    template_workspace: Path, tmp_path: Path, postgres_url: str
) -> None:
    kill_and_resume(template_workspace, tmp_path, KILLS // 3, postgres_url)


def kill_and_resume(
    template_workspace: Path, tmp_path: Path, kills: int, catalog: str | None
) -> None:
    ref_root, ref_brief = _workspace(template_workspace, tmp_path / "ref")
    started = time.monotonic()
    ref = subprocess.run(
        [str(EXE), "run", str(ref_brief), "-w", str(ref_root), "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ref.returncode == 0, ref.stderr
    full = time.monotonic() - started

    root, brief = _workspace(template_workspace, tmp_path / "victim", catalog)
    rng = random.Random(9)
    for i in range(kills):
        workers = "1" if i % 2 == 0 else "2"
        proc = subprocess.Popen(
            [str(EXE), "run", str(brief), "-w", str(root), "--workers", workers],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # kill the run and its worker pool together
        )
        time.sleep(rng.uniform(0.1, max(0.5, full * 0.6)))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    final = subprocess.run(
        [str(EXE), "run", str(brief), "-w", str(root), "--workers", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert final.returncode == 0, final.stderr
    assert _outputs(root) == _outputs(ref_root)
    assert len(_outputs(root)) == 8
    fsck = subprocess.run(
        [str(EXE), "fsck", "-w", str(root), "--repair", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    report = json.loads(fsck.stdout)
    assert not report["missing"] and not report["corrupt"]
    ws = Workspace(root)
    with ws.db.session() as s:
        statuses = {r.status for r in s.query(Run)}
    assert "running" not in statuses  # every killed run was marked as interrupted
