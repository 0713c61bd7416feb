"""Brand kit: palette roles, fonts, logo, safe-area margins and forbidden terms."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bildwerk.config.qa import QAPolicy
from bildwerk.config.yamlfile import read_yaml, validate

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    """'#RRGGBB' → (r, g, b)."""
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


class Palette(BaseModel):
    """Colours by role; every role is '#RRGGBB'. ``extra`` lists further allowed colours."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    primary: str
    secondary: str
    accent: str
    text: str
    background: str
    extra: tuple[str, ...] = ()

    @field_validator("primary", "secondary", "accent", "text", "background")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not _HEX.match(v):
            raise ValueError(f"'{v}' is not a colour; write it as '#RRGGBB'")
        return v.lower()

    @field_validator("extra")
    @classmethod
    def _hex_list(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for item in v:
            if not _HEX.match(item):
                raise ValueError(f"'{item}' is not a colour; write it as '#RRGGBB'")
        return tuple(x.lower() for x in v)

    def rgb(self, role: str) -> tuple[int, int, int]:
        return hex_to_rgb(str(getattr(self, role)))


class Fonts(BaseModel):
    """Font files for headline and body text; paths are relative to the brand file.
    Missing glyphs (another script) fall back to Noto/DejaVu system fonts."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    headline: Path | None = None
    body: Path | None = None


class SafeArea(BaseModel):
    """Margins kept free of text and logo, as a fraction of the shorter side."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    margin: float = Field(0.06, ge=0.0, le=0.25)
    logo_clear_space: float = Field(0.5, ge=0.0, le=2.0, description="times the logo height")


class Overlay(BaseModel):
    """How the copy meets the scene. ``text_colour: palette`` keeps the brand text colour
    even where it reads badly (some brands mandate it; QA then reports the contrast);
    ``scrim`` lets compose darken behind light text to reach WCAG AA."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    text_colour: Literal["auto", "palette"] = "auto"
    scrim: bool = True


class Logo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    file: Path
    min_height: int = Field(24, ge=8, description="smallest rendered height in px")
    height: float = Field(0.06, gt=0.0, le=0.25, description="fraction of the shorter side")


class Rights(BaseModel):
    """What published files say about their use: licence links, credit, AI-training
    opt-out. ``licence_page`` is where to acquire a licence (``acquireLicensePage``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    licence_url: str | None = Field(None, pattern=r"^https?://\S+$")
    licence_page: str | None = Field(None, pattern=r"^https?://\S+$")
    credit_line: str | None = None
    do_not_train: bool = True
    watermark: Literal["required", "when_possible"] = Field(
        "required",
        description="required: refuse to publish renditions that their delivery profile marks "
        "but that are too small to carry the invisible mark",
    )


class BrandKit(BaseModel):
    """A brand as the production line needs it. Loaded from ``brand.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    palette: Palette
    fonts: Fonts = Fonts()
    logo: Logo | None = None
    safe_area: SafeArea = SafeArea()
    overlay: Overlay = Overlay()
    forbidden_terms: tuple[str, ...] = ()
    default_negative: str = ""
    policy_file: Path | None = Field(
        None, description="YAML with people names, competitor marks and blocked terms"
    )
    qa: QAPolicy = QAPolicy()
    creator: str | None = None
    copyright: str | None = None
    rights: Rights = Rights()
    root: Path = Field(Path("."), exclude=True)
    sha256: str = Field("", exclude=True)

    def resolve(self, path: Path) -> Path:
        """A path from the brand file, made absolute against the file's folder."""
        return path if path.is_absolute() else (self.root / path)


def load_brand(path: Path) -> BrandKit:
    """Load and validate a brand kit; raises ConfigError with file:line on problems."""
    doc = read_yaml(path)
    brand = validate(doc, BrandKit)
    return brand.model_copy(update={"root": path.parent.resolve(), "sha256": doc.sha256})
