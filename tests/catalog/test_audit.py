"""The audit chain on real SQLite and PostgreSQL: audited events are chained as they
happen, and each kind of tampering done directly in the database (the append-only
trigger dropped first, as someone with the database's keys would) is caught at the
entry where it happened."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from sqlalchemy import text

from bildwerk.catalog import repo
from bildwerk.catalog.audit import GENESIS, canonical, is_audited, link, verify
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import AuditEntry, AuditHead

DECISIONS = 6


@pytest.fixture
def db(catalog_db: Database) -> Database:
    database = catalog_db
    with database.session() as s:
        for i in range(1, DECISIONS + 1):
            repo.log_event(s, "decision.approved", subject=f"cr_{i}", actor="ana",
                           payload={"reason": "on brief", "n": i})  # fmt: skip
            repo.log_event(s, "job.done", subject=f"job_{i}")  # progress: not audited
        repo.log_events(s, [{"type": "rights.revoked", "subject": "cr_1", "actor": "legal"}])
        s.commit()
    return database


Statement = str | tuple[str, dict[str, Any]]  # SQL, or SQL with bound values


def tamper(db: Database, *statements: Statement) -> None:
    """Run ``statements`` as the database's owner would, past the append-only trigger."""
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_log_append_only ON audit_log")
        for statement in statements:
            sql, values = (statement, {}) if isinstance(statement, str) else statement
            conn.execute(text(sql), values)


def check(db: Database, expect: str | None = None) -> tuple[bool, int | None, str]:
    with db.session(write=False) as s:
        verdict = verify(s, expect=expect)
    return verdict.ok, verdict.broken_at, verdict.problem


def test_audited_events_are_chained_in_order_and_progress_is_not(db: Database) -> None:
    with db.session(write=False) as s:
        entries = s.query(AuditEntry).order_by(AuditEntry.seq).all()
        head = s.get(AuditHead, 1)
    assert [e.type for e in entries] == ["decision.approved"] * DECISIONS + ["rights.revoked"]
    assert [e.seq for e in entries] == list(range(1, DECISIONS + 2))
    prev = GENESIS
    for e in entries:
        assert e.prev == prev and e.hash == link(prev, e.body)
        assert json.loads(e.body)["seq"] == e.seq and e.body == canonical(json.loads(e.body))
        prev = e.hash
    assert head is not None and (head.seq, head.hash) == (DECISIONS + 1, prev)
    assert check(db) == (True, None, "")
    assert is_audited("decision.rejected") and not is_audited("run.started")


def test_the_database_refuses_edits_to_the_chain(db: Database) -> None:
    with pytest.raises(Exception, match="append-only"), db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    with pytest.raises(Exception, match="append-only"), db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))


def test_an_edited_entry_is_named(db: Database) -> None:
    tamper(db, "UPDATE audit_log SET body = REPLACE(body, 'on brief', 'off brief') WHERE seq = 3")
    ok, at, problem = check(db)
    assert (ok, at) == (False, 3) and "edited" in problem


