"""How the line behaves when the machine misbehaves: flipped bytes, a full disk, a damaged
catalog, SIGTERM and a killed parent — a clear message, no traceback, nothing lost."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bildwerk import Workspace
from bildwerk.catalog.models import Asset, Rendition, Run, RunJob
from bildwerk.publish.keys import dev_init

EXE = Path(sys.executable).with_name("bildwerk")


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=timeout)


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.chmod(0o644)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, template_workspace: Path) -> tuple[Path, str]:
    from tests.conftest import SMALL_BRIEF

    root = tmp_path_factory.mktemp("ops") / "ws"
    shutil.copytree(template_workspace, root)
    product = sorted(p.stem for p in (root / "assets" / "products").glob("*.png"))[0]
    brief = root / "campaigns" / "small.yaml"
    brief.write_text(SMALL_BRIEF.format(product=product), encoding="utf-8")
    result = Workspace(root).run(brief, workers=1)
    assert result.failed == 0
    return root, result.run_id


@pytest.fixture
def ws(ran: tuple[Path, str], tmp_path: Path) -> tuple[Workspace, str]:
    root = tmp_path / "ws"
    shutil.copytree(ran[0], root)
    return Workspace(root), ran[1]


def test_run_outputs_are_copies_an_editor_cannot_corrupt_the_catalog(
    ws: tuple[Workspace, str],
) -> None:
    workspace, run_id = ws
    info = workspace.run_info(run_id)
    run_dir = Path(info["manifest_path"]).parent
    exported = sorted((run_dir / "renditions").rglob("*.jpg"))
    assert exported
    with workspace.db.session() as s:
        blobs = {r.sha256 for r in s.query(Rendition)}
    for path in exported:
        assert path.stat().st_nlink == 1  # not a hard link into the blob store
    _flip(exported[0])  # someone "optimises" a run output in place
    for digest in blobs:
        workspace.blobs.verify(digest)  # every blob still reads back verified
    proc = cli("fsck", "-w", str(workspace.root), "--json")
    assert proc.returncode == 0, proc.stdout


def test_a_flipped_byte_is_never_published(ws: tuple[Workspace, str]) -> None:
    workspace, run_id = ws
    workspace.approve_run(run_id, actor="t", include_review=True)
    dev_init(workspace.root, org="acme")
    with workspace.db.session() as s:
        rendition = s.query(Rendition).order_by(Rendition.id).first()
        assert rendition is not None
        digest = rendition.sha256
    _flip(workspace.root / ".bildwerk" / "blobs" / digest[:2] / digest[2:])
    proc = cli("publish", run_id, "--to", "site", "-w", str(workspace.root))
    assert proc.returncode == 2, proc.stderr
    assert digest in proc.stderr and "Traceback" not in proc.stderr
    public = workspace.root / "public" / "img"
    assert not public.exists() or not any(public.iterdir())  # nothing left the machine
    proc = cli("fsck", "-w", str(workspace.root), "--json")
    assert proc.returncode == 1 and digest in proc.stdout


def test_a_flipped_master_is_named_by_reproduce(ws: tuple[Workspace, str]) -> None:
    workspace, _ = ws
    with workspace.db.session() as s:
        master = s.query(Asset).filter_by(kind="creative").order_by(Asset.id).first()
        assert master is not None
        asset_id, digest = master.id, master.sha256
    _flip(workspace.root / ".bildwerk" / "blobs" / digest[:2] / digest[2:])
    proc = cli("reproduce", asset_id, "-w", str(workspace.root))
    assert proc.returncode == 2
    assert digest in proc.stderr and "Traceback" not in proc.stderr


def test_a_damaged_catalog_is_named_with_the_way_out(ws: tuple[Workspace, str]) -> None:
    workspace, _ = ws
    catalog = workspace.root / ".bildwerk" / "catalog.db"
    for leftover in catalog.parent.glob("catalog.db-*"):
        leftover.unlink()
    catalog.write_bytes(os.urandom(8192))
    proc = cli("runs", "list", "-w", str(workspace.root))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "is damaged" in proc.stderr and "backup" in proc.stderr


def _session_pids(sid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def _wait_for(predicate, timeout: float = 300) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _start_run(root: Path, brief: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(EXE), "run", str(brief), "-w", str(root), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _some_made(ws: Workspace) -> bool:
    with ws.db.session() as s:
        return s.query(RunJob).filter_by(status="generated").count() >= 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_ends_the_run_interrupted_and_its_workers_with_it(
    workspace_dir: Path, small_brief: Path
) -> None:
    ws = Workspace(workspace_dir)
    proc = _start_run(workspace_dir, small_brief)
    try:
        _wait_for(lambda: _some_made(ws))
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143 and "Traceback" not in stderr
    _wait_for(lambda: not _session_pids(proc.pid), timeout=20)
    with ws.db.session() as s:
        run = s.query(Run).one()
        assert run.status == "interrupted"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_parent(workspace_dir: Path, small_brief: Path) -> None:
    ws = Workspace(workspace_dir)
    proc = _start_run(workspace_dir, small_brief)
    try:
        _wait_for(lambda: _some_made(ws))
        assert len(_session_pids(proc.pid)) >= 2  # the run and its pool
        os.kill(proc.pid, signal.SIGKILL)  # the parent only
        proc.wait(timeout=60)
        _wait_for(lambda: not _session_pids(proc.pid), timeout=20)
    finally:
        for pid in _session_pids(proc.pid):
            os.kill(pid, signal.SIGKILL)
    assert Workspace(workspace_dir).runs()[0].status == "interrupted"  # its lease says so
