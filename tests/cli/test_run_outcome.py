"""Issue 10 (items 9 and 10): a run that refused or failed jobs says so and exits 1;
`runs show` lists refusals; `report`/`runs show` follow a moved workspace; the global
``-w`` option works before the command as ``init`` suggests."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from bildwerk import Workspace, cli
from bildwerk.catalog import repo

BRIEF = """\
campaign: outcome
backend: studio
locales:
  en-US: {{headline: "Fresh drop"}}
channels: [display_mrec]
prompt:
  template: "packshot of the {{product}} on a {{surface}}"
  negative: "text"
  slots:
    product: [{product}]
    surface: [{surfaces}]
product_slot: product
products:
  {product}: ../assets/products/{product}.png
seeds: {{base: 5, count: 1}}
"""


def brief(workspace_dir: Path, *surfaces: str) -> Path:
    product = sorted(p.stem for p in (workspace_dir / "assets" / "products").glob("*.png"))[0]
    path = workspace_dir / "campaigns" / "outcome.yaml"
    path.write_text(BRIEF.format(product=product, surfaces=", ".join(surfaces)), "utf-8")
    return path


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["bildwerk", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as info:
        cli.main()
    code = info.value.code if isinstance(info.value.code, int) else 0
    return code, capsys.readouterr().out


def test_scaffolded_hash_one_term_does_not_refuse_podium_1(
    workspace_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert '"#1"' in (workspace_dir / "brand" / "brand.yaml").read_text(encoding="utf-8")
    path = brief(workspace_dir, '"podium 1"')
    code, out = run_main(
        monkeypatch, capsys, ["run", str(path), "-w", str(workspace_dir), "--workers", "1"]
    )
    assert code == 0, out
    assert "✓" in out and "1 generated" in out and "0 refused" in out


def test_all_refused_run_exits_1_and_names_the_reason(
    workspace_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = brief(workspace_dir, '"miracle stand"', '"we are #1 stand"')
    code, out = run_main(
        monkeypatch, capsys, ["run", str(path), "-w", str(workspace_dir), "--workers", "1"]
    )
    assert code == 1, out
    assert "✓" not in out and "✗" in out
    assert "0 generated, 0 cached, 0 failed, 2 refused" in out
    assert "brand forbidden term 'miracle'" in out and "brand forbidden term '#1'" in out
    run_id = Workspace(workspace_dir).runs_summary()[0]["id"]
    code, out = run_main(monkeypatch, capsys, ["runs", "show", run_id, "-w", str(workspace_dir)])
    assert code == 0
    assert "2 refused" in out and out.count("refused: prompt contains") == 2

    code, out = run_main(
        monkeypatch,
        capsys,
        ["run", str(path), "-w", str(workspace_dir), "--workers", "1", "--json"],
    )
    data = json.loads(out)
    assert code == 1 and data["refused"] == 2 and len(data["refusals"]) == 2


def test_run_where_every_job_failed_prints_no_tick_and_exits_1(
    workspace_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bildwerk.stages import work

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(work, "render", broken)
    path = brief(workspace_dir, '"podium"')
    code, out = run_main(
        monkeypatch, capsys, ["run", str(path), "-w", str(workspace_dir), "--workers", "1"]
    )
    assert code == 1, out
    assert "✓" not in out and "✗" in out and "0 generated, 0 cached, 1 failed" in out
    assert "failed: " in out and "encoder exploded" in out


def test_global_workspace_option_before_the_command(
    workspace_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no workspace here: only -w can find it
    path = brief(workspace_dir, '"podium"')
    code, out = run_main(monkeypatch, capsys, ["-w", str(workspace_dir), "plan", str(path)])
    assert code == 0 and "1 creatives" in out
    code, out = run_main(
        monkeypatch, capsys, ["--workspace", str(workspace_dir), "runs", "list", "--json"]
    )
    assert code == 0 and json.loads(out) == []
    code, out = run_main(monkeypatch, capsys, ["init", str(tmp_path / "fresh")])
    assert code == 0 and f"bildwerk -w {tmp_path / 'fresh'} run" in out.replace("\n", "")


def test_report_follows_a_moved_workspace(
    workspace_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = Workspace(workspace_dir).run(brief(workspace_dir, '"podium"'), workers=1)
    ws = Workspace(workspace_dir)
    with ws.db.session() as s:
        stored = repo.get_run(s, result.run_id).manifest_path  # type: ignore[union-attr]
    assert stored is not None and not Path(stored).is_absolute()
    moved = tmp_path / "moved"
    shutil.move(str(workspace_dir), moved)
    code, out = run_main(monkeypatch, capsys, ["report", result.run_id, "-w", str(moved)])
    assert code == 0 and Path(out.strip()) == moved / "runs" / result.run_id / "report.html"
    info = Workspace(moved).run_info(result.run_id)
    assert Path(info["manifest_path"]) == moved / "runs" / result.run_id / "manifest.json"


def test_old_absolute_manifest_paths_still_resolve(workspace_dir: Path, tmp_path: Path) -> None:
    result = Workspace(workspace_dir).run(brief(workspace_dir, '"podium"'), workers=1)
    ws = Workspace(workspace_dir)
    with ws.db.session() as s:  # as a catalog written before paths were relative
        run = repo.get_run(s, result.run_id)
        assert run is not None
        run.manifest_path = str(workspace_dir / "runs" / result.run_id / "manifest.json")
    assert ws.report_path(result.run_id) == workspace_dir / "runs" / result.run_id / "report.html"
    moved = tmp_path / "moved"
    shutil.move(str(workspace_dir), moved)
    path = Workspace(moved).report_path(result.run_id)
    assert path == moved / "runs" / result.run_id / "report.html" and path.is_file()
