"""What every publish target shares: the :class:`PublishTarget` and :class:`Notifier`
protocols, errors that name the target, cache-control values and origin keys."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from bildwerk.errors import ServiceError, UserError

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
    "txt": "text/plain; charset=utf-8",  # robots.txt
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


class TargetUnavailableError(PublishError, ServiceError):
    """The target could not be reached or kept failing (timeouts, 5xx) after retries.
    Also a :class:`~bildwerk.errors.ServiceError`: the CLI exits 3, no traceback."""

    exit_code: ClassVar[int] = ServiceError.exit_code


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
