"""Workspace settings (``bildwerk.yaml``): where the brand, catalog, blobs and runs live."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bildwerk.atomicio import atomic_write_text
from bildwerk.config.publishing import SigningSettings, TargetSettings, WebhookTargetSettings
from bildwerk.config.yamlfile import read_yaml, validate

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
    targets: dict[str, TargetSettings] = Field(default_factory=dict)
    signing: SigningSettings | None = None

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
