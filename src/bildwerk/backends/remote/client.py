"""The HTTP client every remote backend uses: base URL, authorisation, the shared retry
layer (:mod:`bildwerk.httpretry`), stable idempotency keys, errors that name the
service and what to check, and multipart bodies."""

from __future__ import annotations

import hashlib
import io
import random as _random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bildwerk.backends.remote.apikeys import Secret
from bildwerk.backends.remote.errors import RefusedError, RemoteError, RemoteUserError, public_url
from bildwerk.httpretry import DeadlineExceeded, RetryingClient, RetryPolicy, retryable_status
from bildwerk.netguard import NetPolicy, current_policy, limits_from

USER_AGENT = "bildwerk-remote/1"


# --------------------------------------------------------------------------- retries


def idempotency_key(service: str, scene_key: str, purpose: str = "generate") -> str:
    """Stable per scene, service and call purpose: the same across retries and re-runs."""
    digest = hashlib.sha256(f"{service}\n{purpose}\n{scene_key}".encode()).hexdigest()
    return f"bw-{digest[:40]}"


# --------------------------------------------------------------------------- client


@dataclass(frozen=True)
class ServiceProfile:
    """What differs between services: names, the key variable, and how errors read.

    ``parse_error(response) -> (message, code)``; ``refusal(status, code, message)`` says
    whether a failure is a content refusal; ``permanent(status, code)`` marks a 429/5xx
    that must not be retried (OpenAI's ``insufficient_quota``)."""

    name: str
    title: str
    key_var: str
    parse_error: Callable[[httpx.Response], tuple[str, str | None]]
    refusal: Callable[[int, str | None, str], bool]
    permanent: Callable[[int, str | None], bool]
    docs_hint: str = ""


@dataclass(frozen=True)
class Reply:
    response: httpx.Response
    attempts: int
    idempotency_key: str | None

    @property
    def request_id(self) -> str | None:
        value = self.response.headers.get("x-request-id")
        return str(value) if value is not None else None


class RemoteClient:
    """The shared :class:`~bildwerk.httpretry.RetryingClient` with the timeout,
    authorisation, error and redaction rules above. ``sleep``, ``random`` and ``clock``
    are injectable so tests never wait."""

    def __init__(
        self,
        profile: ServiceProfile,
        base_url: str,
        api_key: Secret,
        *,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        deadline: float | None = None,
        max_bytes: int | None = None,
        network: NetPolicy | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.profile = profile
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self.retry = retry or RetryPolicy()
        network = network or current_policy()
        limits = limits_from(
            network.limits_for("image_api"),
            connect=connect_timeout,
            read=read_timeout,
            deadline=deadline,
            max_bytes=max_bytes,
        )
        self.limits = limits
        self._http = RetryingClient(
            profile.name,
            policy=self.retry,
            limits=limits,
            network=network,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
            sleep=sleep,
            random=random,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"RemoteClient({self.profile.name!r}, {self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency: str | None = None,
        auth: bool = True,
    ) -> Reply:
        """Send with retries; ``url`` is a path under the base URL or an absolute URL
        (absolute URLs get no ``Authorization``: they are result downloads on other hosts
        unless ``auth`` says otherwise)."""
        absolute = url.startswith(("http://", "https://"))
        full = url if absolute else self.base_url + url
        send = dict(headers or {})
        if auth and not absolute:
            send["Authorization"] = f"Bearer {self._key.reveal()}"
        title = self.profile.title
        outcome = self._http.send(
            method,
            full,
            json=json,
            content=content,
            headers=send,
            idempotency_key=idempotency,
            may_retry=self._may_retry,
        )
        attempt, resp = outcome.attempts, outcome.response
        if resp is None:
            error = outcome.error
            kind = str(error) if isinstance(error, DeadlineExceeded) else type(error).__name__
            where = public_url(full)
            raise RemoteError(
                self.profile.name,
                f"{title}: no answer from {where} after {attempt} attempt(s) ({kind})",
                attempts=attempt,
                url=where,
                hint="check the network, a proxy or the service's base URL; a slow "
                "service may need a longer network.image_api.read_timeout or deadline "
                "in bildwerk.yaml; re-running is safe "
                "(finished scenes are kept)",
            ) from None
        if resp.is_success:
            return Reply(resp, attempt, idempotency)
        message, code = self._error(resp)
        status = resp.status_code
        if self.profile.refusal(status, code, message):
            raise RefusedError(
                self.profile.name,
                code or "refused",
                f"{title} refused the request (HTTP {status}): {message}",
                status=status,
                code=code,
                attempts=attempt,
            )
        if retryable_status(status) and not self.profile.permanent(status, code):
            raise RemoteError(
                self.profile.name,
                f"{title} at {public_url(full)} failed with HTTP {status} after "
                f"{attempt} attempt(s): {message}",
                status=status,
                code=code,
                attempts=attempt,
                url=public_url(full),
                hint="the service is busy or failing; run again later (finished scenes are kept)",
            )
        raise self._rejected(status, code, message, attempt)

    def _error(self, resp: httpx.Response) -> tuple[str, str | None]:
        message, code = self.profile.parse_error(resp)
        return self._key.redact(message)[:500], code

    def _may_retry(self, resp: httpx.Response) -> bool:
        """Refusals and permanent failures (an exhausted quota) are final."""
        message, code = self._error(resp)
        status = resp.status_code
        return not (
            self.profile.refusal(status, code, message) or self.profile.permanent(status, code)
        )

    def _rejected(self, status: int, code: str | None, message: str, attempt: int) -> RemoteError:
        title, var = self.profile.title, self.profile.key_var
        hints = {
            400: "check the generation settings in the brief (model, size, quality, "
            f"prompt length) against the {title} documentation",
            401: f"check {var} (environment or secrets file): the key is missing, "
            "mistyped or revoked",
            403: f"check that the account behind {var} may use this model or endpoint",
            429: f"check the billing and quota of the account behind {var}",
        }
        text = f"{title} rejected the request (HTTP {status}" + (f", {code}" if code else "")
        text += f"): {message}"
        if status in hints:
            return RemoteUserError(
                self.profile.name,
                text,
                status=status,
                code=code,
                attempts=attempt,
                hint=hints[status],
            )
        return RemoteError(self.profile.name, text, status=status, code=code, attempts=attempt)


# --------------------------------------------------------------------------- multipart


@dataclass(frozen=True)
class FilePart:
    filename: str
    content: bytes
    content_type: str = "image/png"


def encode_multipart(fields: Sequence[tuple[str, str | FilePart]]) -> tuple[bytes, str]:
    """A multipart/form-data body (RFC 7578) and its Content-Type. Built here rather
    than by httpx because Stability requires multipart even when no file is sent."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields:
        quoted = name.replace('"', "%22")
        out.write(f"--{boundary}\r\n".encode())
        if isinstance(value, FilePart):
            fname = value.filename.replace('"', "%22")
            out.write(
                f'Content-Disposition: form-data; name="{quoted}"; filename="{fname}"\r\n'
                f"Content-Type: {value.content_type}\r\n\r\n".encode()
            )
            out.write(value.content)
        else:
            out.write(f'Content-Disposition: form-data; name="{quoted}"\r\n\r\n'.encode())
            out.write(value.encode("utf-8"))
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"
