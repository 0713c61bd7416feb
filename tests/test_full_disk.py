"""The full-disk loop (issue 10 item 8): `bildwerk run` on a disk that fills up at
seeded points stops with exit 4 and a message naming the path, never a traceback; after
room is made the same command finishes with outputs byte-identical to an uninterrupted
run, fsck is clean and no run is left `running`. On SQLite the catalog shares the full
disk; on PostgreSQL it lives elsewhere and only the blobs and run folders run out."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bildwerk import Workspace
from bildwerk.catalog.models import Run
from tests.test_kill_resume import _outputs, _workspace

EXE = Path(sys.executable).with_name("bildwerk")
NEEDS_ROOT = "mounting a tmpfs needs root"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=600)


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _mount(where: Path, size: int) -> None:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def reference(
    template_workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, dict[str, object]]:
    """What an uninterrupted run writes (bytes) and makes (digests by creative)."""
    root, brief = _workspace(template_workspace, tmp_path_factory.mktemp("disk-ref") / "ws")
    before = _size(root)
    assert cli("run", str(brief), "-w", str(root), "--workers", "1").returncode == 0
    return _size(root) - before, _outputs(root)


# seeded fractions of a whole run's bytes at which the disk is full
POINTS = [round(random.Random(28 + i).uniform(0.05, 0.8), 3) for i in range(3)]
CASES = [("sqlite", f) for f in POINTS] + [("postgres", f) for f in POINTS[:2]]


@pytest.mark.skipif(os.geteuid() != 0, reason=NEEDS_ROOT)
@pytest.mark.parametrize(("catalog", "fraction"), CASES)
def test_full_disk_at_a_seeded_point_then_resume_is_byte_identical(
    template_workspace: Path,
    tmp_path: Path,
    reference: tuple[int, dict[str, object]],
    request: pytest.FixtureRequest,
    catalog: str,
    fraction: float,
) -> None:
    url = request.getfixturevalue("postgres_url") if catalog == "postgres" else None
    need, expected = reference
    disk = tmp_path / "disk"
    _mount(disk, _size(template_workspace) + 64_000 + int(fraction * need))
    try:
        root, brief = _workspace(template_workspace, disk / "ws", url)
        full = cli("run", str(brief), "-w", str(root), "--workers", "1")
        assert full.returncode == 4, full.stdout + full.stderr
        assert "no space left" in full.stderr and str(disk) in full.stderr
        assert "Traceback" not in full.stderr
        subprocess.run(["mount", "-o", "remount,size=300m", str(disk)], check=True)
        again = cli("run", str(brief), "-w", str(root), "--workers", "1", "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout.splitlines()[-1])["failed"] == 0
        assert _outputs(root) == expected
        fsck = cli("fsck", "-w", str(root), "--repair", "--json")
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        report = json.loads(fsck.stdout)
        assert not report["missing"] and not report["corrupt"]
        with Workspace(root).db.session() as s:
            assert "running" not in {r.status for r in s.query(Run)}
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
