"""The app's outer layer, as plain ASGI (no per-chunk relaying, so live feeds stream at
full speed): requests refused before routing — a NUL byte in the URL or a text body, a
body too large or without a length — and the security and cache headers on every
response."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Receive, Scope, Send

from bildwerk.web import problems
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
MAX_BODY = 1024 * 1024 + 64 * 1024
"""The largest request body accepted: a 1 MB brief and its multipart framing. Checked
from ``Content-Length`` before anything is read or spooled to disk."""
TEXT_BODIES = ("application/json", "application/x-www-form-urlencoded")
SAFE = ("GET", "HEAD", "OPTIONS")


class Guard:
    """Wraps the app: refuses what no route may see, adds headers to what it answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, versioned = scope["path"], bool(scope.get("query_string"))

        async def send_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if not path.startswith("/static/"):
                    headers.setdefault("Cache-Control", "no-store")
                elif versioned:  # versioned by content hash: never changes
                    headers["Cache-Control"] = "public, max-age=31536000, immutable"
            await send(message)

        refused, receive = await _check(scope, receive)
        if refused is not None:
            await refused(scope, receive, send_headers)
            return
        await self.app(scope, receive, send_headers)


async def _check(scope: Scope, receive: Receive) -> tuple[Any, Receive]:
    """A problem response for a request no route may see (else None), and the receive
    channel to pass on (replaying a text body that was read to be checked)."""
    if has_nul(scope.get("raw_path") or b"") or has_nul(scope.get("query_string") or b""):
        return problems.problem(400, "the URL contains a NUL byte"), receive
    if scope["method"] in SAFE:
        return None, receive
    headers = Headers(scope=scope)
    length = headers.get("content-length")
    if length is None:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return problems.problem(411, "send a Content-Length with the request body"), receive
        return None, receive
    if not length.isdigit() or int(length) > MAX_BODY:
        return problems.problem(
            413, f"the request body is over the {MAX_BODY:,}-byte limit",
            hint="a brief is a small YAML file (at most 1 MB); keep images in assets/",
        ), receive  # fmt: skip
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in TEXT_BODIES:
        return None, receive
    messages, body, more = [], b"", True
    while more:  # at most MAX_BODY, by the check above
        message = await receive()
        messages.append(message)
        body += message.get("body", b"")
        more = message.get("more_body", False) and message["type"] == "http.request"
    # no field of ours holds a NUL, and PostgreSQL could not store one
    if b"\x00" in body or b"\\u0000" in body or (kind != "application/json" and b"%00" in body):
        return problems.problem(400, "the request body contains a NUL character"), receive

    async def replay() -> MutableMapping[str, Any]:
        return messages.pop(0) if messages else await receive()

    return None, replay
