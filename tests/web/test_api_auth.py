"""The web app's API on a real workspace (SQLite and PostgreSQL catalogs): logins, the
authorisation matrix over every route and role, CSRF, sessions that end, revoked tokens,
problem+json, security headers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import update

from bildwerk.accounts import service
from bildwerk.accounts.roles import GRANTS, Permission, Role
from bildwerk.catalog.audit import verify
from bildwerk.catalog.models import AuditEntry, Run, WebSession, utcnow
from bildwerk.netguard import is_loopback
from bildwerk.testing.catalog_rows import fill_run
from bildwerk.web.app import api_routes, create_app
from bildwerk.web.auth import CSRF_HEADER, PUBLIC, Throttle, route_permission
from bildwerk.web.guard import SECURITY_HEADERS
from bildwerk.workspace import Workspace

PASSWORD = "correct horse battery"
# a call per route that passes validation, so only authorisation decides the answer
CALLS: dict[tuple[str, str], dict[str, object]] = {
    ("POST", "/api/v1/users"): {"json": {"name": "newbie", "roles": ["viewer"]}},
    ("PATCH", "/api/v1/users/{name}"): {"json": {"roles": ["viewer"]}},
    ("POST", "/api/v1/tokens"): {"json": {"label": "matrix"}},
    ("POST", "/api/v1/plans"): {"json": {"brief": "campaigns/none.yaml"}},
    ("POST", "/api/v1/runs"): {"json": {"brief": "campaigns/none.yaml"}},
    ("POST", "/api/v1/briefs"): {"files": {"file": ("b.yaml", b"campaign: [")}},
    ("POST", "/api/v1/creatives/{creative_id}/decisions"): {
        "json": {"state": "rejected", "reason": "matrix"}
    },
    ("PUT", "/api/v1/creatives/{creative_id}/rights"): {"json": {"clear_expiry": True}},
    ("POST", "/api/v1/creatives/{creative_id}/revoke"): {"json": {"reason": "matrix"}},
    ("POST", "/api/v1/runs/{run_id}/publish"): {"json": {"targets": ["nowhere"]}},
    ("GET", "/api/v1/runs/{run_id}/events/stream"): {"params": {"seconds": 0}},
    ("GET", "/api/v1/decisions/stream"): {"params": {"seconds": 0}},
}
RUN = "run-synthetic"


def path_for(route: APIRoute, ids: dict[str, str]) -> str:
    """The route's path with real objects: the synthetic run (submitted by ``creator``),
    one of its creatives, an account, and the caller's own token."""
    return route.path.format(
        run_id=RUN, creative_id=ids["creative"], name="viewer", token_id=ids["token"],
        fmt="webp", width=320,
    )  # fmt: skip


@pytest.fixture(params=["sqlite", "postgres"])
def app_client(
    request: pytest.FixtureRequest, workspace_dir: Path
) -> Iterator[tuple[TestClient, Workspace]]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        config = workspace_dir / "bildwerk.yaml"
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("url: sqlite:///.bildwerk/catalog.db", f"url: {url}"))
    app = create_app(workspace_dir)
    ws: Workspace = app.state.workspace
    for role in Role:
        service.add_user(ws.db, role.value, [role.value], password=PASSWORD, actor="setup")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, ws


def token_for(ws: Workspace, role: Role) -> dict[str, str]:
    _, secret = service.create_token(ws.db, role.value, actor="setup")
    return {"Authorization": f"Bearer {secret}"}


