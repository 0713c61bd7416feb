"""Workspace settings (``bildwerk.yaml``): where the brand, catalog, blobs and runs live."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bildwerk.atomicio import atomic_write_text
from bildwerk.config.delivery import DeliveryProfile, profiles
from bildwerk.config.governance import Governance
from bildwerk.config.publishing import SigningSettings, TargetSettings, WebhookTargetSettings
from bildwerk.config.web import WebSettings
from bildwerk.config.yamlfile import read_yaml, validate
from bildwerk.netguard import DEFAULT_LIMITS, MB, NetPolicy, limits_from
from bildwerk.netguard import Limits as NetLimits

FILENAME = "bildwerk.yaml"


class CatalogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str = Field(
        "sqlite:///.bildwerk/catalog.db",
        description="SQLAlchemy URL; relative SQLite paths are inside the workspace",
    )


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    max_megapixels: float = Field(64.0, gt=0, le=1000)


class CallLimits(BaseModel):
    """Limits of one kind of outbound call; unset fields keep the built-in default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    connect_timeout: float | None = Field(None, gt=0, le=600, description="seconds")
    read_timeout: float | None = Field(None, gt=0, le=3600, description="seconds one read may wait")
    deadline: float | None = Field(
        None, gt=0, le=7200, description="seconds one request may take in all"
    )
    max_response_mb: float | None = Field(None, gt=0, le=4096)

    def limits(self, kind: str) -> NetLimits:
        mb = self.max_response_mb
        return limits_from(
            DEFAULT_LIMITS[kind],
            connect=self.connect_timeout,
            read=self.read_timeout,
            deadline=self.deadline,
            max_bytes=int(mb * MB) if mb is not None else None,
        )


class NetworkSettings(BaseModel):
    """Outbound limits and the SSRF allow-list (see :mod:`bildwerk.netguard`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="hosts, addresses or networks (10.0.0.0/8) on loopback, private or "
        "link-local addresses that bildwerk may connect to; everything else inside is refused",
    )
    image_api: CallLimits = CallLimits()
    webhook: CallLimits = CallLimits()

    def policy(self) -> NetPolicy:
        return NetPolicy.build(
            self.allow_hosts,
            {
                "image_api": self.image_api.limits("image_api"),
                "webhook": self.webhook.limits("webhook"),
            },
        )


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "bildwerk"
    brand: Path = Path("brand/brand.yaml")
    catalog: CatalogSettings = CatalogSettings()
    blobs: str = Field(
        ".bildwerk/blobs",
        description="blob store: a folder (relative to the workspace) or an fsspec URL "
        "such as s3://bucket/prefix",
    )
    blob_cache: Path = Field(
        Path(".cache/blobs"),
        description="local read cache of a remote blob store (relative to the workspace)",
    )
    blob_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec storage options of a remote blob store (endpoint_url, "
        "client_kwargs…); keep secrets out of this file: s3fs reads AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY and AWS_PROFILE from the environment",
    )
    runs: Path = Path("runs")
    workers: int | None = Field(None, ge=1, le=256)
    executor: str | None = Field(
        None,
        description="where tasks run: 'inline', 'process' (default: inline for one worker, "
        "the warm process pool for more) or a name registered under bildwerk.executors",
    )
    limits: Limits = Limits()
    network: NetworkSettings = NetworkSettings()
    targets: dict[str, TargetSettings] = Field(default_factory=dict)
    signing: SigningSettings | None = None
    governance: Governance = Governance()
    web: WebSettings = WebSettings()
    delivery: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="delivery profiles by name: changes to the built-ins (internal, public, "
        "ads) or new ones based on public; see docs/delivery.md",
    )

    @field_validator("delivery")
    @classmethod
    def _delivery_profiles(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, fields in value.items():
            if not re.match(r"^[a-z0-9][a-z0-9_-]*$", name):
                raise ValueError(f"profile name {name!r}: use lowercase letters, digits, - and _")
            if not isinstance(fields, dict):
                raise ValueError(f"{name}: give a mapping of profile fields")
            try:
                profiles({name: fields})
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err.get("loc", ()))
                message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
                raise ValueError(f"{name}.{where}: {message}") from None
        return value

    def delivery_profiles(self) -> dict[str, DeliveryProfile]:
        """Built-in delivery profiles with this workspace's changes applied."""
        return profiles(self.delivery)

    @field_validator("blobs", mode="before")
    @classmethod
    def _blobs_location(cls, value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, str) and not value.strip():
            raise ValueError("give a folder or a URL such as s3://bucket/prefix")
        return value

    @model_validator(mode="after")
    def _check_targets(self) -> Settings:
        for name, target in self.targets.items():
            if not re.match(r"^[a-z0-9][a-z0-9_-]*$", name):
                raise ValueError(f"target name {name!r}: use lowercase letters, digits, - and _")
            if isinstance(target, WebhookTargetSettings):
                origin = self.targets.get(target.origin)
                if origin is None or isinstance(origin, WebhookTargetSettings):
                    raise ValueError(
                        f"targets.{name}.origin: {target.origin!r} is not a folder or s3 target"
                    )
        return self


def load_settings(root: Path) -> Settings:
    return validate(read_yaml(root / FILENAME), Settings)


def write_signing(path: Path, signing: SigningSettings) -> None:
    """Replace the top-level ``signing:`` block of ``bildwerk.yaml``, keeping every other
    line (and comment) as the user wrote it; written atomically."""
    lines = path.read_text(encoding="utf-8").splitlines()
    kept: list[str] = []
    skipping = False
    for line in lines:
        if line.startswith("signing:"):
            skipping = True
            continue
        if skipping and line and not line[0].isspace() and not line.startswith("#"):
            skipping = False
        if not skipping:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    block = ["", "signing:  # written by `bildwerk keys use`"]
    for key, value in signing.model_dump(mode="json", exclude_none=True).items():
        block.append(f"  {key}: {json.dumps(value)}")
    atomic_write_text(path, "\n".join(kept + block) + "\n")
