"""``publish``, ``publish --sync`` and ``reproduce`` each write an event stream that
``runs watch`` replays; publishing costs a constant number of SQL statements however many
creatives a run has; the gate compares against approved creatives of its own campaign and
channels only."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.repo.base import CHUNK
from bildwerk.events import Event, EventStream
from bildwerk.publish.keys import dev_init
from bildwerk.records import QARecord
from bildwerk.scaffold import init_workspace
from bildwerk.workspace import Workspace
from tests.publish.test_verify_cli import cli

pytest.importorskip("c2pa")

BRIEF = """\
campaign: {campaign}
backend: studio
{segments}locales:
  en-US: {{headline: "Fresh drop", subline: "New colours this week", cta: "Shop now"}}
  de-DE: {{headline: "Neu da", subline: "Neue Farben diese Woche", cta: "Jetzt kaufen"}}
channels: [display_mrec, og_image]
prompt:
  template: "packshot of the {{product}} on a {{surface}}"
  slots:
    product: [{names}]
    surface: [pastel podium]
product_slot: product
products:
{lines}
seeds: {{base: {seed}, count: 1}}
rights:
  expires: 2029-06-30
"""


def write_brief(
    root: Path,
    name: str,
    *,
    campaign: str = "drop",
    products: int = 2,
    segments: str = "",
    seed: int = 5,
) -> Path:
    names = sorted(p.stem for p in (root / "assets" / "products").glob("*.png"))[:products]
    lines = "\n".join(f"  {n}: ../assets/products/{n}.png" for n in names)
    path = root / "campaigns" / f"{name}.yaml"
    text = BRIEF.format(
        campaign=campaign, segments=segments, names=", ".join(names), lines=lines, seed=seed
    )
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[str]]:
    """8 creatives (2 products x 2 locales x 2 channels), gated, nothing approved; the
    ids of the first product's 4 creatives come along."""
    root = init_workspace(tmp_path_factory.mktemp("pubev") / "acme", name="acme")
    ws = Workspace(root)
    result = ws.run(write_brief(root, "drop"), workers=1)
    assert result.failed == 0 and result.planned == 8
    first = sorted(p.stem for p in (root / "assets" / "products").glob("*.png"))[0]
    rows = ws.review(result.run_id, all_states=True)
    with ws.db.session() as s:
        jobs = repo.done_jobs(s, [j["job_key"] for j in ws.run_info(result.run_id)["jobs"]])
        one = sorted(
            j.creative_id for j in jobs.values() if dict(j.spec["slots"])["product"] == first
        )
    assert len(rows) == 8 and len(one) == 4
    return root, result.run_id, one


def copy_of(
    ran: tuple[Path, str, list[str]], tmp_path: Path, *, only: list[str] | None = None
) -> tuple[Workspace, str]:
    """A copy of the run with every creative approved (or only ``only``), dev keys made."""
    src, run_id, _ = ran
    root = tmp_path / "acme"
    shutil.copytree(src, root)
    ws = Workspace(root)
    rows = ws.review(run_id, all_states=True)
    assert len(rows) == 8
    for row in rows:
        if only is None or row["id"] in only:
            ws.decide(row["id"], "approved", actor="tester", reason="fine", override=True)
    dev_init(root, org="acme")
    return ws, run_id


class Statements:
    """Counts the SQL statements an engine executes (``before_cursor_execute``)."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        self.engine = db.engine
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


@pytest.fixture
def no_timed_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress events are then written only where the publisher commits anyway, so the
    count does not depend on how long signing took."""
    monkeypatch.setattr(EventStream, "FLUSH_EVERY", 1e9)


def publish_statements(ws: Workspace, run_id: str) -> tuple[int, int]:
    counter = Statements(ws.db)
    try:
        report = ws.publisher("tester").publish(run_id, ["site"])
    finally:
        counter.close()
    return counter.count, len(report.published)


