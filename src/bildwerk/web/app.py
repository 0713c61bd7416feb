"""The FastAPI application over one workspace: the API router, problem+json errors, and
security headers on every response."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from bildwerk.web import api, api_creatives, api_runs, pages, problems
from bildwerk.web.auth import Throttle
from bildwerk.web.feeds import Feeds
from bildwerk.web.params import has_nul

SECURITY_HEADERS = {
    # scripts only from the app itself: no inline script, no eval
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def create_app(root: Path) -> FastAPI:
    """The web app of the workspace at ``root`` (opened once, shared by requests)."""
    from bildwerk.workspace import Workspace

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.feeds.close()
        app.state.jobs.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        lifespan=lifespan,
        title="bildwerk",
        version="1",
        description="Campaign briefs in, reviewed and published image variants out.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.workspace = Workspace(root)
    app.state.throttle = Throttle()
    app.state.secret = secrets.token_bytes(32)
    app.state.feeds = Feeds()
    app.state.jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bildwerk-job")
    problems.install(app, html=pages.error_page)
    problems.document(app)
    for router in (api.router, api_runs.router, api_creatives.router, pages.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")

    @app.middleware("http")
    async def _headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        refused = _refused(request) or await _nul_in_body(request)
        response = refused if refused is not None else await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        elif request.url.query:  # versioned by content hash: never changes
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response

    return app


MAX_BODY = 1024 * 1024 + 64 * 1024
"""The largest request body accepted: a 1 MB brief and its multipart framing. Checked
from ``Content-Length`` before anything is read or spooled to disk."""


def _refused(request: Request) -> Response | None:
    """A request refused before routing: a NUL byte in its URL, or a body too large."""
    if has_nul(request.scope.get("raw_path") or b"") or has_nul(request.scope["query_string"]):
        return problems.problem(400, "the URL contains a NUL byte")
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    length = request.headers.get("content-length")
    if length is None:
        if request.headers.get("transfer-encoding", "").lower() == "chunked":
            return problems.problem(411, "send a Content-Length with the request body")
        return None
    if not length.isdigit() or int(length) > MAX_BODY:
        return problems.problem(
            413, f"the request body is over the {MAX_BODY:,}-byte limit",
            hint="a brief is a small YAML file (at most 1 MB); keep images in assets/",
        )  # fmt: skip
    return None


_TEXT_BODIES = ("application/json", "application/x-www-form-urlencoded")


async def _nul_in_body(request: Request) -> Response | None:
    """A NUL character in a JSON or form body: no field of ours holds one, and PostgreSQL
    could not store it (checked here once instead of in every model)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method in ("GET", "HEAD", "OPTIONS") or kind not in _TEXT_BODIES:
        return None
    body = await request.body()  # at most MAX_BODY: larger ones were refused already
    if b"\x00" in body or b"\\u0000" in body or (kind != "application/json" and b"%00" in body):
        return problems.problem(400, "the request body contains a NUL character")
    return None


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every endpoint of ``app``, included routers' too (for route audits)."""
    out: list[APIRoute] = []
    stack: list[Any] = list(app.routes)
    while stack:
        route = stack.pop(0)
        included = getattr(route, "original_router", None)
        if included is not None:
            stack.extend(included.routes)
        elif isinstance(route, APIRoute):
            out.append(route)
    return out
