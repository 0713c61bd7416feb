"""The gate's decisions, the review queue, and people's approvals in the event log."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from bildwerk import Workspace
from bildwerk.catalog.models import Decision, Event
from bildwerk.cli import main
from tests.conftest import SMALL_BRIEF


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory, template_workspace: Path) -> Path:
    root = tmp_path_factory.mktemp("gated") / "ws"
    shutil.copytree(template_workspace, root)
    product = sorted(p.stem for p in (root / "assets" / "products").glob("*.png"))[0]
    (root / "campaigns" / "small.yaml").write_text(SMALL_BRIEF.format(product=product))
    Workspace(root).run(root / "campaigns" / "small.yaml", workers=1)
    return root


@pytest.fixture
def ws(gated: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "ws"
    shutil.copytree(gated, dest)
    return dest


def cli(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["bildwerk", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    return (info.value.code if isinstance(info.value.code, int) else 0), out.out, out.err


def test_every_creative_gets_a_decision_in_the_manifest(ws: Path) -> None:
    workspace = Workspace(ws)
    run = workspace.runs()[0]
    stored = workspace.run_info(run.id)["manifest_path"]  # resolved against the workspace
    manifest = json.loads(Path(stored).read_text(encoding="utf-8"))
    states = {v["decision"]["state"] for v in manifest["variants"]}
    assert states <= {"queued", "needs_review", "held", "rejected"}
    for v in manifest["variants"]:
        names = [c["name"] for c in v["qa"]["checks"]]
        assert "duplicate" in names and "prompt_guard" in names
    with workspace.db.session() as s:
        assert s.query(Decision).count() == len(manifest["variants"])
        assert {d.actor for d in s.query(Decision)} == {"gate"}


def test_review_approve_reject(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = Workspace(ws).runs()[0].id
    code, out, _ = cli(["review", run_id, "-w", str(ws), "--all", "--json"], capsys, monkeypatch)
    rows = json.loads(out)
    assert code == 0 and len(rows) == 8
    target = rows[0]["id"]
    code, out, err = cli(
        ["reject", target, "-w", str(ws), "--by", "ana", "--json"], capsys, monkeypatch
    )
    assert code == 2 and "--reason" in err  # a rejection needs a reason
    code, out, _ = cli(
        ["reject", target, "--reason", "off-brand crop", "-w", str(ws), "--by", "ana", "--json"],
        capsys,
        monkeypatch,
    )
    assert code == 0 and json.loads(out)["state"] == "rejected"
    code, _, err = cli(["approve", target, "-w", str(ws), "--by", "ben"], capsys, monkeypatch)
    assert code == 2 and "override" in err
    code, out, _ = cli(
        [
            "approve",
            target,
            "-w",
            str(ws),
            "--by",
            "ben",
            "--override",
            "--reason",
            "client signed off",
            "--json",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0 and json.loads(out)["previous"] == "rejected"
    workspace = Workspace(ws)
    with workspace.db.session() as s:
        events = [
            (e.type, e.actor)
            for e in s.query(Event).filter(Event.subject == target).order_by(Event.id)
        ]
    assert ("decision.rejected", "ana") in events and ("decision.approved", "ben") in events
    # a re-run never overrules the person's decision
    workspace.run(ws / "campaigns" / "small.yaml", workers=1)
    code, out, _ = cli(["review", run_id, "-w", str(ws), "--all", "--json"], capsys, monkeypatch)
    mine = next(r for r in json.loads(out) if r["id"] == target)
    assert mine["state"] == "approved" and mine["actor"] == "ben"
    code, _, err = cli(["approve", "cr_nope", "-w", str(ws)], capsys, monkeypatch)
    assert code == 2 and "no creative" in err


def test_qa_rerun(
    ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = Workspace(ws).runs()[0].id
    code, out, _ = cli(
        ["qa", run_id, "-w", str(ws), "--json", "--workers", "1"], capsys, monkeypatch
    )
    assert code == 0 and json.loads(out)["checked"] == 8
