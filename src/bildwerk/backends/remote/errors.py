"""Errors of remote image APIs: failed, rejected (the user's to fix) and refused calls."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from bildwerk.errors import BildwerkError, ServiceError, UserError

# --------------------------------------------------------------------------- errors


class RemoteError(ServiceError):
    """A remote image API call failed (after retries where retrying made sense).

    A :class:`~bildwerk.errors.ServiceError`: the CLI prints it without a traceback and
    exits 3; ``url`` is the service's base URL when the client knows it."""

    def __init__(
        self,
        service: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        attempts: int = 1,
        hint: str | None = None,
        url: str | None = None,
    ) -> None:
        self.service = service
        self.status = status
        self.code = code
        self.attempts = attempts
        ServiceError.__init__(self, message, url=url, hint=hint)


class RemoteUserError(RemoteError, UserError):
    """The service rejected the request for a reason the user can fix (400/401/403,
    exhausted quota); the CLI prints it without a traceback and exits 2."""

    exit_code: ClassVar[int] = UserError.exit_code


class RefusedError(RemoteError):
    """The service refused to produce this image (content filter). The job is recorded
    as refused with :attr:`reason`; retrying the same prompt would not help."""

    exit_code: ClassVar[int] = BildwerkError.exit_code  # not an outage: asking again won't help

    def __init__(self, service: str, reason: str, message: str, **kw: Any) -> None:
        self.reason = reason
        super().__init__(service, message, **kw)


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment: what an error may print."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"
