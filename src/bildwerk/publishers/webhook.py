"""A CMS webhook notifier: the signed publish event, sent through the shared retry layer."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from bildwerk.errors import UserError
from bildwerk.httpretry import DeadlineExceeded, RetryingClient, RetryPolicy, retryable_status
from bildwerk.netguard import NetPolicy, current_policy, is_loopback, limits_from
from bildwerk.publish.seo import PublishedImage, json_ld, picture_html, preload_link
from bildwerk.publishers.base import USER_AGENT, TargetRejectedError, TargetUnavailableError

# --------------------------------------------------------------------------- webhook


def publish_event(
    run_id: str,
    images: Sequence[PublishedImage],
    *,
    campaign: str | None = None,
    sitemap_url: str | None = None,
) -> dict[str, Any]:
    """The webhook body: per asset its renditions, ready ``<picture>`` markup, the hero's
    preload link and JSON-LD, so a CMS can place images without knowing bildwerk. No
    timestamps: the same publish gives the same body and so the same idempotency key."""
    return {
        "type": "bildwerk.published",
        "version": 1,
        "run_id": run_id,
        "campaign": campaign,
        "sitemap_url": sitemap_url,
        "assets": [
            {
                "asset_id": i.asset_id,
                "slug": i.slug,
                "title": i.title,
                "alt": i.alt,
                "width": i.width,
                "height": i.height,
                "sizes": i.sizes,
                "lcp": i.lcp,
                "page_url": i.page_url,
                "renditions": [r._asdict() for r in i.renditions],
                "html": picture_html(i),
                "preload_html": preload_link(i) if i.lcp else None,
                "json_ld": json_ld(i),
            }
            for i in images
        ],
    }


def _canonical(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_key(event: Mapping[str, Any]) -> str:
    """Default ``Idempotency-Key``: a hash of the body, stable across retries and re-runs."""
    return hashlib.sha256(_canonical(event)).hexdigest()[:32]


class WebhookTarget:
    """A CMS webhook: ``POST`` the event as JSON, signed with
    ``X-Bildwerk-Signature: sha256=<hex HMAC-SHA256 of the raw body>``.

    Retries through :mod:`bildwerk.httpretry` (408/425/429/5xx, timeouts and connection
    errors; full-jitter backoff ``uniform(0, min(max_backoff, backoff * 2**n))``, at least a
    capped ``Retry-After``), at most ``max_attempts`` tries, always with the same
    ``Idempotency-Key``. Other 4xx and redirects fail at once (:class:`TargetRejectedError`);
    exhausted retries raise :class:`TargetUnavailableError`. Plain ``http://`` only to
    loopback unless ``allow_insecure``: the signature guards integrity, not secrecy.
    """

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        *,
        timeout: float | None = None,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
        allow_insecure: bool = False,
        network: NetPolicy | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UserError(f"webhook URL {url!r} is not an http(s) URL")
        if parts.scheme == "http" and not allow_insecure and not is_loopback(parts.hostname):
            raise UserError(
                f"webhook URL {url!r} is plain http",
                hint="use https, or allow_insecure=True inside a trusted network",
            )
        key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if not key.strip():
            raise UserError("the webhook secret is empty", hint="set the secret the CMS checks")
        self.url = url
        self._secret = key
        self._network = network or current_policy()
        base = self._network.limits_for("webhook")
        self._limits = (
            base
            if timeout is None
            else limits_from(base, read=timeout, connect=min(timeout, base.connect))
        )
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._transport = transport

    @property
    def name(self) -> str:
        # without query or user info: those may carry tokens
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"webhook {parts.scheme}://{parts.hostname}{port}{parts.path}"

    def __repr__(self) -> str:
        return f"WebhookTarget({self.name!r}, secret=***)"

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()

    def notify(self, event: Mapping[str, Any], *, idempotency_key: str | None = None) -> None:
        body = _canonical(event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Bildwerk-Signature": self.sign(body),
            "X-Bildwerk-Event": str(event.get("type", "event")),
            "Idempotency-Key": idempotency_key or event_key(event),
        }
        policy = RetryPolicy(
            max_attempts=self.max_attempts, base=self.backoff, cap=self.max_backoff
        )
        with RetryingClient(
            self.name,
            policy=policy,
            limits=self._limits,
            kind="webhook",
            network=self._network,
            transport=self._transport,
            sleep=self._sleep,
            random=self._rng.random,
        ) as client:
            outcome = client.send("POST", self.url, content=body, headers=headers)
        resp = outcome.response
        if resp is not None:
            if resp.is_success:
                return
            if not retryable_status(resp.status_code):
                self._reject(resp)
            last = f"HTTP {resp.status_code}"
        elif isinstance(outcome.error, DeadlineExceeded):
            last = str(outcome.error)
        elif isinstance(outcome.error, httpx.TimeoutException):
            last = f"timed out after {self._limits.timeout().read:g} s"
        else:
            exc = outcome.error
            last = f"could not connect ({type(exc).__name__}: {exc})"
        raise TargetUnavailableError(
            self.name,
            f"gave up after {outcome.attempts} attempts: {last}",
            attempts=outcome.attempts,
            hint="check the CMS endpoint is up and reachable from here; re-running is safe "
            "(same Idempotency-Key)",
        )

    def _reject(self, resp: httpx.Response) -> None:
        status = resp.status_code
        text = resp.text[:200].strip()
        secret = self._secret.decode(errors="ignore")
        if len(secret) >= 4:  # a CMS may echo what it got; never print the secret
            text = text.replace(secret, "***")
        if 300 <= status < 400:
            message = f"redirected to {resp.headers.get('Location', '?')}"
            hint = "configure the final webhook URL; signed POSTs are not followed"
        elif status in (401, 403):
            message, hint = f"HTTP {status} {text}", "check the webhook secret in both places"
        elif status in (404, 405):
            message, hint = f"HTTP {status} {text}", "check the webhook URL"
        else:
            message, hint = f"HTTP {status} {text}", "the CMS rejected the event; see its reply"
        raise TargetRejectedError(self.name, message.strip(), status=status, hint=hint)
