"""Publish targets: where rendition bytes go (a CDN-origin folder, S3) and who is told
about them (a CMS webhook).

Storage targets share one small protocol, :class:`PublishTarget`: ``put`` returns the
public URL, so markup and sitemaps are built from what a target actually serves. A
webhook stores nothing, so it is a :class:`Notifier` with ``notify(event)`` instead of a
target with a meaningless ``delete``. Every failure is a :class:`PublishError` (a
``UserError``) naming the target and what to check; network calls have bounded timeouts
and bounded retries, so an unreachable target fails in seconds, not minutes.

Modules: :mod:`.base` (protocols, errors, keys), :mod:`.memory`, :mod:`.folder`,
:mod:`.s3` and :mod:`.webhook`.
"""

from __future__ import annotations

from bildwerk.publishers.base import (
    CONTENT_TYPES,
    IMMUTABLE,
    REVALIDATE,
    USER_AGENT,
    Notifier,
    PublishError,
    PublishTarget,
    TargetRejectedError,
    TargetUnavailableError,
    check_key,
    content_type_for,
    origin_key,
    slugify,
)
from bildwerk.publishers.folder import FolderTarget
from bildwerk.publishers.memory import MemoryTarget
from bildwerk.publishers.s3 import S3Target
from bildwerk.publishers.webhook import WebhookTarget, event_key, publish_event

__all__ = [
    "CONTENT_TYPES",
    "IMMUTABLE",
    "REVALIDATE",
    "USER_AGENT",
    "FolderTarget",
    "MemoryTarget",
    "Notifier",
    "PublishError",
    "PublishTarget",
    "S3Target",
    "TargetRejectedError",
    "TargetUnavailableError",
    "WebhookTarget",
    "check_key",
    "content_type_for",
    "event_key",
    "origin_key",
    "publish_event",
    "slugify",
]
