"""The FastAPI application over one workspace: the API router, problem+json errors, and
security headers on every response."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from bildwerk.web import api, api_creatives, api_runs, pages, problems
from bildwerk.web.auth import Throttle
from bildwerk.web.feeds import Feeds
from bildwerk.web.guard import Guard


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

    app.add_middleware(Guard)
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
