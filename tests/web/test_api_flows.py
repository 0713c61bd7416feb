"""A team's day through the API, with tokens, against a real server on 127.0.0.1 (SQLite
and PostgreSQL catalogs): upload and plan a brief, submit it, follow its progress live
and resume after a dropped connection, review with separation of duties while another
reviewer sees the decisions arrive, star, publish, and find it all in the audit chain.
Bad input is refused with the field named and nothing stored."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bildwerk.accounts import service
from bildwerk.catalog.audit import verify
from bildwerk.catalog.models import AuditEntry, Decision, Run
from bildwerk.publish.keys import dev_init
from bildwerk.web.app import create_app
from bildwerk.workspace import Workspace
from tests.web.server import serving

BRIEF = """\
campaign: api-flow
backend: studio
segments: [{{id: a}}, {{id: b}}]
locales:  # one creative per cell (segment, locale): none competes with another
  en-US: {{headline: "Fresh drop", subline: "New colours", cta: "Shop now"}}
  de-DE: {{headline: "Frisch da", subline: "Neue Farben", cta: "Jetzt kaufen"}}
channels: [display_mrec]
prompt:
  template: "studio packshot of the {{product}} on a {{surface}}"
  slots: {{product: [{product}], surface: [pastel podium]}}
product_slot: product
products:
  {product}: ../assets/products/{product}.png
