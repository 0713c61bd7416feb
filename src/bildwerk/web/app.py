"""The FastAPI application over one workspace: the API router, problem+json errors, and
security headers on every response."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute

from bildwerk.web import api, problems
from bildwerk.web.auth import Throttle

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

    app = FastAPI(
        title="bildwerk",
        version="1",
        description="Campaign briefs in, reviewed and published image variants out.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.workspace = Workspace(root)
    app.state.throttle = Throttle()
    problems.install(app)
    app.include_router(api.router)

    @app.middleware("http")
    async def _headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


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
