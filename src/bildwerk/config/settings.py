"""Workspace settings (``bildwerk.yaml``): where the brand, catalog, blobs and runs live."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

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
    blobs: Path = Path(".bildwerk/blobs")
    runs: Path = Path("runs")
    workers: int | None = Field(None, ge=1, le=256)
    limits: Limits = Limits()


def load_settings(root: Path) -> Settings:
    return validate(read_yaml(root / FILENAME), Settings)
