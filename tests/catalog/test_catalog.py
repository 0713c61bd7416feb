"""Catalog on real SQLite and real PostgreSQL: migrations, rows, append-only events."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DatabaseError

from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Event
from bildwerk.errors import WorkspaceError


def exercise(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert {
        "campaigns",
        "brief_versions",
        "runs",
        "jobs",
        "run_jobs",
        "assets",
        "renditions",
        "lineage",
        "events",
        "alembic_version",
    } <= tables
    with db.session() as s:
        repo.ensure_campaign(s, "c1", "Campaign")
        repo.ensure_brief_version(
            s,
            sha256="a" * 64,
            campaign_id="c1",
            path="b.yaml",
            content="x",
            template_sha256="b" * 64,
        )
        repo.start_run(
            s,
            run_id="r1",
            campaign_id="c1",
            brief_sha256="a" * 64,
            workers=2,
            backend="studio",
            planned=2,
        )
        repo.ensure_asset(
            s, asset_id="sc_1", kind="scene", sha256="c" * 64, width=10, height=10, fmt="png"
        )
        _, created = repo.ensure_asset(
            s, asset_id="cr_1", kind="creative", sha256="d" * 64, width=10, height=10, fmt="png"
        )
        assert created
        repo.add_lineage(s, "cr_1", "sc_1", "scene_of")
        repo.add_rendition(
            s,
            "cr_1",
            format="avif",
            width=10,
            height=10,
            sha256="e" * 64,
            bytes=100,
            quality=60,
            budget=None,
            within_budget=True,
        )
        repo.record_run_job(s, "r1", "k1", 0, "generated")
        repo.record_run_job(s, "r1", "k2", 1, "failed", "boom")
    with db.session() as s:
        _, created = repo.ensure_asset(
            s, asset_id="cr_1", kind="creative", sha256="d" * 64, width=10, height=10, fmt="png"
        )
        assert not created
        run = repo.finish_run(s, "r1", manifest_path=None, error=None)
        assert (run.generated, run.failed, run.status) == (1, 1, "failed")
    with db.session() as s:
        found = repo.get_asset(s, "cr_")  # unique prefix
        assert found is not None and found.id == "cr_1" and len(found.renditions) == 1
        assert [link.parent_id for link in repo.lineage_of(s, "cr_1")] == ["sc_1"]
        assert repo.get_run(s, "r1") is not None
        types = [e.type for e in repo.events_for(s, run_id="r1")]
        assert types == ["run.started", "run.finished"]
    # the event log refuses edits and deletes at the database level
    with pytest.raises(DatabaseError), db.session() as s:
        s.execute(text("UPDATE events SET type = 'forged'"))
    with pytest.raises(DatabaseError), db.session() as s:
        s.execute(text("DELETE FROM events"))
    with db.session() as s:
        assert s.query(Event).filter(Event.type == "forged").count() == 0


def test_sqlite_catalog(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'catalog.db'}")
    exercise(db)
    db.close()
    Database(f"sqlite:///{tmp_path / 'catalog.db'}").close()  # reopening is a no-op upgrade


def test_postgres_catalog(postgres_url: str) -> None:
    db = Database(postgres_url)
    try:
        exercise(db)
    finally:
        db.close()


def test_bad_url_is_a_user_error() -> None:
    with pytest.raises(WorkspaceError, match="catalog URL"):
        Database("nosuchdialect://x")
