"""``publish``, ``publish --sync`` and ``reproduce`` each write an event stream that
``runs watch`` replays; publishing costs a constant number of SQL statements however many
creatives a run has; the gate compares against approved creatives of its own campaign and
channels only."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.events import Event, EventStream
from bildwerk.publish.keys import dev_init
from bildwerk.scaffold import init_workspace
from bildwerk.workspace import Workspace
from tests.test_verify_cli import cli

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
seeds: {{base: 5, count: 1}}
rights:
  expires: 2029-06-30
"""


def write_brief(
    root: Path, name: str, *, campaign: str = "drop", products: int = 2, segments: str = ""
) -> Path:
    names = sorted(p.stem for p in (root / "assets" / "products").glob("*.png"))[:products]
    lines = "\n".join(f"  {n}: ../assets/products/{n}.png" for n in names)
    path = root / "campaigns" / f"{name}.yaml"
    text = BRIEF.format(campaign=campaign, segments=segments, names=", ".join(names), lines=lines)
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
def no_timed_flush(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Progress events are then written only where the publisher commits anyway, so the
    count does not depend on how long signing took."""
    monkeypatch.setattr(EventStream, "FLUSH_EVERY", 1e9)
    yield


def publish_statements(ws: Workspace, run_id: str) -> tuple[int, int]:
    counter = Statements(ws.db)
    try:
        report = ws.publisher("tester").publish(run_id, ["site"])
    finally:
        counter.close()
    return counter.count, len(report.published)


def test_publish_statements_do_not_grow_with_creatives(
    ran: tuple[Path, str, list[str]], tmp_path: Path, no_timed_flush: None
) -> None:
    ws4, run_id = copy_of(ran, tmp_path / "four", only=ran[2])
    ws8, _ = copy_of(ran, tmp_path / "eight")
    four, n4 = publish_statements(ws4, run_id)
    eight, n8 = publish_statements(ws8, run_id)
    assert (n4, n8) == (4, 8)
    print(f"SQL statements: publish of 4 creatives {four}, of 8 creatives {eight}")
    assert eight == four
    again4, _ = publish_statements(ws4, run_id)  # everything cached and up already
    again8, _ = publish_statements(ws8, run_id)
    print(f"SQL statements: re-publish of 4 creatives {again4}, of 8 creatives {again8}")
    assert again8 == again4
