"""Catalog revisions: created once under a lock, refused when behind or ahead of the code,
upgraded by `bildwerk db upgrade`; opening costs one query."""

from __future__ import annotations

import json
import multiprocessing
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, event, inspect, text

from bildwerk.catalog.db import Database, _alembic_config, db_status, db_upgrade, head_revision
from bildwerk.errors import WorkspaceError


def _catalog_at(url: str, revision: str) -> None:
    """A catalog made by an older bildwerk: migrated only up to ``revision``."""
    cfg = _alembic_config()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def _revision(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    url: str = request.getfixturevalue("postgres_url")
    # a password in the URL (trust auth ignores it) must never appear in messages
    return url.replace("postgres@", "postgres:s3cret@", 1)


def test_old_catalog_is_refused_then_upgraded(catalog_url: str) -> None:
    _catalog_at(catalog_url, "0002")
    head = head_revision()
    with pytest.raises(WorkspaceError) as info:
        Database(catalog_url)
    message = str(info.value)
    assert "revision 0002" in message and f"needs revision {head}" in message
    assert "bildwerk db upgrade" in message
    assert "s3cret" not in message and catalog_url.split("://")[0] in message
    assert _revision(catalog_url) == "0002"  # opening changed nothing

    status = db_status(catalog_url)
    assert status.current == "0002" and status.head == head and status.pending[-1] == head
    assert status.pending[0] == "0003" and not status.up_to_date

    before, after = db_upgrade(catalog_url)
    assert before.current == "0002" and after.current == head and after.up_to_date
    assert _revision(catalog_url) == head
    db = Database(catalog_url)
    try:
        assert db.status.up_to_date
        assert "job_claims" in inspect(db.engine).get_table_names()
    finally:
        db.close()
    assert db_upgrade(catalog_url)[0].pending == ()  # a second upgrade is a no-op


def test_catalog_ahead_of_the_code_says_upgrade_bildwerk(catalog_url: str) -> None:
    Database(catalog_url).close()
    engine = create_engine(catalog_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    for attempt in (lambda: Database(catalog_url), lambda: db_upgrade(catalog_url)):
        with pytest.raises(WorkspaceError, match="revision 9999") as info:
            attempt()
        assert "upgrade bildwerk" in str(info.value) and "s3cret" not in str(info.value)
    status = db_status(catalog_url)
    assert not status.known and status.pending == ()


def test_opening_a_catalog_is_one_query(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    Database(url).close()
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        Database(url).close()
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert statements == ["SELECT version_num FROM alembic_version"]


def cli(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    from bildwerk.cli import main  # here: spawned children import this module too

    monkeypatch.setattr(sys, "argv", ["bildwerk", *args])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    code = info.value.code if isinstance(info.value.code, int) else 0
    return code, captured.out, captured.err


def test_cli_status_and_upgrade(
    workspace_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = str(workspace_dir)
    db_file = workspace_dir / ".bildwerk" / "catalog.db"
    db_file.parent.mkdir(parents=True, exist_ok=True)
    _catalog_at(f"sqlite:///{db_file}", "0001")
    code, _, err = cli(["runs", "list", "-w", ws], capsys, monkeypatch)
    assert code == 2 and "bildwerk db upgrade" in err and "revision 0001" in err
    assert "Traceback" not in err
    code, out, _ = cli(["db", "status", "-w", ws, "--json"], capsys, monkeypatch)
    status = json.loads(out)
    assert code == 0 and status["current"] == "0001" and status["head"] == head_revision()
    assert status["pending"][0] == "0002" and status["up_to_date"] is False
    code, out, _ = cli(["db", "upgrade", "-w", ws, "--json"], capsys, monkeypatch)
    done = json.loads(out)
    assert code == 0 and done["from"] == "0001" and done["to"] == head_revision()
    assert done["applied"] == status["pending"]
    code, out, _ = cli(["runs", "list", "-w", ws, "--json"], capsys, monkeypatch)
    assert code == 0 and json.loads(out) == []
    code, out, _ = cli(["db", "status", "-w", ws], capsys, monkeypatch)
    assert code == 0 and "up to date" in out


def _open(url: str, barrier: Any) -> None:
    barrier.wait()
    Database(url).close()


def test_processes_creating_one_catalog_at_once(catalog_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_open, args=(catalog_url, barrier)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert _revision(catalog_url) == head_revision()
    assert db_status(catalog_url).up_to_date
