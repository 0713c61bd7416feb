"""The prompt guard inside a run: refused jobs are recorded and never generated."""

from __future__ import annotations

import json
from pathlib import Path

from bildwerk import Workspace


def test_forbidden_term_in_a_slot_refuses_only_those_jobs(
    workspace_dir: Path, small_brief: Path
) -> None:
    text = small_brief.read_text(encoding="utf-8")
    small_brief.write_text(
        text.replace("surface: [pastel podium]", "surface: [pastel podium, miracle cure stand]")
    )
    ws = Workspace(workspace_dir)
    result = ws.run(small_brief, workers=1)
    manifest = json.loads(result.manifest.read_text(encoding="utf-8"))
    assert result.generated == 8 and result.failed == 0
    assert len(manifest["refused"]) == 8
    assert all("miracle" in r["reason"] for r in manifest["refused"])
    assert all("miracle" not in v["prompt"] for v in manifest["variants"])
    guard = [
        c for v in manifest["variants"] for c in v["qa"]["checks"] if c["name"] == "prompt_guard"
    ]
    assert len(guard) == 8 and {c["verdict"] for c in guard} == {"pass"}
    states = {j["status"] for j in ws.run_info(result.run_id)["jobs"]}
    assert states == {"generated", "refused"}
    with ws.db.session() as s:
        from bildwerk.catalog.models import Event

        assert s.query(Event).filter(Event.type == "job.refused").count() == 8
