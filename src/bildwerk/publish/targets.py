"""Publish targets: where rendition bytes go (a CDN-origin folder, S3) and who is told
about them (a CMS webhook).

Storage targets share one small protocol, :class:`PublishTarget`: ``put`` returns the
public URL, so markup and sitemaps are built from what a target actually serves. A
webhook stores nothing, so it is a :class:`Notifier` with ``notify(event)`` instead of a
target with a meaningless ``delete``. Every failure is a :class:`PublishError` (a
``UserError``) naming the target and what to check; network calls have bounded timeouts
and bounded retries, so an unreachable target fails in seconds, not minutes.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib
import ipaddress
import json
import random
import re
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

import httpx

from bildwerk.atomicio import atomic_write_bytes
from bildwerk.errors import MissingExtraError, UserError
from bildwerk.httpretry import RetryingClient, RetryPolicy, retryable_status
from bildwerk.publish.seo import PublishedImage, json_ld, picture_html, preload_link

IMMUTABLE = "public, max-age=31536000, immutable"
"""For content-hashed names: a name never changes bytes, so caches may keep it a year."""
REVALIDATE = "public, max-age=0, must-revalidate"
"""For stable names whose bytes change (sitemaps, pages)."""

CONTENT_TYPES = {
    "avif": "image/avif",
    "webp": "image/webp",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "xml": "application/xml",
    "html": "text/html; charset=utf-8",
    "json": "application/json",
}
USER_AGENT = "bildwerk-publish/1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class PublishError(UserError):
    """A publish target failed; says which target and what to check. A ``UserError``
    because the fix (URL, credentials, bucket, server) is on the user's side."""

    def __init__(
        self,
        target: str,
        message: str,
        *,
        status: int | None = None,
        attempts: int = 1,
        hint: str | None = None,
    ) -> None:
        self.target = target
        self.status = status
        self.attempts = attempts
        super().__init__(f"{target}: {message}", hint=hint)


class TargetRejectedError(PublishError):
    """The target refused the request (4xx, no bucket, no permission); never retried."""


class TargetUnavailableError(PublishError):
    """The target could not be reached or kept failing (timeouts, 5xx) after retries."""


@runtime_checkable
class PublishTarget(Protocol):
    """Somewhere bytes can be served from. ``put`` is idempotent and returns the URL."""

    @property
    def name(self) -> str: ...

    def put(self, key: str, data: bytes, *, content_type: str, cache_control: str) -> str: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


@runtime_checkable
class Notifier(Protocol):
    """Something told about a publish (a CMS webhook); stores nothing itself."""

    @property
    def name(self) -> str: ...

    def notify(self, event: Mapping[str, Any]) -> None: ...


# --------------------------------------------------------------------------- keys


