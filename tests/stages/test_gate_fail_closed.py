"""The gate fails closed: a check that could not run is never a pass, `bildwerk qa`
re-checks under the run's own policy, and a run never stays `running`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from PIL import Image

from bildwerk import Workspace
from bildwerk.catalog.models import Job, Run
from bildwerk.checks.base import CheckContext, CheckResult, overall
from bildwerk.checks.clip_score import ClipScoreCheck
from bildwerk.config.brand import load_brand
from bildwerk.config.qa import QAPolicy
from bildwerk.records import JobSpec, QARecord
from bildwerk.stages import qa as qa_stage
from bildwerk.stages.rank import Candidate, rank
from tests.conftest import SMALL_BRIEF, manifest_schema

PEOPLE_BRIEF = SMALL_BRIEF.replace("backend: studio\n", "backend: studio\npeople: forbidden\n")

# Everything the `qa` extra brings; blocked at import time, as on a core install.
QA_EXTRA_MODULES = ("onnxruntime", "nudenet", "rapidocr", "cv2", "imagehash")
SITECUSTOMIZE = f"""
import importlib.abc, sys
_BLOCKED = {QA_EXTRA_MODULES!r}
class _CoreInstall(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _CoreInstall())
"""


def _product(root: Path) -> str:
    return sorted(p.stem for p in (root / "assets" / "products").glob("*.png"))[0]


@pytest.fixture(scope="module")
def people_run(tmp_path_factory: pytest.TempPathFactory, template_workspace: Path) -> Path:
    root = tmp_path_factory.mktemp("people") / "ws"
    shutil.copytree(template_workspace, root)
    brief = root / "campaigns" / "small.yaml"
    brief.write_text(PEOPLE_BRIEF.format(product=_product(root)), encoding="utf-8")
    Workspace(root).run(brief, workers=1)
    return root


def _records(ws: Workspace) -> dict[str, dict[str, Any]]:
    with ws.db.session() as s:
        return {j.key: j.qa for j in s.query(Job)}


def test_qa_rerun_reproduces_the_stored_records(people_run: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(people_run, root)
    ws = Workspace(root)
    before = _records(ws)
    with ws.db.session() as s:
        specs = [JobSpec.from_json(j.spec) for j in s.query(Job)]
    assert specs and all(spec.people == "forbidden" for spec in specs)
    for qa in before.values():
        record = QARecord.from_json(qa)
        people = next(c for c in record.qa if c.name == "people")
        assert people.evidence["people"] == "forbidden"  # the brief's policy reached QA
        assert [c.name for c in record.guard] == ["prompt_guard"]
    result = ws.qa(ws.runs()[0].id, workers=1)
    assert result["checked"] == len(before)
    assert _records(ws) == before  # equal records, not just the same count


def test_check_that_raises_is_unchecked_with_its_traceback() -> None:
    class Boom:
        name = "boom"

        def run(self, image: Image.Image, context: CheckContext) -> CheckResult:
            raise ZeroDivisionError("bad maths")

    result = qa_stage.unchecked("boom", _raise(Boom()))
    assert result.verdict == "unchecked" and "ZeroDivisionError: bad maths" in (result.reason or "")
    assert "bad maths" in result.evidence["traceback"]
    json.dumps(result.to_json())
    assert overall([CheckResult("a", "pass", 1.0), result]) == "unchecked"
    assert overall([result, CheckResult("b", "fail", 0.0)]) == "fail"


def _raise(check: Any) -> BaseException:
    try:
        check.run(Image.new("RGB", (8, 8)), None)
    except BaseException as exc:
        return exc
    raise AssertionError("the check did not raise")


def test_missing_extra_names_the_install_command() -> None:
    from bildwerk.errors import MissingExtraError

    result = qa_stage.unchecked("nsfw", MissingExtraError("nudenet", "qa", "The NSFW check"))
    assert result.verdict == "unchecked"
    assert "pip install 'bildwerk[qa]'" in (result.reason or "")


def test_required_unchecked_rejects_and_optional_unchecked_goes_to_a_person() -> None:
    policy = QAPolicy()
    missing = CheckResult("nsfw", "unchecked", None, "not run: no nudenet")
    optional = CheckResult("clip_score", "unchecked", None, "model did not load")
    ok = CheckResult("contrast", "pass", 1.0)
    decisions = {
        d.id: d
        for d in rank(
            [
                Candidate("a", "og_image", checks=[ok, missing]),
                Candidate("b", "og_image", checks=[ok, optional]),
                Candidate("c", "og_image", checks=[ok]),
            ],
            policy,
        )
    }
    assert decisions["a"].state == "rejected"
    assert "qa.required" in decisions["a"].reasons[0]
    assert decisions["b"].state == "needs_review"
    assert decisions["b"].reasons == ["clip_score: model did not load"]
    assert decisions["c"].state == "queued"
    relaxed = QAPolicy(required=())
    d = {x.id: x for x in rank([Candidate("a", "og_image", checks=[ok, missing])], relaxed)}
    assert d["a"].state == "needs_review"


def test_broken_clip_model_path_is_unchecked(workspace_dir: Path, tmp_path: Path) -> None:
    brand = load_brand(workspace_dir / "brand" / "brand.yaml")
    from bildwerk.config.channels import PRESETS

    context = CheckContext(
        channel=PRESETS["og_image"],
        brand=brand,
        prompt="a candle",
        params={"model_path": str(tmp_path / "no-such-model")},
    )
    result = ClipScoreCheck().run(Image.new("RGB", (64, 64)), context)
    assert result.verdict == "unchecked" and "could not be loaded" in (result.reason or "")


def test_a_run_whose_gate_raises_ends_failed(
    small_brief: Path, workspace_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bildwerk.runner

    def broken_gate(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("gate exploded")

    monkeypatch.setattr(bildwerk.runner, "gate_run", broken_gate)
    ws = Workspace(workspace_dir)
    with pytest.raises(RuntimeError, match="gate exploded"):
        ws.run(small_brief, workers=1)
    with ws.db.session() as s:
        (run,) = s.query(Run).all()
        assert run.status == "failed" and "gate exploded" in (run.error or "")


def _core_cli(root: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "core-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    exe = Path(sys.executable).with_name("bildwerk")
    return subprocess.run(
        [str(exe), *args, "-w", str(root)], capture_output=True, text=True, env=env, timeout=600
    )


def test_core_install_without_the_qa_extra_passes_nothing(
    small_brief: Path, workspace_dir: Path, tmp_path: Path
) -> None:
    proc = _core_cli(workspace_dir, tmp_path, "run", str(small_brief), "--workers", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads(Path(json.loads(proc.stdout.splitlines()[-1])["manifest"]).read_text())
    jsonschema.validate(manifest, manifest_schema())
    assert manifest["variants"]
    for v in manifest["variants"]:
        assert v["qa"]["status"] != "pass"
        unchecked = {c["name"] for c in v["qa"]["checks"] if c["evidence"].get("unchecked")}
        assert {"nsfw", "people", "legibility", "duplicate"} <= unchecked
        assert v["decision"]["state"] == "rejected"
    proc = _core_cli(workspace_dir, tmp_path, "approve", "--run", "latest", "--include-review")
    assert proc.returncode == 0, proc.stderr
    assert "0 creative(s) approved" in proc.stdout
    assert f"{len(manifest['variants'])} creative(s) left out" in proc.stdout
    assert "--include-unchecked" in proc.stdout
    proc = _core_cli(
        workspace_dir,
        tmp_path,
        "approve",
        "--run",
        "latest",
        "--include-review",
        "--include-unchecked",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    approved = json.loads(proc.stdout)["approved"]
    assert len(approved) == len(manifest["variants"])
    assert all(
        a["previous"] == "rejected" and "checks not run" in a["reasons"][0] for a in approved
    )
