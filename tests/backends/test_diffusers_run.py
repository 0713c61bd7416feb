"""The whole line with the diffusers backend on a tiny SD 1.5 built in code, registered
from a local path and loaded through the real registry and loaders."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import jsonschema
import pytest

from bildwerk.cli import main
from tests.conftest import manifest_schema

pytest.importorskip("diffusers")

BRIEF = """\
campaign: ai-test
backend: diffusers
generation:
  model: tiny
  steps: 2
  guidance: 2.0
  scheduler: euler
  size: [64, 64]
  mode: txt2img
locales:
  en-US: {headline: "Fresh drop", cta: "Shop"}
  de-DE: {headline: "Neu da", cta: "Kaufen"}
channels: [display_mrec]
prompt:
  template: "a {thing} on a table"
  negative: "blurry"
  slots:
    thing: [vase]
seeds: [3]
"""


def cli(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["bildwerk", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    return (info.value.code if isinstance(info.value.code, int) else 0), out.out, out.err


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from bildwerk.testing import tiny_sd15

    base = tmp_path_factory.mktemp("models")
    return tiny_sd15(base / "tiny-a", seed=0), tiny_sd15(base / "tiny-b", seed=1)


def test_diffusers_run_reproduce_and_weights_in_keys(
    workspace_dir: Path,
    tiny_models: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = str(workspace_dir)
    code, out, err = cli(
        [
            "models",
            "add",
            str(tiny_models[0]),
            "--name",
            "tiny",
            "--arch",
            "sd15",
            "--license",
            "test-only",
            "-w",
            ws,
            "--json",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    entry = json.loads(out)
    assert entry["kind"] == "checkpoint" and entry["architecture"] == "sd15"
    code, out, _ = cli(["models", "list", "-w", ws, "--json"], capsys, monkeypatch)
    assert [m["name"] for m in json.loads(out)] == ["tiny"]

    brief = workspace_dir / "campaigns" / "ai.yaml"
    brief.write_text(BRIEF, encoding="utf-8")
    code, out, err = cli(
        ["run", str(brief), "-w", ws, "--workers", "1", "--json"], capsys, monkeypatch
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["generated"] == 2
    manifest = json.loads(Path(summary["manifest"]).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(manifest_schema()).validate(manifest)
    for v in manifest["variants"]:
        gen = v["params"]["generation"]
        assert gen["model"]["sha256"] == entry["sha256"]
        assert gen["scheduler"] == "euler" and gen["steps"] == 2
        assert v["backend"] == "diffusers"
        assert v["master"]["width"] == 600 and v["master"]["height"] == 500

    creative = manifest["variants"][0]["id"]
    code, out, err = cli(["assets", "show", creative, "-w", ws, "--json"], capsys, monkeypatch)
    scene_id = next(
        link["parent_id"] for link in json.loads(out)["lineage"] if link["relation"] == "scene_of"
    )
    code, out, _ = cli(["assets", "show", scene_id, "-w", ws, "--json"], capsys, monkeypatch)
    recorded = json.loads(out)["meta"]["params"]
    assert "torch" in json.dumps(recorded) and "scheduler" in json.dumps(recorded)

    code, out, err = cli(["reproduce", creative, "-w", ws, "--json"], capsys, monkeypatch)
    result = json.loads(out)
    assert code == 0, err
    assert result["scene"]["identical"] and result["master"]["identical"]

    # new weights under the same name: every job key changes, nothing is cached
    code, _, err = cli(
        [
            "models",
            "add",
            str(tiny_models[1]),
            "--name",
            "tiny",
            "--arch",
            "sd15",
            "--replace",
            "-w",
            ws,
        ],
        capsys,
        monkeypatch,
    )
    assert code == 0, err
    code, out, _ = cli(["plan", str(brief), "-w", ws, "--json"], capsys, monkeypatch)
    plan = json.loads(out)
    assert plan["cached"] == 0 and plan["to_make"] == 2


def test_unknown_model_is_a_user_error(
    workspace_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    brief = workspace_dir / "campaigns" / "ai.yaml"
    brief.write_text(BRIEF, encoding="utf-8")
    code, _, err = cli(["plan", str(brief), "-w", str(workspace_dir)], capsys, monkeypatch)
    assert code == 2 and "no model named 'tiny'" in err and "generation.model" in err


def test_missing_weights_folder(
    workspace_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli(
        ["models", "add", str(empty), "--name", "x", "-w", str(workspace_dir)], capsys, monkeypatch
    )
    assert code == 2 and "Traceback" not in err
    shutil.rmtree(empty)
