"""One HTTP retry layer for every outbound call (remote image APIs, CMS webhooks).

Rules, the same for every caller:

* retry transport errors (connect errors, timeouts, broken connections) and the statuses
  that say "try again": 408, 425, 429 and 5xx; a caller may veto a retry for a reply it
  knows is final (a content refusal, an exhausted quota);
* wait with exponential backoff and *full jitter*, ``uniform(0, min(cap, base * 2**n))``
  after the n-th failure, but at least a ``Retry-After`` (delta-seconds or HTTP-date,
  or ``retry-after-ms``) sent with 429 or 503, itself capped at ``cap``;
* at most ``max_attempts`` tries and, when ``max_elapsed`` is set, no retry that would
  start after that many seconds;
* the same ``Idempotency-Key`` on every try, so a server that honours it acts once;
* every attempt under :class:`~bildwerk.netguard.Limits`: the reply is streamed and
  aborted past ``max_bytes`` (:class:`ResponseTooLargeError`, final) or the overall
  ``deadline`` (:class:`DeadlineExceeded`, a timeout, retried like one);
* connections only through :class:`GuardedTransport` (the SSRF guard)
  unless a test hands in its own transport.

``sleep``, ``random``, ``clock`` and ``monotonic`` are injectable so tests never wait.
"""

from __future__ import annotations

import logging
import random as _random
import time
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpcore
import httpx

from bildwerk.errors import ServiceError
from bildwerk.netguard import Limits, NetPolicy, current_policy, describe_size, resolve

_log = logging.getLogger("bildwerk.http")

RETRY_STATUSES = frozenset({408, 425, 429})
"""Client-error statuses worth another try (besides every 5xx)."""
RETRY_AFTER_STATUSES = frozenset({429, 503})
"""Statuses whose ``Retry-After`` is honoured; elsewhere it is ignored for backoff."""


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts, backoff and a time budget. ``backoff(n, u)`` is the full-jitter delay
    after the n-th failed attempt for a uniform draw ``u`` in [0, 1)."""

    max_attempts: int = 4
    base: float = 0.5
    cap: float = 30.0
    max_elapsed: float | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base < 0 or self.cap < 0:
            raise ValueError("max_attempts must be >= 1 and base/cap >= 0")
        if self.max_elapsed is not None and self.max_elapsed < 0:
            raise ValueError("max_elapsed must be >= 0")

    def backoff(self, failures: int, u: float) -> float:
        return u * min(self.cap, self.base * 2.0 ** (failures - 1))

    def delay(self, failures: int, u: float, retry_after: float | None) -> float:
        """The wait before the next try: the jittered backoff, at least a capped
        ``Retry-After``."""
        jitter = self.backoff(failures, u)
        if retry_after:
            return max(jitter, min(self.cap, retry_after))
        return jitter


def retryable_status(status: int) -> bool:
    """408, 425, 429 and 5xx: the server may answer differently next time."""
    return status in RETRY_STATUSES or status >= 500


def parse_retry_after(headers: httpx.Headers, now: float) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or HTTP-date) or OpenAI's
    ``retry-after-ms``; None when absent or unreadable."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend, connecting only to addresses :func:`resolve` checked:
    the name is resolved once per connection and the socket opened to that address."""

    def __init__(self, policy: NetPolicy, what: str) -> None:
        self.policy, self.what = policy, what

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve(host, port, self.policy, self.what)
        last: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last


class GuardedTransport(httpx.HTTPTransport):
    """An ``httpx.HTTPTransport`` whose connections go through :class:`GuardedBackend`.
    No proxy: a proxy would make the connection, and the guard could not pin it."""

    def __init__(self, policy: NetPolicy, what: str, *, verify: bool = True) -> None:
        super().__init__(verify=verify, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=httpx.Limits().max_connections,
            max_keepalive_connections=httpx.Limits().max_keepalive_connections,
            keepalive_expiry=httpx.Limits().keepalive_expiry,
            network_backend=GuardedBackend(policy, what),
        )


class DeadlineExceeded(httpx.TimeoutException):
    """An attempt ran past its overall deadline (e.g. a server trickling bytes)."""


class ResponseTooLargeError(ServiceError):
    """A reply was larger than the configured cap; reading stopped at the cap."""


def _public(url: str) -> str:
    u = httpx.URL(url)
    return str(u.copy_with(query=None, fragment=None, username=None, password=None))


@dataclass(frozen=True)
class Outcome:
    """How a call ended: a ``response`` (success, or a failure that is final or was
    retried ``attempts`` times) or, when no reply ever came, the last ``error``."""

    response: httpx.Response | None
    error: httpx.TransportError | None
    attempts: int

    @property
    def ok(self) -> bool:
        return self.response is not None and self.response.is_success