def content_type_for(key: str) -> str:
    """Content type from the key's extension (``application/octet-stream`` if unknown)."""
    return CONTENT_TYPES.get(key.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def slugify(text: str, *, max_len: int = 60) -> str:
    """Lowercase ASCII words joined by hyphens: readable in URLs and image search."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_len].rstrip("-") or "image"


def origin_key(slug: str, channel: str, width: int, sha256: str, ext: str) -> str:
    """``slug-<channel>-<width>w-<hash8>.<ext>``: a semantic name for search engines and a
    content hash so the name never serves other bytes (safe to cache as immutable)."""
    if not _HEX64.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    if width < 1:
        raise ValueError("width must be positive")
    ext = ext.lower().lstrip(".")
    ext = "jpg" if ext == "jpeg" else ext
    if ext not in CONTENT_TYPES:
        raise ValueError(f"unknown extension {ext!r}")
    return f"{slugify(slug)}-{slugify(channel)}-{width}w-{sha256[:8]}.{ext}"


def check_key(key: str) -> str:
    """A relative ``/``-separated key with no ``..``, empty or hidden parts: the same key
    must be safe as a file path, an S3 key and a URL path."""
    parts = key.split("/")
    if (
        not key
        or len(key.encode()) > 1024
        or "\\" in key
        or any(not p or p in (".", "..") or p.startswith(".") for p in parts)
        or any(unicodedata.category(c) == "Cc" for c in key)
    ):
        raise UserError(f"invalid publish key {key!r}", hint="use relative names like img/a.avif")
    return key


class MemoryTarget:
    """In-memory target for tests and dry runs; keeps what ``put`` was given."""

    def __init__(self, base_url: str = "https://example.invalid") -> None:
        self.base_url = base_url.rstrip("/")
        self.objects: dict[str, tuple[bytes, str, str]] = {}

    @property
    def name(self) -> str:
        return "memory"

    def put(self, key: str, data: bytes, *, content_type: str, cache_control: str) -> str:
        self.objects[check_key(key)] = (bytes(data), content_type, cache_control)
        return f"{self.base_url}/{quote(key)}"

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def exists(self, key: str) -> bool:
        return key in self.objects


# --------------------------------------------------------------------------- folder


def _write_atomic(path: Path, data: bytes) -> None:
    """Readers see old bytes or new, never half a file (see :mod:`bildwerk.atomicio`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


class FolderTarget:
    """A CDN-origin folder (Netlify, Cloudflare Pages, any static host or rsync source).

    Headers live beside the files: ``_headers.json`` (the record, one entry per key) and
    ``_headers`` in the Netlify / Cloudflare Pages format, generated from it. A folder
    whose files all share the same headers gets one ``/dir/*`` rule instead of one rule
    per file (Cloudflare Pages reads at most 100 rules; keep immutable renditions in their
    own folder, e.g. ``img/``). One publisher per folder at a time.
    """

    HEADERS = "_headers"
    RECORD = "_headers.json"

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = Path(root)
        self.base_url = base_url.rstrip("/")
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"publish folder {self.root} is a file", hint="pick a directory")
        record = self.root / self.RECORD
        self._headers: dict[str, dict[str, str]] = (
            json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
        )

    @property
    def name(self) -> str:
        return f"folder {self.root}"

    def url(self, key: str) -> str:
        return f"{self.base_url}/{quote(key)}"

    def put(self, key: str, data: bytes, *, content_type: str, cache_control: str) -> str:
        check_key(key)
        if key in (self.HEADERS, self.RECORD):
            raise UserError(f"{key!r} is reserved for the headers of {self.name}")
        path = self.root / key
        try:
            same = path.is_file() and path.read_bytes() == data
            if (
                path.is_file()
                and not same
                and "immutable" in self._headers.get(key, {}).get("Cache-Control", "")
            ):
                raise TargetRejectedError(
                    self.name,
                    f"{key} is published as immutable and would change bytes",
                    hint="content-hashed names (origin_key) never need overwriting",
                )
            if not same:
                _write_atomic(path, data)
            entry = {"Content-Type": content_type, "Cache-Control": cache_control}
            if self._headers.get(key) != entry:
                self._headers[key] = entry
                self._save_headers()
        except OSError as exc:
            raise TargetUnavailableError(
                self.name, f"cannot write {key}: {exc}", hint="check the folder is writable"
            ) from exc
        return self.url(key)

    def delete(self, key: str) -> None:
        path = self.root / check_key(key)
        path.unlink(missing_ok=True)
        for parent in path.parents:  # drop emptied folders, never the root
            if parent == self.root or not parent.is_relative_to(self.root):
                break
            with contextlib.suppress(OSError):
                parent.rmdir()
        if self._headers.pop(key, None) is not None:
            self._save_headers()

    def exists(self, key: str) -> bool:
        return (self.root / check_key(key)).is_file()

    def _save_headers(self) -> None:
        record = json.dumps(self._headers, indent=1, sort_keys=True, ensure_ascii=False)
        _write_atomic(self.root / self.RECORD, record.encode())
        lines = ["# Generated by bildwerk from _headers.json; edits here are overwritten."]
        for path, headers in _header_rules(self._headers):
            lines.append(path)
            lines.extend(f"  {k}: {v}" for k, v in headers.items())
        _write_atomic(self.root / self.HEADERS, ("\n".join(lines) + "\n").encode())


def _header_rules(entries: Mapping[str, Mapping[str, str]]) -> list[tuple[str, Mapping[str, str]]]:
    """One rule per file, except a folder whose files all agree gets one ``/dir/*`` rule.
    Rules never overlap: hosts merge every matching rule's values into one header."""
    rules: list[tuple[str, Mapping[str, str]]] = []

    def walk(prefix: str, keys: list[str]) -> None:
        subdirs: dict[str, list[str]] = {}
        for k in keys:
            head, sep, _ = k[len(prefix) :].partition("/")
            if sep:
                subdirs.setdefault(head, []).append(k)
            else:
                rules.append(("/" + quote(k), entries[k]))
        for d, under in sorted(subdirs.items()):
            sub = f"{prefix}{d}/"
            if len(under) > 1 and len({tuple(sorted(entries[k].items())) for k in under}) == 1:
                rules.append(("/" + quote(sub) + "*", entries[under[0]]))
            else:
                walk(sub, under)

    walk("", sorted(entries))
    return rules


# --------------------------------------------------------------------------- S3


class S3Target:
    """An S3 (or S3-compatible: MinIO, R2) bucket through s3fs; each object carries its
    own ``Content-Type`` and ``Cache-Control``, which S3 serves back as HTTP headers."""

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        public_base_url: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        timeout: float = 10.0,
        retries: int = 2,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise UserError(f"not an S3 URL: {url!r}", hint="write it as s3://bucket/prefix")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self._options = dict(storage_options or {})
        self._timeout = timeout
        self._retries = max(1, retries)
        self._fs: Any = None

    @property
    def name(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def url(self, key: str) -> str:
        full = quote(f"{self.prefix}/{key}" if self.prefix else key)
        if self.public_base_url:
            return f"{self.public_base_url}/{quote(key)}"
        if self.endpoint_url:
            return f"{self.endpoint_url}/{self.bucket}/{full}"
        return f"https://{self.bucket}.s3.amazonaws.com/{full}"

    def _path(self, key: str) -> str:
        check_key(key)
        return f"{self.bucket}/{self.prefix}/{key}" if self.prefix else f"{self.bucket}/{key}"

    def _filesystem(self) -> Any:
        if self._fs is None:
            try:
                s3fs = importlib.import_module("s3fs")
            except ImportError:
                raise MissingExtraError("s3fs", "publish", "Publishing to S3") from None
            config = {
                "connect_timeout": min(self._timeout, 5.0),
                "read_timeout": self._timeout,
                "retries": {"max_attempts": self._retries, "mode": "standard"},
            }
            self._fs = s3fs.S3FileSystem(
                endpoint_url=self.endpoint_url,
                config_kwargs=config,
                skip_instance_cache=True,
                use_listings_cache=False,
                **self._options,
            )
            self._fs.retries = self._retries  # s3fs's own loop on top of botocore's
        return self._fs

    def _call(self, what: str, fn: Callable[[Any], Any]) -> Any:
        try:
            return fn(self._filesystem())
        except (MissingExtraError, UserError):
            raise
        except FileNotFoundError as exc:
            raise TargetRejectedError(
                self.name,
                f"{what}: bucket '{self.bucket}' not found ({exc})",
                hint="create the bucket or fix the s3:// URL",
            ) from exc
        except PermissionError as exc:
            raise TargetRejectedError(
                self.name,
                f"{what}: access denied ({exc})",
                hint="check the credentials and that they may write to this bucket",
            ) from exc
        except Exception as exc:  # botocore errors are untyped here; classify by name
            kind = type(exc).__name__
            if "Credentials" in kind:
                raise TargetRejectedError(
                    self.name,
                    f"{what}: no usable credentials ({kind})",
                    hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an AWS profile",
                ) from exc
            raise TargetUnavailableError(
                self.name,
                f"{what} failed: {kind}: {exc}",
                attempts=self._retries,
                hint="check endpoint_url, the network and the bucket's region",
            ) from exc

    def put(self, key: str, data: bytes, *, content_type: str, cache_control: str) -> str:
        path = self._path(key)
        self._call(
            f"upload {key}",
            lambda fs: fs.pipe_file(
                path, data, ContentType=content_type, CacheControl=cache_control
            ),
        )
        return self.url(key)

    def delete(self, key: str) -> None:
        path = self._path(key)
        self._call(f"delete {key}", lambda fs: fs.rm_file(path))

    def exists(self, key: str) -> bool:
        path = self._path(key)

        def is_object(fs: Any) -> bool:
            # not fs.exists/isfile: a "folder" prefix is not an object, and isfile
            # swallows connection errors as False
            try:
                return bool(fs.info(path).get("type") == "file")
            except FileNotFoundError:
                return False

        return bool(self._call(f"look up {key}", is_object))


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
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        transport: httpx.BaseTransport | None = None,
        allow_insecure: bool = False,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UserError(f"webhook URL {url!r} is not an http(s) URL")
        if parts.scheme == "http" and not allow_insecure and not _is_loopback(parts.hostname):
            raise UserError(
                f"webhook URL {url!r} is plain http",
                hint="use https, or allow_insecure=True inside a trusted network",
            )
        key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if not key.strip():
            raise UserError("the webhook secret is empty", hint="set the secret the CMS checks")
        self.url = url
        self._secret = key
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
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
            timeout=self._timeout,
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
        elif isinstance(outcome.error, httpx.TimeoutException):
            last = f"timed out after {self._timeout.read:g} s"
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
