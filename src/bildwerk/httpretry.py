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
* the same ``Idempotency-Key`` on every try, so a server that honours it acts once.

``sleep``, ``random``, ``clock`` and ``monotonic`` are injectable so tests never wait.
"""

from __future__ import annotations

import logging
import random as _random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpx

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
        timeout: httpx.Timeout,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self._sleep, self._random, self._clock, self._monotonic = sleep, random, clock, monotonic
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers=dict(headers or {}),
            follow_redirects=False,
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
                resp = self._http.request(method, url, json=json, content=content, headers=send)
            except httpx.TransportError as exc:
                outcome = Outcome(None, exc, attempt)
                why = type(exc).__name__
            else:
                outcome = Outcome(resp, None, attempt)
                if resp.is_success:
                    return outcome
                resp.read()
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
