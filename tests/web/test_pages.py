"""The server-rendered pages on a real workspace: login by form (and back to where one
was going), every page for a logged-in person, forms refused without their CSRF token,
a broken brief shown where it is broken, and the gallery's filters."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bildwerk.accounts import service
from bildwerk.catalog.models import Decision
from bildwerk.testing.catalog_rows import fill_run
from bildwerk.web.app import create_app
from bildwerk.workspace import Workspace

PASSWORD = "correct horse battery"


@pytest.fixture
def site(workspace_dir: Path) -> Iterator[tuple[TestClient, Workspace, list[str]]]:
    app = create_app(workspace_dir)
    ws: Workspace = app.state.workspace
    for name, roles in {"ana": ["creator"], "ben": ["reviewer", "publisher"],
                        "root": ["admin"]}.items():  # fmt: skip
        service.add_user(ws.db, name, roles, password=PASSWORD, actor="setup")
    ids = fill_run(ws.db, 30, run_id="run-synthetic", submitted_by="ana")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, ws, ids


def login(client: TestClient, name: str, next: str = "/") -> str:
    reply = client.post("/login", data={"name": name, "password": PASSWORD, "next": next},
                        follow_redirects=False)  # fmt: skip
    assert reply.status_code == 303, reply.text
    assert reply.headers["location"] == next
    page = client.get(next).text
    found = re.search(r'<meta name="csrf" content="([^"]+)">', page)
    assert found, page[:500]
    return found.group(1)


def test_login_form_and_every_page(site: tuple[TestClient, Workspace, list[str]]) -> None:
    client, _, ids = site
    sent = client.get("/runs/run-synthetic?decision=rejected", follow_redirects=False)
    assert sent.status_code == 303
    assert sent.headers["location"] == "/login?next=%2Fruns%2Frun-synthetic%3Fdecision%3Drejected"
    wrong = client.post("/login", data={"name": "root", "password": "nope"})
    assert wrong.status_code == 401 and "wrong user name or password" in wrong.text
    assert client.post("/login", data={"name": "root", "password": PASSWORD,
                                       "next": "//evil.example/"},
                       follow_redirects=False).headers["location"] == "/"  # fmt: skip
    login(client, "root")
    for path, expect in [
        ("/", "run-synthetic"),
        ("/runs/new", "summer-sale.yaml"),
        ("/runs/run-synthetic", ids[0]),
        (f"/creatives/{ids[1]}", "How it was made"),
        (f"/compare?id={ids[1]}&id={ids[2]}", "What differs"),
        ("/publish", "Publish"),
        ("/audit", "Chain verified"),
    ]:
        reply = client.get(path)
        assert reply.status_code == 200, (path, reply.text[:300])
        assert expect in reply.text, path
        assert reply.headers["content-type"].startswith("text/html")
        assert "unsafe-inline" not in reply.headers["content-security-policy"]
        assert "<script>" not in reply.text and " style=" not in reply.text  # CSP: no inline
    missing = client.get("/creatives/cr_nothing")
    assert missing.status_code == 404 and "no creative" in missing.text
    assert client.get("/compare?id=" + ids[0]).status_code == 422


def test_gallery_filters_and_groups(site: tuple[TestClient, Workspace, list[str]]) -> None:
    client, _, ids = site
    login(client, "ben")
    failing = client.get("/runs/run-synthetic?failing=contrast").text
    shown = set(re.findall(r'data-id="(cr_[0-9a-f]+)"', failing))
    assert shown == {ids[i] for i in range(30) if i % 7 == 0}
    page = client.get("/runs/run-synthetic?slot=product:serum&q=dusk").text
    shown = set(re.findall(r'data-id="(cr_[0-9a-f]+)"', page))
    assert shown and shown <= {ids[i] for i in range(30) if i % 3 == 0}
    headings = re.findall(r"<h2>([^<]+)</h2>", client.get("/runs/run-synthetic").text)
    assert headings[0].startswith("feed ›") and len(headings) == len(set(headings))


def test_forms_need_csrf_and_name_what_is_wrong(
    site: tuple[TestClient, Workspace, list[str]],
) -> None:
    client, ws, ids = site
    csrf = login(client, "ana", "/runs/new")
    bad = b"campaign: broken\nchannels: [nope_channel]\n"
    refused = client.post("/runs/new", files={"file": ("broken.yaml", bad)})
    assert refused.status_code == 403  # no CSRF token
    shown = client.post("/runs/new", data={"csrf": csrf}, files={"file": ("broken.yaml", bad)})
    assert shown.status_code == 422 and "broken.yaml" in shown.text
    assert "What to do" in shown.text or "field" in shown.text
    assert not any("broken" in p.name for p in (ws.root / "campaigns").iterdir())
    plan = client.post("/runs/new", data={"csrf": csrf, "brief": "campaigns/summer-sale.yaml"})
    assert plan.status_code == 200 and "Submit the run" in plan.text
    submitted = client.post("/runs", data={"csrf": csrf, "brief": "campaigns/summer-sale.yaml"},
                            follow_redirects=False)  # fmt: skip
    assert submitted.status_code == 303 and submitted.headers["location"].startswith("/runs/")
    assert client.get(submitted.headers["location"]).status_code == 200
    # a creator may not revoke; the page says so
    denied = client.post(f"/creatives/{ids[0]}/revoke", data={"csrf": csrf, "reason": "x"})
    assert denied.status_code == 403 and "may not change rights or revoke" in denied.text
    with ws.db.session(write=False) as s:
        assert s.query(Decision).filter(Decision.actor != "gate").count() == 0
