"""Separation of duties and quotas, on SQLite and PostgreSQL: nobody approves their own
run's creatives or publishes their own approvals, admins may override (audited), undo
takes back only one's own decision, and submissions stop at the quota."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bildwerk import Workspace
from bildwerk.accounts.governance import Actor, check_publish, submitters
from bildwerk.accounts.roles import Role
from bildwerk.catalog.audit import verify
from bildwerk.catalog.models import AuditEntry
from bildwerk.config.governance import Governance, Quotas
from bildwerk.errors import NotAllowedError, QuotaError, UserError
from bildwerk.testing.catalog_rows import fill_run
from tests.conftest import SMALL_BRIEF

ANA = Actor("ana", frozenset({Role.CREATOR, Role.REVIEWER}))
BEN = Actor("ben", frozenset({Role.REVIEWER, Role.PUBLISHER}))
ROOT = Actor("root", frozenset({Role.ADMIN}))


def _settings(root: Path, **extra: Any) -> None:
    path = root / "bildwerk.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.update(extra)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


@pytest.fixture(params=["sqlite", "postgres"])
def ws(request: pytest.FixtureRequest, workspace_dir: Path) -> Workspace:
    if request.param == "postgres":
        _settings(workspace_dir, catalog={"url": request.getfixturevalue("postgres_url")})
    return Workspace(workspace_dir)


def _audited(ws: Workspace, type_: str) -> list[AuditEntry]:
    with ws.db.session(write=False) as s:
        return list(s.query(AuditEntry).filter(AuditEntry.type == type_))


def test_nobody_approves_their_own_run(ws: Workspace) -> None:
    ids = fill_run(ws.db, 6, submitted_by="ana")
    with ws.db.session(write=False) as s:
        assert submitters(s, ids[1]) == {"ana"}
    with pytest.raises(NotAllowedError, match="nobody approves a creative from a run they"):
        ws.decide(ids[1], "approved", actor="ana", governed=ANA)
    with pytest.raises(NotAllowedError, match="only admins"):
        ws.decide(ids[1], "approved", actor="ana", governed=ANA, override=True, reason="hurry")
    # rejecting one's own is fine, and so is someone else approving
    assert ws.decide(ids[2], "rejected", actor="ana", reason="blurry", governed=ANA)["state"]
    assert ws.decide(ids[1], "approved", actor="ben", governed=BEN)["state"] == "approved"
    # the CLI is not governed unless governance.cli says so
    assert ws.decide(ids[3], "approved", actor="ana")["state"] == "approved"


def test_admin_override_is_audited(ws: Workspace) -> None:
    ids = fill_run(ws.db, 3, submitted_by="root")
    with pytest.raises(UserError, match="needs a reason"):
        ws.decide(ids[1], "approved", actor="root", governed=ROOT, override=True)
    row = ws.decide(ids[1], "approved", actor="root", governed=ROOT, override=True,
                    reason="launch tonight, legal signed off")  # fmt: skip
    assert row["state"] == "approved"
    [entry] = _audited(ws, "governance.override")
    assert entry.actor == "root" and entry.subject == ids[1]
    assert "launch tonight" in json.loads(entry.body)["payload"]["reason"]
    with ws.db.session(write=False) as s:
        assert verify(s).ok


def test_publishing_needs_someone_elses_approval(ws: Workspace) -> None:
    rules = Governance()
    with ws.db.session() as s:
        approvals = {"cr_a": "ben", "cr_b": "ana"}
        assert check_publish(s, rules, BEN, approvals, override=False, reason="") == {"cr_a"}
        off = Governance(separation_of_duties=False)
        assert check_publish(s, off, BEN, approvals, override=False, reason="") == set()
        with pytest.raises(NotAllowedError, match="only admins"):
            check_publish(s, rules, Actor("ben"), approvals, override=True, reason="x")
        admin = Actor("ben", frozenset({Role.ADMIN}))
        assert check_publish(s, rules, admin, approvals, override=True, reason="x") == set()
        s.commit()
    assert [e.subject for e in _audited(ws, "governance.override")] == ["cr_a"]


def test_undo_takes_back_only_ones_own_latest_decision(ws: Workspace) -> None:
    ids = fill_run(ws.db, 3)
    ws.decide(ids[1], "rejected", actor="ben", reason="logo too small")
    with pytest.raises(UserError, match="not yours to undo"):
        ws.undo(ids[1], actor="ana")
    row = ws.undo(ids[1], actor="ben")
    assert row["previous"] == "rejected" and row["state"] == "needs_review"  # the gate's
    with pytest.raises(UserError, match="not yours to undo"):
        ws.undo(ids[2], actor="ben")  # only the gate decided
    with pytest.raises(UserError, match="unknown decision"):
        ws.decide(ids[1], "published", actor="ben")
    with pytest.raises(UserError, match="needs a reason"):
        ws.decide(ids[1], "rejected", actor="ben", reason="  ")


def test_quota_stops_a_submission_with_a_clear_message(ws: Workspace) -> None:
    products = sorted(p.stem for p in (ws.root / "assets" / "products").glob("*.png"))
    brief = ws.root / "campaigns" / "small.yaml"
    brief.write_text(SMALL_BRIEF.format(product=products[0]), encoding="utf-8")
    _settings(ws.root, governance={"quotas": {"roles": {"creator": 10}, "users": {"ben": 0}}})
    ws = Workspace(ws.root)
    first = ws.submit(brief, actor="ana", governed=ANA)
    assert first["images"] == first["planned"] == 8 and first["quota"]["left"] == 2
    with pytest.raises(QuotaError, match=r"quota is 10 per 24 hours and 8 are queued"):
        ws.submit(brief, actor="ana", governed=ANA)
    with pytest.raises(QuotaError, match="quota is 0"):
        ws.submit(brief, actor="ben", governed=BEN)
    assert ws.submit(brief, actor="root", governed=ROOT)["quota"]["limit"] is None
    assert len(ws.runs()) == 2  # the refused submissions stored nothing


def test_quota_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown role 'designer'"):
        Quotas(roles={"designer": 5})
    with pytest.raises(ValueError, match="0 or more"):
        Quotas(users={"ana": -1})
    quotas = Quotas(roles={"creator": 10, "reviewer": 50}, users={"ana": 3})
    assert quotas.limit_for("ana", {"creator"}) == 3
    assert quotas.limit_for("cy", {"creator", "reviewer"}) == 50
    assert quotas.limit_for("cy", {"viewer"}) is None