def file_rows(ws: Workspace) -> int:
    with ws.db.session() as s:
        return len([p for p in repo.publications(s, "site") if p.rendition_id is not None])


def stamp_rows(ws: Workspace) -> int:
    from bildwerk.catalog.models import Stamp

    with ws.db.session() as s:
        return len(s.scalars(select(Stamp.subject)).all())


def chunks_of(n: int) -> int:
    return -(-n // (CHUNK // 4))


def test_publish_statements_do_not_grow_with_creatives(
    ran: tuple[Path, str, list[str]], tmp_path: Path, no_timed_flush: None
) -> None:
    ws4, run_id = copy_of(ran, tmp_path / "four", only=ran[2])
    ws8, _ = copy_of(ran, tmp_path / "eight")
    four, n4 = publish_statements(ws4, run_id)
    eight, n8 = publish_statements(ws8, run_id)
    assert (n4, n8) == (4, 8)
    print(f"SQL statements: publish of 4 creatives {four}, of 8 creatives {eight}")
    # constant, except one more INSERT per CHUNK // 4 publication rows (intents, then
    # rows; ~11 parameters a row): public renditions bring their .c2pa sidecars
    extra = 2 * (chunks_of(file_rows(ws8)) - chunks_of(file_rows(ws4)))
    # and one more INSERT per CHUNK new stamp rows (written together at the end)
    extra += -(-stamp_rows(ws8) // CHUNK) - -(-stamp_rows(ws4) // CHUNK)
    assert eight == four + extra
    again4, _ = publish_statements(ws4, run_id)  # everything cached and up already
    again8, _ = publish_statements(ws8, run_id)
    print(f"SQL statements: re-publish of 4 creatives {again4}, of 8 creatives {again8}")
    assert again8 == again4


# -- event streams -------------------------------------------------------------------------


def stored(ws: Workspace, stream_id: str) -> list[Event]:
    with ws.db.session() as s:
        return repo.stream_events(s, stream_id)


def check_stream(events: list[Event], stream_id: str, status: str = "done") -> None:
    """Gapless from 1, one stream, opened by run.started and closed by one run.finished;
    every stage that starts finishes, and its jobs come in between."""
    assert events, f"no events stored for {stream_id}"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert {e.stream for e in events} == {stream_id}
    kinds = [e.kind for e in events]
    assert kinds[0] == "run.started" and kinds.count("run.finished") == 1
    assert kinds[-1] == "run.finished" and events[-1].data["status"] == status
    started = {e.stage: e.seq for e in events if e.kind == "stage.started"}
    finished = {e.stage: e.seq for e in events if e.kind == "stage.finished"}
    if status == "done":
        assert started.keys() == finished.keys()
    for e in events:
        if e.kind.startswith("job.") and e.stage is not None:
            assert started[e.stage] < e.seq < finished.get(e.stage, len(events))


def key(e: Event | dict[str, Any]) -> tuple[Any, ...]:
    d = e.to_json() if isinstance(e, Event) else e
    return d["kind"], d["stage"], d["job"], d["seq"]


def watch(
    root: Path, stream_id: str, capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch
) -> list[dict[str, Any]]:
    code, out, err = cli(["runs", "watch", stream_id, "-w", str(root), "--json"], capsys, mp)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def jobs_of(events: list[Event], stage: str) -> list[str]:
    return [e.job or "" for e in events if e.kind == "job.finished" and e.stage == stage]


def test_cli_publish_and_sync_streams_replay_in_runs_watch(
    ran: tuple[Path, str, list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws, run_id = copy_of(ran, tmp_path)
    root = str(ws.root)
    args = ["publish", run_id, "--to", "site", "-w", root, "--json", "--by", "tester"]
    code, out, err = cli(args, capsys, monkeypatch)
    assert code == 0, err
    result = json.loads(out)
    stream_id = result["events"]
    assert stream_id.startswith("publish-")
    events = stored(ws, stream_id)
    check_stream(events, stream_id)
    assert [e.stage for e in events if e.kind == "stage.started"] == ["stamp", "upload", "pages"]
    assert jobs_of(events, "stamp") == jobs_of(events, "upload") == result["published"]
    assert len(result["published"]) == 8 and jobs_of(events, "pages") == ["site"]
    assert events[-1].data["uploaded"] == result["uploaded"] > 0
    assert [key(e) for e in events] == [
        key(d) for d in watch(ws.root, stream_id, capsys, monkeypatch)
    ]

    revoked = result["published"][0]
    ws.publisher("legal").set_rights(revoked, revoke="model release withdrawn")
    code, out, err = cli(["publish", "--sync", "-w", root, "--json"], capsys, monkeypatch)
    assert code == 0, err
    synced = json.loads(out)
    assert synced["removed"] == {"site": [revoked]}
    events = stored(ws, synced["events"])
    check_stream(events, synced["events"])
    assert jobs_of(events, "unpublish") == [revoked] and jobs_of(events, "pages") == ["site"]
    replayed = watch(ws.root, synced["events"], capsys, monkeypatch)
    assert [key(e) for e in events] == [key(d) for d in replayed]


def test_live_events_are_the_stored_ones_and_failures_end_the_stream(
    ran: tuple[Path, str, list[str]], tmp_path: Path
) -> None:
    ws, run_id = copy_of(ran, tmp_path, only=ran[2])
    live: list[Event] = []
    report = ws.publisher("tester", on_event=live.append).publish(run_id, ["site"])
    assert len(report.published) == 4 and len(report.skipped) == 4
    events = stored(ws, report.events)
    check_stream(events, report.events)
    assert len(live) == len(events) and all(a.same_as(b) for a, b in zip(live, events, strict=True))
    skipped = [e.job for e in events if e.kind == "message"]
    assert sorted(skipped) == sorted(report.skipped)  # each skipped creative said why

    live.clear()
    again = copy_of(ran, tmp_path / "again")[0]
    (again.root / "keys" / "dev-key.pem").unlink()  # signing fails before any upload
    with pytest.raises(Exception, match="signing credentials"):
        again.publisher("tester", on_event=live.append).publish(run_id, ["site"])
    stream_id = live[0].stream
    events = stored(again, stream_id)
    check_stream(events, stream_id, status="failed")
    assert "signing credentials" in (events[-1].message or "")


def test_cli_reproduce_stream(
    ran: tuple[Path, str, list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws, _ = copy_of(ran, tmp_path)
    creative = ran[2][0]
    args = ["reproduce", creative, "-w", str(ws.root), "--json"]
    code, out, err = cli(args, capsys, monkeypatch)
    result = json.loads(out)
    assert code == (0 if result["scene"]["identical"] else 1), err
    events = stored(ws, result["events"])
    check_stream(events, result["events"])
    stages = [e.stage for e in events if e.kind == "stage.started"]
    assert stages == ["generate", "compose", "compare"]
    assert jobs_of(events, "compare") == [result["scene_id"], creative]
    assert events[-1].data["identical"] == (
        result["scene"]["identical"] and result["master"]["identical"]
    )
    replayed = watch(ws.root, result["events"], capsys, monkeypatch)
    assert [key(e) for e in events] == [key(d) for d in replayed]


# -- gate: approved creatives of the same campaign and channel only --------------------------


def channels_of(ws: Workspace, run_id: str) -> dict[str, str]:
    keys = [j["job_key"] for j in ws.run_info(run_id)["jobs"]]
    with ws.db.session() as s:
        return {j.creative_id: j.channel or "" for j in repo.done_jobs(s, keys).values()}


def duplicate_checks(ws: Workspace, run_id: str) -> dict[str, str]:
    """creative id -> verdict of its gate duplicate check ("pass:" or "fail:<of whom>")."""
    keys = [j["job_key"] for j in ws.run_info(run_id)["jobs"]]
    out = {}
    with ws.db.session() as s:
        for job in repo.done_jobs(s, keys).values():
            check = next(c for c in QARecord.from_json(job.qa).gate if c.name == "duplicate")
            out[job.creative_id] = f"{check.verdict}:{check.evidence.get('duplicate_of', '')}"
    return out


def test_gate_compares_with_approved_creatives_of_its_campaign_and_channel_only(
    ran: tuple[Path, str, list[str]], tmp_path: Path
) -> None:
    """A new segment id makes new creatives (new job keys) with the approved ones'
    pixels: flagged against them in their campaign and channel, not in another campaign."""
    ws, _ = copy_of(ran, tmp_path)  # all 8 of campaign "drop" approved
    approved = channels_of(ws, ran[1])
    segments = "segments:\n  - id: spring\n"
    brief = write_brief(ws.root, "o", campaign="other", products=1, segments=segments)
    other = ws.run(brief, workers=1)
    assert other.failed == 0 and not set(channels_of(ws, other.run_id)) & set(approved)
    assert set(duplicate_checks(ws, other.run_id).values()) == {"pass:"}
    segments = "segments:\n  - id: summer\n"  # not "spring": new jobs, in campaign "drop"
    again = ws.run(write_brief(ws.root, "d", products=1, segments=segments), workers=1)
    mine = channels_of(ws, again.run_id)
    assert len(mine) == 4 and not set(mine) & set(approved)
    checks = duplicate_checks(ws, again.run_id)
    flagged = {cid: v.split(":")[1] for cid, v in checks.items() if v.startswith("fail:")}
    assert len(flagged) == 4, checks
    assert all(approved[of] == mine[cid] for cid, of in flagged.items()), (flagged, mine)


# -- concurrent publishers never collide on inserts ------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_concurrent_rights_stamps_and_publications(catalog_url: str) -> None:
    ids = [f"cr_{i:02d}" for i in range(12)]
    db = Database(catalog_url, migrate=True)
    with db.session() as s:
        for a in ids:
            repo.ensure_asset(
                s, asset_id=a, kind="creative", sha256="0" * 64, width=1, height=1, fmt="png"
            )
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def publisher(n: int) -> None:
        mine = Database(catalog_url)
        try:
            barrier.wait()
            for _ in range(3):
                with mine.session() as s:
                    repo.ensure_rights(s, ids, expires_on=None, actor=f"p{n}", source="brief")
                    repo.add_stamps(
                        s,
                        [
                            {
                                "subject": f"m:{a}",
                                "stamp_key": "k",
                                "sha256": f"{n}" * 64,
                                "bytes": n,
                            }
                            for a in ids
                        ],
                    )
                    repo.upsert_publications(
                        s,
                        "site",
                        [
                            {
                                "key": f"img/{a}",
                                "asset_id": a,
                                "rendition_id": None,
                                "url": f"u{n}",
                                "sha256": "s",
                                "run_id": None,
                                "meta": {},
                            }
                            for a in ids
                        ],
                    )
                with mine.session() as s:
                    repo.set_rights(s, ids[0], actor=f"p{n}", revoke=f"by p{n}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            mine.close()

    threads = [threading.Thread(target=publisher, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with db.session() as s:
        rights = repo.rights_of(s, ids)
        logged = [e for e in repo.events_for(s) if e.type == "rights.set"]
        stamps = repo.stamps_for(s, [f"m:{a}" for a in ids])
        pubs = repo.publications(s, "site")
    db.close()
    assert sorted(rights) == ids and rights[ids[0]].reason in {f"by p{n}" for n in range(4)}
    assert sorted(e.subject or "" for e in logged) == ids  # each set once, by whoever won
    assert sorted(st.subject for st in stamps) == [f"m:{a}" for a in ids]  # one row each
    assert len(pubs) == len(ids) and {p.state for p in pubs} == {"published"}
