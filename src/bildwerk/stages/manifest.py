"""Run outputs: the files of every creative placed in the run folder, ``manifest.json``
(the contract in shared/contracts/run-manifest.schema.json) and the HTML contact sheet."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from bildwerk.atomicio import atomic_write_text
from bildwerk.blobs import BlobStore
from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Asset, Run, RunJob
from bildwerk.checks.annotate import annotate
from bildwerk.checks.base import CheckResult
from bildwerk.inputs import RunInputs
from bildwerk.records import ComposedCreative, JobSpec, QARecord
from bildwerk.stages.plan import Plan
from bildwerk.stages.report import write_report

EXT = {"avif": "avif", "webp": "webp", "jpeg": "jpg", "png": "png"}


# The shared manifest contract predates ``unchecked``: a check that could not run is
# reported there as ``skip`` marked ``evidence.unchecked``, and the creative's status as
# ``pending`` (QA not complete), so no consumer can read it as a pass.
_CONTRACT_STATUS = {"unchecked": "pending"}


def _contract_check(c: CheckResult) -> dict[str, Any]:
    if c.verdict != "unchecked":
        return c.to_json()
    return {**c.to_json(), "verdict": "skip", "evidence": {**c.evidence, "unchecked": True}}


def _variant(
    spec: JobSpec,
    qa: QARecord,
    creative: Asset,
    cached: bool,
    blobs: BlobStore,
    run_dir: Path,
) -> dict[str, Any]:
    channel = spec.channel_name
    checks = [c.to_json() for c in qa.checks]
    master_rel = Path("masters") / channel / f"{creative.id}.png"
    blobs.export(creative.sha256, run_dir / master_rel)
    qa_image = None
    if any(c.verdict in ("warn", "fail") for c in qa.checks):
        qa_rel = Path("qa") / f"{creative.id}.jpg"
        with Image.open(blobs.local_path(creative.sha256)) as im:
            marked = annotate(im, checks)
        (run_dir / qa_rel).parent.mkdir(parents=True, exist_ok=True)
        marked.save(run_dir / qa_rel, quality=85)
        qa_image = qa_rel.as_posix()
    renditions = []
    for r in creative.renditions:
        rel = (
            Path("renditions") / channel / creative.id / f"{creative.id}-{r.width}.{EXT[r.format]}"
        )
        blobs.export(r.sha256, run_dir / rel)
        renditions.append(
            {
                "format": r.format,
                "width": r.width,
                "height": r.height,
                "path": rel.as_posix(),
                "bytes": r.bytes,
                "sha256": r.sha256,
                "quality": r.quality,
                "budget": r.budget,
                "within_budget": r.within_budget,
            }
        )
    renditions.sort(key=lambda x: (x["format"], x["width"]))
    data = spec.to_json()
    return {
        **{
            k: data[k]
            for k in (
                "id",
                "job_key",
                "seed",
                "slots",
                "prompt",
                "negative_prompt",
                "segment",
                "locale",
                "channel",
                "backend",
                "model",
                "params",
                "scene_key",
                "direction",
                "copy",
            )
        },
        "cached": cached,
        "master": {
            "path": master_rel.as_posix(),
            "sha256": creative.sha256,
            "width": creative.width,
            "height": creative.height,
        },
        "texts": [t.to_json() for t in ComposedCreative.from_json(creative.meta).texts],
        "decision": qa.decision.to_json() if qa.decision else None,
        "qa_image": qa_image,
        "qa": {
            "status": _CONTRACT_STATUS.get(qa.status, qa.status),
            "score": qa.score,
            "checks": [_contract_check(c) for c in qa.checks],
        },
        "renditions": renditions,
    }


def build_manifest(
    db: Database, blobs: BlobStore, run_id: str, run_dir: Path, inputs: RunInputs, plan: Plan
) -> dict[str, Any]:
    with db.session() as s:
        run = s.get_one(Run, run_id)
        statuses = {rj.job_key: rj for rj in s.query(RunJob).filter(RunJob.run_id == run_id)}
        jobs = repo.done_jobs(s, [j.key for j in plan.jobs])
        variants, failed, refused = [], [], []
        for planned in plan.jobs:
            rj = statuses.get(planned.key)
            row = jobs.get(planned.key)
            if rj is not None and rj.status == "refused":
                refused.append(
                    {
                        "id": planned.id,
                        "job_key": planned.key,
                        "reason": rj.error,
                        "prompt": planned.scene.prompt,
                        "guard": planned.guard,
                    }
                )
                continue
            if row is None:
                failed.append(
                    {
                        "id": planned.id,
                        "job_key": planned.key,
                        "error": rj.error if rj else "not run",
                    }
                )
                continue
            creative = repo.get_asset(s, row.creative_id)
            assert creative is not None
            cached = rj is not None and rj.status == "cached"
            variants.append(
                _variant(
                    JobSpec.from_json(row.spec),
                    QARecord.from_json(row.qa),
                    creative,
                    cached,
                    blobs,
                    run_dir,
                )
            )
        started = run.started_at if run.started_at.tzinfo else run.started_at.replace(tzinfo=UTC)
    return {
        "run_id": run_id,
        "campaign": inputs.brief.campaign,
        "brief_sha256": inputs.brief.sha256,
        "created_at": started.isoformat().replace("+00:00", "Z"),
        "finished_at": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "brief": str(inputs.doc.path),
        "template_sha256": inputs.brief.prompt.sha256,
        "brand": {"name": inputs.brand.name, "sha256": inputs.brand.sha256},
        "backend": inputs.backend,
        "strategy": plan.strategy,
        "full_matrix": plan.full_matrix,
        "fingerprints": inputs.fingerprints,
        "variants": variants,
        "failed": failed,
        "refused": refused,
    }


def write_outputs(
    db: Database, blobs: BlobStore, run_id: str, run_dir: Path, inputs: RunInputs, plan: Plan
) -> tuple[Path, Path]:
    manifest = build_manifest(db, blobs, run_id, run_dir, inputs, plan)
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = run_dir / "manifest.json"
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    report_path = run_dir / "report.html"
    atomic_write_text(report_path, write_report(manifest))
    return manifest_path, report_path