class RetryingClient:
    """An ``httpx.Client`` that sends each request under :class:`RetryPolicy`.

    ``name`` labels log lines; redirects are never followed (a signed or authorised
    request must not be replayed to another host)."""

    def __init__(
        self,
        name: str,
        *,
        policy: RetryPolicy | None = None,
        timeout: httpx.Timeout | None = None,
        limits: Limits | None = None,
        kind: str = "image_api",
        network: NetPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.kind = name, kind
        self.policy = policy or RetryPolicy()
        self.network = network or current_policy()
        self.limits = limits or self.network.limits_for(kind)
        self.timeout = timeout or self.limits.timeout()
        self._sleep, self._random, self._clock, self._monotonic = sleep, random, clock, monotonic
        send_headers = {"Accept-Encoding": "identity"}  # the cap counts what is stored
        send_headers.update(headers or {})
        self._http = httpx.Client(
            timeout=self.timeout,
            transport=transport or GuardedTransport(self.network, name),
            headers=send_headers,
            follow_redirects=False,
            trust_env=False,
        )

    def __enter__(self) -> RetryingClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        may_retry: Callable[[httpx.Response], bool] | None = None,
    ) -> Outcome:
        """Send until a reply is final, attempts run out or the time budget is spent.

        ``may_retry(response)`` can veto retrying a reply :func:`retryable_status` would
        retry. The caller turns a failed :class:`Outcome` into its own error."""
        send = dict(headers or {})
        if idempotency_key:
            send["Idempotency-Key"] = idempotency_key
        policy = self.policy
        started = self._monotonic()
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                resp = self._fetch(method, url, json=json, content=content, headers=send)
            except httpx.TransportError as exc:
                outcome = Outcome(None, exc, attempt)
                why = type(exc).__name__
            else:
                outcome = Outcome(resp, None, attempt)
                if resp.is_success:
                    return outcome
                status = resp.status_code
                if not retryable_status(status) or (may_retry and not may_retry(resp)):
                    return outcome
                if status in RETRY_AFTER_STATUSES:
                    retry_after = parse_retry_after(resp.headers, self._clock())
                why = f"HTTP {status}"
            if attempt >= policy.max_attempts:
                return outcome
            delay = policy.delay(attempt, self._random(), retry_after)
            if (
                policy.max_elapsed is not None
                and self._monotonic() - started + delay > policy.max_elapsed
            ):
                return outcome
            _log.warning(
                "%s: %s on attempt %d/%d; retrying in %.2fs",
                self.name,
                why,
                attempt,
                policy.max_attempts,
                delay,
            )
            self._sleep(delay)

    def _fetch(
        self,
        method: str,
        url: str,
        *,
        json: Any,
        content: bytes | None,
        headers: Mapping[str, str],
    ) -> httpx.Response:
        """One attempt, its reply streamed into memory under the deadline and size cap
        (the deadline runs on the real clock: the injected one scripts the retry budget)."""
        limits = self.limits
        started = time.monotonic()
        request = self._http.build_request(
            method, url, json=json, content=content, headers=dict(headers)
        )
        resp = self._http.send(request, stream=True)
        try:
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limits.max_bytes:
                raise self._too_large(url, f"it announces {int(declared)} bytes")
            chunks: list[bytes] = []
            total = 0
            for chunk in resp.iter_bytes():
                total += len(chunk)
                if total > limits.max_bytes:
                    raise self._too_large(url, f"more than {total} bytes arrived")
                chunks.append(chunk)
                if time.monotonic() - started > limits.deadline:
                    raise DeadlineExceeded(
                        f"{self.name}: {_public(url)} did not finish within the "
                        f"{limits.deadline:g} s deadline ({total} bytes read)",
                        request=request,
                    )
        finally:
            resp.close()
        if time.monotonic() - started > limits.deadline:
            raise DeadlineExceeded(
                f"{self.name}: {_public(url)} did not finish within the "
                f"{limits.deadline:g} s deadline",
                request=request,
            )
        kept = httpx.Headers(
            [
                (k, v)
                for k, v in resp.headers.multi_items()
                if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
            ]
        )
        return httpx.Response(
            resp.status_code,
            headers=kept,
            content=b"".join(chunks),
            request=request,
        )

    def _too_large(self, url: str, what: str) -> ResponseTooLargeError:
        cap = describe_size(self.limits.max_bytes)
        return ResponseTooLargeError(
            f"{self.name}: the reply from {_public(url)} is over the {cap} limit ({what}); "
            "reading stopped there",
            url=_public(url),
            hint="check the URL; if such replies are expected, raise "
            f"network.{self.kind}.max_response_mb in bildwerk.yaml",
        )
