"""Errors of remote image APIs: failed, rejected (the user's to fix) and refused calls."""

from __future__ import annotations

from typing import Any

from bildwerk.errors import BildwerkError, UserError

# --------------------------------------------------------------------------- errors


class RemoteError(BildwerkError):
    """A remote image API call failed (after retries where retrying made sense)."""

    def __init__(
        self,
        service: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        attempts: int = 1,
        hint: str | None = None,
    ) -> None:
        self.service = service
        self.status = status
        self.code = code
        self.attempts = attempts
        self.message = message
        self.hint = hint
        # not super().__init__: in RemoteUserError the MRO would route through UserError
        BildwerkError.__init__(self, self.__str__())

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}" if self.hint else self.message


class RemoteUserError(RemoteError, UserError):
    """The service rejected the request for a reason the user can fix (400/401/403,
    exhausted quota); the CLI prints it without a traceback."""


class RefusedError(RemoteError):
    """The service refused to produce this image (content filter). The job is recorded
    as refused with :attr:`reason`; retrying the same prompt would not help."""

    def __init__(self, service: str, reason: str, message: str, **kw: Any) -> None:
        self.reason = reason
        super().__init__(service, message, **kw)