def login(client: TestClient, name: str) -> str:
    reply = client.post("/api/v1/session", json={"name": name, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    csrf: str = reply.json()["csrf"]
    return csrf


def endpoints(client: TestClient) -> list[APIRoute]:
    return api_routes(client.app)  # type: ignore[arg-type]


def test_every_route_declares_its_permission(app_client: tuple[TestClient, Workspace]) -> None:
    client, _ = app_client
    routes = endpoints(client)
    assert routes and all(route_permission(r) is not None for r in routes), [
        r.path for r in routes if route_permission(r) is None
    ]
    public = sorted({r.path for r in routes if route_permission(r) == PUBLIC})
    assert public == ["/api/v1/session", "/login"]


def test_authorisation_matrix(app_client: tuple[TestClient, Workspace]) -> None:
    """Every route, every role (by API token) and nobody: 401 without credentials, 403
    exactly where the permission table says no, never a 5xx."""
    client, ws = app_client
    creatives = fill_run(ws.db, 4, run_id=RUN, submitted_by="creator")
    headers = {role: token_for(ws, role) for role in Role}
    spare = {role: service.create_token(ws.db, role.value, actor="setup") for role in Role}
    for route in endpoints(client):
        needed = route_permission(route)
        for method in route.methods:
            kwargs = CALLS.get((method, route.path), {})
            if needed == PUBLIC:
                continue
            path = path_for(route, {"creative": creatives[0], "token": "none"})
            anonymous = client.request(method, path, follow_redirects=False, **kwargs)  # type: ignore[arg-type]
            if route.path.startswith("/api/"):
                assert anonymous.status_code == 401, (method, route.path)
            else:  # pages send people to the login page, and back after it
                assert anonymous.status_code == 303, (method, route.path)
                assert anonymous.headers["location"].startswith("/login?next=%2F")
            for role in Role:
                path = path_for(route, {"creative": creatives[0], "token": spare[role][0].id})
                reply = client.request(method, path, headers=headers[role],  # type: ignore[arg-type]
                                       follow_redirects=False, **kwargs)  # fmt: skip
                may = Permission(needed) in GRANTS[role]
                assert reply.status_code < 500, (method, route.path, role, reply.text)
                assert (reply.status_code != 403) == may, (method, route.path, role, reply.text)


def test_session_login_csrf_and_logout(app_client: tuple[TestClient, Workspace]) -> None:
    client, ws = app_client
    csrf = login(client, "admin")
    cookie = client.cookies.get("bildwerk_session")
    assert cookie and len(cookie) > 40
    assert client.get("/api/v1/me").json()["name"] == "admin"
    body = {"name": "bea", "roles": ["reviewer"], "password": PASSWORD}
    refused = client.post("/api/v1/users", json=body)  # no CSRF token
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    wrong = client.post("/api/v1/users", json=body, headers={CSRF_HEADER: "nope"})
    assert wrong.status_code == 403
    assert [a.name for a in service.users(ws.db)].count("bea") == 0  # nothing stored
    made = client.post("/api/v1/users", json=body, headers={CSRF_HEADER: csrf})
    assert made.status_code == 201 and made.json()["roles"] == ["reviewer"]
    assert client.delete("/api/v1/session", headers={CSRF_HEADER: csrf}).status_code == 204
    client.cookies.set("bildwerk_session", cookie)  # a stolen copy of the cookie
    ended = client.get("/api/v1/me")
    assert ended.status_code == 401 and ended.headers["content-type"] == "application/problem+json"
    with ws.db.session(write=False) as s:
        types = [e.type for e in s.query(AuditEntry).order_by(AuditEntry.seq)]
        assert verify(s).ok
    assert {"login.succeeded", "user.added", "login.logout"} <= set(types)


def test_failed_logins_are_alike_throttled_and_audited(
    app_client: tuple[TestClient, Workspace],
) -> None:
    client, ws = app_client
    for name in ("viewer", "nobody"):
        reply = client.post("/api/v1/session", json={"name": name, "password": "wrong password"})
        assert reply.status_code == 401
        assert reply.json()["detail"] == "wrong user name or password"
    for _ in range(5):
        client.post("/api/v1/session", json={"name": "viewer", "password": "wrong again!"})
    blocked = client.post("/api/v1/session", json={"name": "viewer", "password": PASSWORD})
    assert blocked.status_code == 429 and blocked.json()["title"] == "Too many attempts"
    with ws.db.session(write=False) as s:
        failed = s.query(AuditEntry).filter(AuditEntry.type == "login.failed").count()
    assert failed == 5  # each failure until the throttle (per client: 5) refuses to try


def test_revoked_tokens_and_disabled_users_are_refused(
    app_client: tuple[TestClient, Workspace],
) -> None:
    client, ws = app_client
    info, secret = service.create_token(ws.db, "reviewer", actor="setup")
    bearer = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/me", headers=bearer).status_code == 200
    service.revoke_token(ws.db, info.id, actor="admin")
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
    login(client, "creator")
    service.set_disabled(ws.db, "creator", True, actor="admin")
    assert client.get("/api/v1/me").status_code == 401


def test_bad_input_is_problem_json_naming_the_field(
    app_client: tuple[TestClient, Workspace],
) -> None:
    client, ws = app_client
    admin = token_for(ws, Role.ADMIN)
    reply = client.post("/api/v1/users", json={"name": "x", "roles": []}, headers=admin)
    assert reply.status_code == 422
    problem = reply.json()
    assert problem["status"] == 422 and problem["errors"][0]["field"] == "roles"
    unknown = client.post("/api/v1/users", json={"name": "x", "roles": ["boss"]}, headers=admin)
    assert unknown.status_code == 400 and "unknown role 'boss'" in unknown.json()["detail"]
    assert unknown.headers["content-type"] == "application/problem+json"
    assert [a.name for a in service.users(ws.db)].count("x") == 0


def test_security_headers_and_schema(app_client: tuple[TestClient, Workspace]) -> None:
    client, _ = app_client
    reply = client.get("/api/v1/openapi.json")
    assert reply.status_code == 200 and "/api/v1/runs" in reply.json()["paths"]
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers[name] == value
    csp = reply.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp


def test_login_throttle_forgets_after_its_window() -> None:
    now = [0.0]
    throttle = Throttle(limit=2, window=60, clock=lambda: now[0])
    throttle.failed("name:ana")
    throttle.failed("name:ana")
    assert throttle.blocked("name:ana") and not throttle.blocked("name:bea")
    now[0] = 61.0
    assert not throttle.blocked("name:ana")


def test_serve_binds_this_machine_unless_told() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")


def test_an_expired_session_is_refused(app_client: tuple[TestClient, Workspace]) -> None:
    client, ws = app_client
    login(client, "viewer")
    assert client.get("/api/v1/me").status_code == 200
    with ws.db.session() as s:
        s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        s.commit()
    reply = client.get("/api/v1/me")
    assert reply.status_code == 401 and "log in again" in reply.json()["detail"]


def test_a_user_header_counts_only_from_a_configured_proxy(workspace_dir: Path) -> None:
    config = workspace_dir / "bildwerk.yaml"
    proxied = "web:\n  trusted_proxy:\n    header: X-Forwarded-User\n    addresses: [10.0.0.5]\n"
    app = create_app(workspace_dir)
    ws: Workspace = app.state.workspace
    service.add_user(ws.db, "ana", ["reviewer"], password=None, actor="setup")
    service.add_user(ws.db, "gone", ["admin"], password=None, actor="setup")
    service.set_disabled(ws.db, "gone", True, actor="setup")
    claim = {"X-Forwarded-User": "ana"}
    with TestClient(app, base_url="http://127.0.0.1", client=("10.0.0.5", 4000)) as client:
        assert client.get("/api/v1/me", headers=claim).status_code == 401  # off by default
    config.write_text(config.read_text(encoding="utf-8") + proxied, encoding="utf-8")
    app = create_app(workspace_dir)
    with TestClient(app, base_url="http://127.0.0.1", client=("10.0.0.9", 4000)) as client:
        assert client.get("/api/v1/me", headers=claim).status_code == 401  # not the proxy
    with TestClient(app, base_url="http://127.0.0.1", client=("10.0.0.5", 4000)) as client:
        me = client.get("/api/v1/me", headers=claim)
        assert me.status_code == 200 and me.json()["via"] == "proxy"
        assert client.get("/api/v1/me", headers={"X-Forwarded-User": "gone"}).status_code == 401
        assert client.get("/api/v1/me", headers={"X-Forwarded-User": "nobody"}).status_code == 401
        star = f"/api/v1/creatives/{fill_run(ws.db, 1)[0]}/star"
        assert client.put(star, headers=claim).status_code == 403  # CSRF applies
        token = {CSRF_HEADER: me.json()["csrf"], **claim}
        assert client.put(star, headers=token).status_code == 204


def test_objects_of_others_are_refused(app_client: tuple[TestClient, Workspace]) -> None:
    """Object-level access (IDOR): a role that may act on its own objects may not act on
    someone else's by naming their id."""
    client, ws = app_client
    service.add_user(ws.db, "cara", ["creator"], password=None, actor="setup")
    fill_run(ws.db, 2, run_id="run-of-creator", submitted_by="creator")
    with ws.db.session() as s:
        s.execute(update(Run).where(Run.id == "run-of-creator").values(status="queued"))
        s.commit()
    viewer = token_for(ws, Role.VIEWER)
    _, cara_secret = service.create_token(ws.db, "cara", actor="setup")
    cara = {"Authorization": f"Bearer {cara_secret}"}
    theirs = client.post("/api/v1/runs/run-of-creator/cancel", headers=cara)
    assert theirs.status_code == 403 and "only they or an admin" in theirs.json()["detail"]
    other, _ = service.create_token(ws.db, "reviewer", actor="setup")
    assert client.delete(f"/api/v1/tokens/{other.id}", headers=viewer).status_code == 403
    assert client.get("/api/v1/tokens?user=reviewer", headers=viewer).status_code == 403
    mine = client.post("/api/v1/tokens", json={"user": "reviewer"}, headers=viewer)
    assert mine.status_code == 403
    assert [t.revoked_at for t in service.tokens(ws.db, "reviewer")] == [None]  # untouched
    with ws.db.session(write=False) as s:
        assert s.get(Run, "run-of-creator").status == "queued"
    own = client.post("/api/v1/runs/run-of-creator/cancel", headers=token_for(ws, Role("creator")))
    assert own.status_code == 202
