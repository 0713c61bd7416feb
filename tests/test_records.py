"""Typed records: JSON round trips, records from before versioning, refusal of newer
versions, and the dimension columns migration 0004 back-fills."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from bildwerk.catalog.db import _alembic_config
from bildwerk.checks.base import CheckResult
from bildwerk.errors import WorkspaceError
from bildwerk.records import (
    ComposedCreative,
    GateDecision,
    JobSpec,
    QARecord,
    SceneRecord,
    TextBlock,
)
from tests.stages.test_plan import plan_for


def test_job_spec_and_scene_round_trip(tmp_path: Path) -> None:
    plan = plan_for(tmp_path)
    for job in plan.jobs[:12]:
        spec = job.spec()
        again = JobSpec.from_json(json.loads(json.dumps(spec.to_json())))
        assert again == spec
        assert again.slots == job.slots and again.channel == job.channel
        scene = SceneRecord(job.scene.key, job.scene, "studio", (0.25, 0.5), (1, 2, 3, 4))
        back = SceneRecord.from_json(json.loads(json.dumps(scene.to_json())))
        assert back.request.to_json() == job.scene.to_json()
        assert back.focal == (0.25, 0.5) and back.product_box == (1, 2, 3, 4)


def test_composed_creative_round_trip() -> None:
    texts = (
        TextBlock("headline", "Summer, bottled.", (10, 20, 300, 80), "#111111", None, 48, 1),
        TextBlock(
            "cta", "Shop", (10, 90, 100, 120), "#ffffff", "#ff6600", 20, 1, (5, 85, 105, 125)
        ),
    )
    record = ComposedCreative(
        "k" * 64, "og_image", "a", "en-US", texts, (1, 2, 3, 4), "b.yaml", "s"
    )
    assert ComposedCreative.from_json(json.loads(json.dumps(record.to_json()))) == record


def test_qa_record_groups_checks_by_stage_and_reads_legacy_records() -> None:
    record = QARecord(
        status="warn",
        score=0.9,
        compose=(CheckResult("text_fit", "warn", 0.8, "long"),),
        qa=(CheckResult("contrast", "pass", 1.0), CheckResult("nsfw", "unchecked", None, "x")),
        render=(CheckResult("byte_budget", "pass", 1.0),),
        guard=(CheckResult("prompt_guard", "pass", 1.0),),
        gate=(CheckResult("duplicate", "pass", 1.0),),
        decision=GateDecision("needs_review", 1, ("text_fit: long",)),
    )
    data = json.loads(json.dumps(record.to_json()))
    assert [c["stage"] for c in data["checks"]] == [
        "compose", "qa", "qa", "render", "guard", "gate"
    ]  # fmt: skip
    assert QARecord.from_json(data) == record
    legacy = {
        "status": "warn",
        "score": 0.9,
        "checks": [{k: v for k, v in c.items() if k != "stage"} for c in data["checks"]],
        "decision": data["decision"],
    }
    assert QARecord.from_json(legacy) == record


def test_newer_records_are_refused_not_half_read() -> None:
    with pytest.raises(WorkspaceError, match="version 99"):
        QARecord.from_json({"v": 99, "status": "pass", "checks": []})


def _alembic(url: str, target: str, direction: str = "upgrade") -> None:
    cfg = _alembic_config()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            getattr(command, direction)(cfg, target)
    finally:
        engine.dispose()


def backfill(url: str, tmp_path: Path) -> None:
    """A catalog at 0003 with a job whose dimensions live only in JSON gets them as
    columns and slot rows."""
    _alembic(url, "0003")
    spec = plan_for(tmp_path).jobs[0].spec().to_json()
    spec.pop("v")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO campaigns (id, name, created_at) VALUES ('c', 'c', :t)"),
                         {"t": "2026-01-01"})  # fmt: skip
            conn.execute(
                text(
                    "INSERT INTO brief_versions (sha256, campaign_id, path, content, "
                    "template_sha256, created_at) VALUES ('b', 'c', 'p', '', 't', :t)"
                ),
                {"t": "2026-01-01"},
            )
            conn.execute(
                text(
                    "INSERT INTO runs (id, campaign_id, brief_sha256, status, started_at, "
                    "workers, backend, planned, generated, cached, failed) "
                    "VALUES ('r', 'c', 'b', 'done', :t, 1, 'studio', 1, 1, 0, 0)"
                ),
                {"t": "2026-01-01"},
            )
            for asset in ("cr", "sc"):
                conn.execute(
                    text(
                        "INSERT INTO assets (id, kind, sha256, width, height, format, meta, "
                        "created_at) VALUES (:id, 'creative', 'x', 1, 1, 'png', '{}', :t)"
                    ),
                    {"id": asset, "t": "2026-01-01"},
                )
            conn.execute(
                text(
                    "INSERT INTO jobs (key, campaign_id, scene_key, spec, creative_id, scene_id, "
                    "qa, duration_ms, first_run_id, created_at) "
                    "VALUES ('k', 'c', 's', :spec, 'cr', 'sc', '{}', 1, 'r', :t)"
                ),
                {"spec": json.dumps(spec), "t": "2026-01-01"},
            )
        _alembic(url, "head")
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT segment, locale, channel, backend, model FROM jobs")
            ).one()
            slots = dict(conn.execute(text("SELECT name, value FROM job_slots")).all())
        assert tuple(row) == (
            spec["segment"], spec["locale"], spec["channel"], spec["backend"], spec["model"]
        )  # fmt: skip
        assert slots == spec["slots"] and slots
        _alembic(url, "0003", "downgrade")
    finally:
        engine.dispose()


def test_migration_0004_backfills_sqlite(tmp_path: Path) -> None:
    backfill(f"sqlite:///{tmp_path / 'c.db'}", tmp_path)


def test_migration_0004_backfills_postgres(postgres_url: str, tmp_path: Path) -> None:
    backfill(postgres_url, tmp_path)