def test_an_edited_column_is_named(db: Database) -> None:
    tamper(db, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
    ok, at, problem = check(db)
    assert (ok, at) == (False, 4) and "columns differ" in problem


def test_an_edited_and_rehashed_entry_breaks_the_link_to_the_next(db: Database) -> None:
    with db.session(write=False) as s:
        entry = s.get(AuditEntry, 3)
        assert entry is not None
        body = entry.body.replace("on brief", "off brief")
        forged = link(entry.prev, body)
    tamper(
        db, ("UPDATE audit_log SET body = :b, hash = :h WHERE seq = 3", {"b": body, "h": forged})
    )
    ok, at, problem = check(db)
    assert (ok, at) == (False, 4) and "does not follow entry 3" in problem


def test_a_deleted_entry_is_named(db: Database) -> None:
    tamper(db, "DELETE FROM audit_log WHERE seq = 2")
    ok, at, problem = check(db)
    assert (ok, at) == (False, 2) and "entry 2 deleted" in problem


def test_deleted_entries_at_the_end_are_caught_by_the_head(db: Database) -> None:
    tamper(db, f"DELETE FROM audit_log WHERE seq > {DECISIONS - 1}")
    ok, at, problem = check(db)
    assert (ok, at) == (False, DECISIONS) and "deleted" in problem


def test_an_inserted_entry_is_named(db: Database) -> None:
    """A forged entry slipped in after entry 2, properly hashed, the rest renumbered."""
    with db.session(write=False) as s:
        two = s.get(AuditEntry, 2)
        assert two is not None
        at = two.at
    body = canonical({"seq": 3, "at": json.loads(two.body)["at"], "type": "decision.approved",
                      "actor": "mallory", "subject": "cr_99", "payload": {}})  # fmt: skip
    forged = link(two.hash, body)
    shift = "UPDATE audit_log SET seq = seq + 100 WHERE seq > 2"
    back = "UPDATE audit_log SET seq = seq - 99 WHERE seq > 100"
    insert = (
        "INSERT INTO audit_log (seq, at, type, actor, subject, body, prev, hash) VALUES "
        "(3, :at, 'decision.approved', 'mallory', 'cr_99', :body, :prev, :hash)",
        {"at": at, "body": body, "prev": two.hash, "hash": forged},
    )
    tamper(db, shift, back, insert)
    ok, where, problem = check(db)
    assert (ok, where) == (False, 4) and "inserted" in problem and "entry 3" in problem


def test_reordered_entries_are_named(db: Database) -> None:
    """Entries 2 and 3 swapped: each row keeps its content under the other's number."""
    tamper(
        db,
        "UPDATE audit_log SET seq = 1000 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = 1000",
    )
    ok, at, problem = check(db)
    assert (ok, at) == (False, 2) and "moved" in problem


def test_a_rewritten_chain_fails_against_a_kept_head(db: Database) -> None:
    """Whoever rewrites everything after entry 2 (head included) fools verify alone, not
    a head kept outside."""
    with db.session(write=False) as s:
        kept = s.get(AuditHead, 1)
        assert kept is not None
        kept_hash = kept.hash
        entries = s.query(AuditEntry).order_by(AuditEntry.seq).all()
        rows = [(e.seq, e.body, e.prev) for e in entries]
    statements: list[Statement] = []
    prev = next(e.hash for e in entries if e.seq == 2)
    for seq, body, _ in rows[2:]:
        body = body.replace("on brief", "off brief")
        digest = link(prev, body)
        statements.append(
            (
                "UPDATE audit_log SET body = :b, prev = :p, hash = :h WHERE seq = :n",
                {"b": body, "p": prev, "h": digest, "n": seq},
            )
        )
        prev = digest
    statements.append(("UPDATE audit_head SET hash = :h", {"h": prev}))
    tamper(db, *statements)
    assert check(db) == (True, None, "")
    ok, _, problem = check(db, expect=kept_hash)
    assert not ok and "not in the chain" in problem


def test_cli_verify_and_head(workspace_dir: Path) -> None:
    cli = [sys.executable, "-m", "bildwerk", "--workspace", str(workspace_dir)]
    head = subprocess.run([*cli, "audit", "head", "--json"], capture_output=True, text=True)
    assert head.returncode == 0, head.stderr
    kept = json.loads(head.stdout)
    assert kept["seq"] >= 0 and len(kept["hash"]) == 64
    ok = subprocess.run([*cli, "audit", "verify", "--expect", kept["hash"]],
                        capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0 and "audit chain holds" in ok.stdout, ok.stdout + ok.stderr
    bad = subprocess.run([*cli, "audit", "verify", "--expect", "f" * 64], capture_output=True,
                         text=True)  # fmt: skip
    assert bad.returncode == 1 and "not in the chain" in bad.stdout


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh catalog goes, on SQLite and on a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return str(request.getfixturevalue("postgres_url"))


# events of a catalog made before the chain existed, in the order they happened
HISTORY = (
    ("decision.approved", "cr_1", "ana", {"reason": "on brief"}),
    ("run.started", "r1", "", {}),  # progress: not audited
    ("run.queued", "r2", "ci-bot", {"brief": "summer.yaml"}),
    ("rights.set", "cr_1", "legal", {"licence": "web"}),
    ("job.done", "job_1", "", {}),  # progress: not audited
    ("decision.rejected", "cr_2", "ana", {"reason": "off brief"}),
)


def test_upgrading_an_older_catalog_chains_its_audited_history(catalog_url: str) -> None:
    """Migration 0009 chains the audited events already in the log, in event order."""
    from alembic import command
    from sqlalchemy import JSON, DateTime, String, column, create_engine, table

    from bildwerk.catalog.db import _alembic_config, db_upgrade

    events = table(
        "events",
        column("at", DateTime(timezone=True)),
        column("type", String),
        column("subject", String),
        column("actor", String),
        column("payload", JSON),
    )
    start = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    cfg, engine = _alembic_config(), create_engine(catalog_url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0008")  # before the chain existed
            for i, (kind, subject, actor, payload) in enumerate(HISTORY):
                conn.execute(
                    events.insert().values(at=start + timedelta(minutes=i), type=kind,
                                           subject=subject, actor=actor, payload=payload)
                )  # fmt: skip
    finally:
        engine.dispose()
    db_upgrade(catalog_url)
    audited = [(i, *event) for i, event in enumerate(HISTORY) if is_audited(event[0])]
    assert [kind for _, kind, *_ in audited] == [
        "decision.approved", "run.queued", "rights.set", "decision.rejected"
    ]  # fmt: skip
    database = Database(catalog_url)
    try:
        with database.session(write=False) as s:
            entries = s.query(AuditEntry).order_by(AuditEntry.seq).all()
            verdict = verify(s)
        assert verdict.ok and verdict.entries == len(audited), verdict
        assert [e.seq for e in entries] == list(range(1, len(audited) + 1))
        assert [(e.type, e.subject, e.actor) for e in entries] == [
            (kind, subject, actor) for _, kind, subject, actor, _ in audited
        ]
        bodies = [json.loads(e.body) for e in entries]
        assert [(b["at"], b["payload"]) for b in bodies] == [
            ((start + timedelta(minutes=i)).isoformat(), payload) for i, _, _, _, payload in audited
        ]
        with database.session() as s:  # new entries follow the history
            repo.log_event(s, "decision.rejected", subject="cr_1", actor="ana")
            s.commit()
        with database.session(write=False) as s:
            verdict = verify(s)
        assert verdict.ok and verdict.entries == len(audited) + 1
    finally:
        database.close()


def test_signed_checkpoints(workspace_dir: Path, tmp_path: Path) -> None:
    from bildwerk.publish.keys import dev_init

    dev_init(workspace_dir, org="acme")
    cli = [sys.executable, "-m", "bildwerk", "--workspace", str(workspace_dir)]
    kept = tmp_path / "checkpoint.json"
    head = subprocess.run([*cli, "audit", "head", "--checkpoint", str(kept)],
                          capture_output=True, text=True)  # fmt: skip
    assert head.returncode == 0 and "NOT FOR PRODUCTION" in head.stdout, head.stderr
    ok = subprocess.run([*cli, "audit", "verify", "--checkpoint", str(kept), "--json"],
                        capture_output=True, text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "acme" in json.loads(ok.stdout)["checkpoint"]["signer"]
    doc = json.loads(kept.read_text())
    doc["checkpoint"]["seq"] += 1  # an edited checkpoint
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc))
    bad = subprocess.run([*cli, "audit", "verify", "--checkpoint", str(forged)],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "signature does not match" in bad.stderr


def test_checkpoint_signatures_for_rsa_and_ed25519() -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    from bildwerk.publish import checkpoint

    for key, alg in ((rsa.generate_private_key(65537, 2048), "ps256"),
                     (ed25519.Ed25519PrivateKey.generate(), "ed25519")):  # fmt: skip
        signature = checkpoint._sign(key, alg, b"head")
        checkpoint._verify(key.public_key(), alg, signature, b"head")
        with pytest.raises(InvalidSignature):
            checkpoint._verify(key.public_key(), alg, signature, b"other head")
