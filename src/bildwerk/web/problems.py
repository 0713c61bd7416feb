"""Errors as RFC 9457 problem details (``application/problem+json``): a type, a title,
the status, what went wrong (``detail``) and, for bad input, each field with its own
message, so a client can show it beside the field."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from bildwerk.errors import (
    BildwerkError,
    ConfigError,
    NotAllowedError,
    NotFoundError,
    QuotaError,
    UserError,
)

PROBLEM = "application/problem+json"
HtmlErrors = Callable[[Request, int, str, str | None], Response]
_log = logging.getLogger("bildwerk.web")
_TITLES = {400: "Bad request", 401: "Not logged in", 403: "Not allowed", 404: "Not found",
           405: "Method not allowed", 409: "Conflict", 411: "Length required", 413: "Too large",
           422: "Invalid input",
           429: "Too many attempts", 500: "Internal error"}  # fmt: skip


class Problem(BaseModel):
    """An error (RFC 9457); ``errors`` names each bad field, ``hint`` says what to do."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    hint: str | None = None
    errors: list[dict[str, Any]] | None = None


ERRORS = (400, 401, 403, 404, 409, 411, 413, 422, 429, 500)
"""What any API operation may answer besides its success: bad input (a NUL byte, a bad
id), no login, no permission, no such object, a conflict, a body too large or without a
length, throttled logins, a bug."""


def document(app: FastAPI) -> None:
    """Describe the errors in the OpenAPI schema as they are sent: problem+json, for every
    operation (replacing FastAPI's own 422 body, which the app never sends)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema()
        body = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                for status in ERRORS:
                    responses[str(status)] = {"description": _TITLES[status], "content": body}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    """A problem+json response; ``extra`` members (``errors``, ``hint``) are added."""
    body = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status,
            "detail": detail, **extra}  # fmt: skip
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI, html: HtmlErrors | None = None) -> None:
    """Every error the app can raise answers as problem+json under ``/api/``; pages get
    ``html(request, status, detail, hint)`` instead (a login redirect, an error page)."""

    def answer(request: Request, status: int, detail: str, **extra: Any) -> Response:
        if html is not None and not request.url.path.startswith("/api/"):
            return html(request, status, detail, extra.get("hint"))
        return problem(status, detail, **extra)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        return answer(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
            for e in exc.errors()
        ]
        detail = "the request has invalid fields"
        if html is not None and not request.url.path.startswith("/api/"):
            detail += ": " + "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return answer(request, 422, detail, errors=errors)

    @app.exception_handler(BildwerkError)
    async def _bildwerk(request: Request, exc: BildwerkError) -> Response:
        extra: dict[str, Any] = {"hint": exc.hint} if getattr(exc, "hint", None) else {}
        if isinstance(exc, ConfigError):  # a brief or settings file: where, exactly
            where = {"file": exc.path.name, "line": exc.line, "field": exc.field}
            extra["errors"] = [{**where, "message": exc.detail}]
        return answer(request, status_of(exc), exc.message, **extra)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        _log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return answer(request, 500, "something went wrong on the server; it is in its log")


def status_of(exc: BildwerkError) -> int:
    """The HTTP status of one of bildwerk's errors."""
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


_STATUS: tuple[tuple[type[BildwerkError], int], ...] = (
    (NotFoundError, 404),
    (NotAllowedError, 403),
    (QuotaError, 429),
    (ConfigError, 422),
    (UserError, 400),
)