seeds: {{base: 11, count: 1}}
"""
USERS = {"ana": ["creator", "reviewer"], "ben": ["reviewer"], "cy": ["reviewer"],
         "pia": ["publisher"], "root": ["admin"]}  # fmt: skip


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, workspace_dir: Path) -> Iterator[tuple[str, Workspace]]:
    if request.param == "postgres":
        config = workspace_dir / "bildwerk.yaml"
        url = request.getfixturevalue("postgres_url")
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("url: sqlite:///.bildwerk/catalog.db", f"url: {url}"))
    dev_init(workspace_dir, org="acme")
    app = create_app(workspace_dir)
    ws: Workspace = app.state.workspace
    for name, roles in USERS.items():
        service.add_user(ws.db, name, roles, password=None, actor="setup")
    with serving(app) as base:
        yield base, ws


def _clients(base: str, ws: Workspace) -> dict[str, httpx.Client]:
    out = {}
    for name in USERS:
        _, secret = service.create_token(ws.db, name, actor="setup")
        out[name] = httpx.Client(base_url=base, trust_env=False, timeout=60,
                                 headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
    return out


def _sse(reply: httpx.Response) -> Iterator[dict[str, Any]]:
    """Events of an SSE response as {id, event, data}."""
    event: dict[str, Any] = {}
    for line in reply.iter_lines():
        if not line:
            if "data" in event:
                yield event
            event = {}
        elif line.startswith(("id:", "event:", "data:")):
            key, _, value = line.partition(":")
            event[key] = json.loads(value) if key == "data" else value.strip()


def test_a_run_through_the_api(server: tuple[str, Workspace]) -> None:
    base, ws = server
    c = _clients(base, ws)
    product = sorted(p.stem for p in (ws.root / "assets" / "products").glob("*.png"))[0]
    brief = BRIEF.format(product=product).encode()

    # bad input first: refused, field named, nothing stored
    bad = c["ana"].post("/api/v1/briefs", files={"file": ("oops.yaml", b"campaign: x\nseeds: [\n")})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["file"] == "oops.yaml" and bad.json()["errors"][0]["line"]
    big = c["ana"].post("/api/v1/briefs", files={"file": ("big.yaml", b"#" * (50 << 20))})
    assert big.status_code == 413
    assert sorted(p.name for p in (ws.root / "campaigns").iterdir()) == ["summer-sale.yaml"]
    escape = c["ana"].post("/api/v1/plans", json={"brief": "../bildwerk.yaml"})
    assert escape.status_code == 400 and "outside the workspace" in escape.json()["detail"]

    uploaded = c["ana"].post("/api/v1/briefs", files={"file": ("Flow Test.yaml", brief)})
    assert uploaded.status_code == 201, uploaded.text
    path = uploaded.json()["brief"]
    assert path.startswith("campaigns/flow-test-") and path in c["ana"].get("/api/v1/briefs").json()
    plan = c["ana"].post("/api/v1/plans", json={"brief": path}).json()
    assert (
        plan["variants"] == 4
        and plan["to_make"] == 4
        and plan["per_channel"] == {"display_mrec": 4}
    )
    assert c["ben"].post("/api/v1/runs", json={"brief": path}).status_code == 403  # no RUN
    queued = c["ana"].post("/api/v1/runs", json={"brief": path})
    assert queued.status_code == 202 and queued.headers["location"].endswith(
        queued.json()["run_id"]
    )
    run_id = queued.json()["run_id"]
    assert c["ben"].get(queued.headers["location"]).json()["status"] == "queued"
    assert c["ben"].get(queued.headers["location"]).json()["submitted_by"] == "ana"

    # live progress: follow, drop the connection, resume from Last-Event-ID
    worker = threading.Thread(target=lambda: ws.work(once=True, workers=1), daemon=True)
    seen: list[int] = []
    with c["cy"].stream("GET", f"/api/v1/runs/{run_id}/events/stream") as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        worker.start()
        for event in _sse(reply):
            seen.append(int(event["id"]))
            if len(seen) == 3:
                break
    resume = {"Last-Event-ID": str(seen[-1])}
    with c["cy"].stream("GET", f"/api/v1/runs/{run_id}/events/stream", headers=resume) as reply:
        kinds = []
        for event in _sse(reply):
            seen.append(int(event["id"]))
            kinds.append(event["event"])
    worker.join(timeout=300)
    assert kinds[-1] == "run.finished"
    paged = c["cy"].get(f"/api/v1/runs/{run_id}/events").json()
    assert paged["finished"] and seen == [e["seq"] for e in paged["events"]]
    assert seen == list(range(1, len(seen) + 1))  # no gap, no duplicate
    assert c["cy"].get(f"/api/v1/runs/{run_id}").json()["status"] == "done"

    page = c["ben"].get("/api/v1/creatives", params={"run": run_id, "facets": True}).json()
    ids = [item["id"] for item in page["items"]]
    assert page["total"] == 4 and page["facets"]["channel"] == ["display_mrec"]

    # cy watches decisions live while ben decides
    live: list[dict[str, Any]] = []

    def watch() -> None:
        with c["cy"].stream("GET", "/api/v1/decisions/stream", params={"seconds": 20}) as r:
            for event in _sse(r):
                live.append(event["data"])
                if len([d for d in live if d["actor"] == "ben"]) == 5:
                    return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(0.5)
    own = c["ana"].post(f"/api/v1/creatives/{ids[0]}/decisions", json={"state": "approved"})
    assert own.status_code == 403 and "run they submitted" in own.json()["detail"]
    no_reason = c["ben"].post(f"/api/v1/creatives/{ids[3]}/decisions", json={"state": "rejected"})
    assert no_reason.status_code == 400 and "needs a reason" in no_reason.json()["detail"]
    for cid in ids[:3]:
        ok = c["ben"].post(f"/api/v1/creatives/{cid}/decisions", json={"state": "approved"})
        assert ok.status_code == 201 and ok.json()["state"] == "approved", (ok.text, page)
    reject = {"state": "rejected", "reason": "logo too small"}
    assert c["ben"].post(f"/api/v1/creatives/{ids[3]}/decisions", json=reject).status_code == 201
    undone = c["ben"].post(f"/api/v1/creatives/{ids[3]}/undo").json()
    assert undone["previous"] == "rejected" and undone["state"] != "rejected"
    watcher.join(timeout=20)
    assert [d["creative"] for d in live if d["actor"] == "ben"] == [*ids, ids[3]]
    assert c["cy"].post(f"/api/v1/creatives/{ids[3]}/undo").status_code == 400  # not hers

    assert c["cy"].put(f"/api/v1/creatives/{ids[1]}/star").status_code == 204
    assert [i["id"] for i in c["cy"].get("/api/v1/creatives?starred=true").json()["items"]] == [
        ids[1]
    ]
    assert c["ben"].get("/api/v1/creatives?starred=true").json()["total"] == 0
    thumb = c["cy"].get(f"/api/v1/creatives/{ids[1]}/thumb/320")
    assert thumb.status_code == 200, thumb.text
    assert (
        thumb.headers["content-type"] == "image/webp"
        and "immutable" in thumb.headers["cache-control"]
    )
    drawn = c["cy"].get(f"/api/v1/creatives/{ids[1]}/evidence")
    assert drawn.status_code == 200 and drawn.content[8:12] == b"WEBP"
    record = c["cy"].get(f"/api/v1/creatives/{ids[1]}").json()
    assert record["request"]["seed"] == 11 and record["runs"][0]["id"] == run_id
    assert [d["actor"] for d in record["decisions"]] == ["gate", "ben"]
    again = c["ana"].post(f"/api/v1/creatives/{ids[1]}/reproduce")  # a background job
    assert again.status_code == 202 and again.headers["location"].endswith("/events")
    with c["ana"].stream("GET", f"/api/v1/runs/{again.json()['events']}/events/stream") as r:
        last = list(_sse(r))[-1]
    assert last["event"] == "run.finished" and last["data"]["data"]["identical"] is True
    for probe in ("..%2F..%2Fbildwerk.yaml", "%2Fetc%2Fpasswd", f"{ids[1]}%00"):
        status = c["cy"].get(f"/api/v1/creatives/{probe}/thumb/320").status_code
        assert status in (400, 404, 422), (probe, status)

    assert c["ben"].post(f"/api/v1/runs/{run_id}/publish", json={}).status_code == 403
    published = c["pia"].post(f"/api/v1/runs/{run_id}/publish", json={"targets": ["site"]})
    assert published.status_code == 200, published.text
    assert sorted(published.json()["published"]) == sorted(ids[:3])
    revoked = c["pia"].post(f"/api/v1/creatives/{ids[2]}/revoke", json={"reason": "model left"})
    assert revoked.status_code == 200

    with ws.db.session(write=False) as s:
        assert verify(s).ok
        types = [e.type for e in s.query(AuditEntry).order_by(AuditEntry.seq)]
        assert s.get(Run, run_id) is not None
        assert s.query(Decision).filter(Decision.actor == "ben").count() == 5
    assert "run.queued" in types and types.count("decision.approved") >= 3
    assert {"decision.rejected", "rights.revoked", "asset.published"} <= set(types)
    assert c["root"].get("/api/v1/audit").json()["ok"]
