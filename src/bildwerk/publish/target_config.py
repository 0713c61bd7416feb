"""Targets from ``bildwerk.yaml``: turn declared settings into live target objects.

Kept apart from the publisher so that every command touching targets (publish, sync)
opens them the same way, with the same errors for a missing secret or an unknown name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from bildwerk.config.publishing import (
    FolderTargetSettings,
    S3TargetSettings,
    TargetSettings,
    WebhookTargetSettings,
)
from bildwerk.errors import UserError
from bildwerk.publishers import PublishTarget, WebhookTarget
from bildwerk.registry import targets


def open_target(root: Path, conf: TargetSettings) -> PublishTarget:
    """A folder or S3 target; folders are relative to the workspace ``root``. The class
    comes from the ``targets`` registry, so a plugin may replace a built-in type."""
    target: PublishTarget
    if isinstance(conf, FolderTargetSettings):
        path = conf.path if conf.path.is_absolute() else root / conf.path
        target = targets.create(conf.type, path, conf.base_url)
        return target
    if isinstance(conf, S3TargetSettings):
        target = targets.create(
            conf.type,
            conf.url,
            endpoint_url=conf.endpoint_url,
            public_base_url=conf.public_base_url,
        )
        return target
    raise UserError("a webhook stores no files; publish to its origin")


def open_webhook(name: str, conf: WebhookTargetSettings) -> WebhookTarget:
    """The webhook with its secret from the environment (never from the file)."""
    secret = os.environ.get(conf.secret_env, "")
    if not secret.strip():
        raise UserError(
            f"bildwerk.yaml: targets.{name}: the environment variable "
            f"{conf.secret_env} (the webhook's HMAC secret) is not set.",
            hint=f"export {conf.secret_env}=... with the secret the CMS checks",
        )
    hook: WebhookTarget = targets.create(
        conf.type,
        conf.url,
        secret,
        timeout=conf.timeout,
        max_attempts=conf.max_attempts,
        allow_insecure=conf.allow_insecure,
    )
    return hook


def site_url(conf: TargetSettings) -> str:
    """Where the target's pages are served: ``site_url``, else its public file URL."""
    if isinstance(conf, WebhookTargetSettings):
        raise UserError("a webhook serves no pages; use its origin")
    if conf.site_url:
        return conf.site_url
    if isinstance(conf, FolderTargetSettings):
        return conf.base_url
    if conf.public_base_url:
        return conf.public_base_url
    bucket, _, prefix = conf.url.removeprefix("s3://").partition("/")
    path = f"/{quote(prefix.strip('/'))}" if prefix.strip("/") else ""
    if conf.endpoint_url:
        return f"{conf.endpoint_url.rstrip('/')}/{bucket}{path}"
    return f"https://{bucket}.s3.amazonaws.com{path}"


def resolve(
    root: Path, declared: Mapping[str, TargetSettings], names: Sequence[str]
) -> tuple[list[tuple[str, PublishTarget]], list[tuple[str, WebhookTarget]]]:
    """Storage targets and webhooks for ``--to`` names; a webhook brings its origin."""
    if not names:
        raise UserError("say where to publish", hint="pass --to TARGET (see bildwerk.yaml)")
    storage: dict[str, PublishTarget] = {}
    hooks: dict[str, WebhookTarget] = {}
    for name in names:
        conf = declared.get(name)
        if conf is None:
            known = ", ".join(sorted(declared)) or "none declared"
            raise UserError(
                f"bildwerk.yaml: no target named {name!r} (targets: {known}).",
                hint="declare it under `targets:` in bildwerk.yaml",
            )
        if isinstance(conf, WebhookTargetSettings):
            hooks[name] = open_webhook(name, conf)
            name, conf = conf.origin, declared[conf.origin]
        if name not in storage:
            storage[name] = open_target(root, conf)
    return list(storage.items()), list(hooks.items())
