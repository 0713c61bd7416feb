"""Publish targets, now in :mod:`bildwerk.publishers`; re-exported here for existing imports."""

from __future__ import annotations

from bildwerk.publishers import (
    CONTENT_TYPES,
    IMMUTABLE,
    REVALIDATE,
    USER_AGENT,
    FolderTarget,
    MemoryTarget,
    Notifier,
    PublishError,
    PublishTarget,
    S3Target,
    TargetRejectedError,
    TargetUnavailableError,
    WebhookTarget,
    check_key,
    content_type_for,
    event_key,
    origin_key,
    publish_event,
    slugify,
)

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
