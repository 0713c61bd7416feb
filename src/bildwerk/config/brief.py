"""Campaign brief: audiences, locales, channels, a prompt template with slots, seeds and a
variant budget. Loaded from YAML; every mistake names its file and line."""

from __future__ import annotations

import hashlib
import json
import re
import string
import unicodedata
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from bildwerk.config.channels import PRESETS, Channel
from bildwerk.config.yamlfile import YamlDoc, first_error, read_yaml, validate
from bildwerk.errors import ConfigError

_RTL_LANGUAGES = {"ar", "he", "fa", "ur", "ps", "sd", "ug", "yi", "dv", "ckb"}
_SLUG = r"^[a-z0-9][a-z0-9_-]*$"

# A well-formed BCP 47 language tag (RFC 5646 §2.1, without the grandfathered irregular
# tags): the locale key becomes part of page paths and publish keys, so it must be
# checked when the brief is read, not when the first page is written.
_BCP47 = re.compile(
    r"""^(?:
      (?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4,8})   # language (+ extlang)
      (?:-[a-z]{4})?                               # script
      (?:-(?:[a-z]{2}|[0-9]{3}))?                  # region
      (?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*     # variants
      (?:-[0-9a-wyz](?:-[a-z0-9]{2,8})+)*          # extensions
      (?:-x(?:-[a-z0-9]{1,8})+)?                   # private use
    | x(?:-[a-z0-9]{1,8})+
    )$""",
    re.VERBOSE | re.IGNORECASE,
)
# Directional formatting characters that reorder what a reader sees (a headline
# "\u202e…gnp.exe" reads as "exe.png"); the renderer shapes RTL text without them.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ALLOWED_CONTROLS = frozenset("\n\t")


def check_locale_tag(tag: str) -> str:
    """Refuse a locale key that is not a well-formed BCP 47 tag (``en``, ``de-DE``)."""
    if not _BCP47.match(tag):
        raise ValueError(
            f"locale {tag!r} is not a BCP 47 language tag (e.g. 'en', 'de-DE', 'zh-Hant-TW')"
        )
    return tag


def check_copy_text(text: str) -> str:
    """Refuse control characters and bidi overrides/embeddings/isolates in copy: they
    would be written raw into images, HTML and XMP, and can disguise what a text says."""
    for i, ch in enumerate(text):
        if ch in _BIDI_CONTROLS:
            raise ValueError(
                f"contains the bidi control U+{ord(ch):04X} "
                f"({unicodedata.name(ch, 'unnamed')}) at character {i}; remove it "
                "(right-to-left locales are shaped without it)"
            )
        if unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS:
            raise ValueError(
                f"contains the control character U+{ord(ch):04X} at character {i}; remove it"
            )
    return text


LocaleTag = Annotated[str, AfterValidator(check_locale_tag)]
CopyText = Annotated[str, AfterValidator(check_copy_text)]


class Copy(BaseModel):
    """Text that goes on a creative in one locale."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    headline: CopyText = Field(min_length=1)
    subline: CopyText = ""
    cta: CopyText = ""


class CopyOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    headline: CopyText | None = None
    subline: CopyText | None = None
    cta: CopyText | None = None


class Locale(Copy):
    """Copy for one locale plus its writing direction (detected from the language)."""

    direction: Literal["auto", "ltr", "rtl"] = "auto"


class Segment(BaseModel):
    """An audience segment; may narrow slot values and override copy per locale."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=_SLUG)
    description: CopyText = ""
    slots: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    copy_: dict[LocaleTag, CopyOverride] = Field(default_factory=dict, alias="copy")


class ChannelRef(BaseModel):
    """A preset, optionally with overrides, or a custom size when ``width``/``height`` given."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    preset: str | None = None
    name: str | None = None
    width: int | None = None
    height: int | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)


SlotValues = Annotated[
    tuple[str, ...],
    Field(min_length=1, json_schema_extra={"hint": "give at least one value"}),
]


class PromptSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    template: str = Field(min_length=1)
    negative: str = ""
    slots: dict[str, SlotValues] = Field(default_factory=dict)

    @field_validator("slots")
    @classmethod
    def _distinct(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for name, values in v.items():
            if len(set(values)) != len(values):
                raise ValueError(f"slot '{name}' lists a value twice")
        return v

    def slot_names(self) -> list[str]:
        """Slots the template uses, in order of first appearance."""
        names: list[str] = []
        for _, field_name, _, _ in string.Formatter().parse(self.template):
            if field_name is not None and field_name not in names:
                names.append(field_name)
        return names

    def render(self, values: dict[str, str]) -> str:
        return self.template.format(**values)

    @property
    def sha256(self) -> str:
        """Template version: content hash of template, negative prompt and slot values."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


class Seeds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    base: int = 0
    count: int = Field(1, ge=1, le=64)

    def values(self) -> list[int]:
        return [self.base + i for i in range(self.count)]


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    max_variants: int | None = Field(None, ge=1)
    strategy: Literal["full", "fractional"] = "fractional"
    seed: int = 0


class Style(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    profile: str = "studio"
    params: dict[str, Any] = Field(default_factory=dict)


class LoraRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, description="a registered model of kind lora")
    weight: float = Field(1.0, ge=-4.0, le=4.0)


class EmbeddingRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, description="a registered textual inversion")
    token: str = Field(min_length=1)


class ControlNetRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, description="a registered ControlNet")
    kind: Literal["canny", "depth", "pose", "segmentation"] = "canny"
    image: Path | None = Field(
        None,
        description="control map (depth/pose/segmentation) "
        "or source for canny; default: the product cutout",
    )
    scale: float = Field(0.8, ge=0.0, le=2.0)


class ReferenceImage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    image: Path
    strength: float = Field(0.6, gt=0.0, le=1.0)


class GenerationSettings(BaseModel):
    """Settings for model-based backends (diffusers, remote APIs); the studio backend
    ignores them. ``per_channel`` overrides any field for one channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    backend: str | None = None
    model: str | None = None
    scheduler: str | None = None
    steps: int | None = Field(None, ge=1, le=200)
    guidance: float | None = Field(None, ge=0.0, le=30.0)
    size: tuple[int, int] | None = None
    mode: Literal["auto", "txt2img", "img2img", "inpaint", "outpaint", "product"] = "auto"
    loras: tuple[LoraRef, ...] = ()
    embeddings: tuple[EmbeddingRef, ...] = ()
    controlnet: ControlNetRef | None = None
    reference: ReferenceImage | None = None
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    device: str = "auto"
    batch_size: int | None = Field(None, ge=1, le=64)
    compile: bool = False
    upscaler: str | None = None
    per_channel: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def for_channel(self, channel: str) -> GenerationSettings:
        over = self.per_channel.get(channel)
        if not over:
            return self
        data = self.model_dump(exclude={"per_channel"})
        data.update(over)
        return GenerationSettings.model_validate(data)


class Rights(BaseModel):
    """The campaign's usage rights: after ``expires`` its creatives come off every target
    (``bildwerk publish --sync``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    expires: date | None = None
    licence_url: str | None = Field(None, pattern=r"^https?://\S+$")


class Brief(BaseModel):
    """A campaign brief. ``root`` is the folder relative paths resolve against."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    campaign: str = Field(pattern=_SLUG)
    name: CopyText = ""  # shown on pages and in reports: checked like copy
    objective: CopyText = ""
    brand: Path | None = None
    backend: str = "studio"
    model: str | None = None
    style: Style = Style()
    generation: GenerationSettings = GenerationSettings()
    people: Literal["allowed", "forbidden"] = "allowed"
    model_release: bool = False
    segments: tuple[Segment, ...] = (Segment(id="all"),)
    locales: dict[LocaleTag, Locale]
    channels: tuple[str | ChannelRef, ...]
    prompt: PromptSpec
    products: dict[str, Path] = Field(default_factory=dict)
    product_slot: str | None = None
    seeds: Seeds | tuple[int, ...] = Seeds()
    budget: Budget = Budget()
    rights: Rights = Rights()
    root: Path = Field(Path("."), exclude=True)
    sha256: str = Field("", exclude=True)

    @field_validator("locales")
    @classmethod
    def _locales(cls, v: dict[str, Locale]) -> dict[str, Locale]:
        if not v:
            raise ValueError("give at least one locale")
        return v

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: tuple[str | ChannelRef, ...]) -> tuple[str | ChannelRef, ...]:
        if not v:
            raise ValueError("give at least one channel")
        return v

    # --- derived -----------------------------------------------------------------------

    def seed_values(self) -> list[int]:
        return list(self.seeds) if isinstance(self.seeds, tuple) else self.seeds.values()

    def direction(self, locale: str) -> Literal["ltr", "rtl"]:
        loc = self.locales[locale]
        if loc.direction != "auto":
            return loc.direction
        return "rtl" if locale.split("-")[0].lower() in _RTL_LANGUAGES else "ltr"

    def copy_for(self, segment: Segment, locale: str) -> Copy:
        base = self.locales[locale]
        over = segment.copy_.get(locale)
        data = {"headline": base.headline, "subline": base.subline, "cta": base.cta}
        if over is not None:
            data.update({k: v for k, v in over.model_dump().items() if v is not None})
        return Copy(**data)

    def product_for(self, slots: dict[str, str]) -> Path | None:
        if self.product_slot is not None:
            return self.resolve(self.products[slots[self.product_slot]])
        if self.products:
            return self.resolve(next(iter(self.products.values())))
        return None

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.root / path)


def resolve_channels(brief: Brief, doc: YamlDoc | None = None) -> list[Channel]:
    """Turn preset names and custom entries into concrete channels."""
    out: list[Channel] = []
    path = doc.path if doc else brief.root / "brief.yaml"
    for i, ref in enumerate(brief.channels):
        line = doc.line_of(("channels", i)) if doc else None
        known = ", ".join(sorted(PRESETS))
        if isinstance(ref, str):
            if ref not in PRESETS:
                raise ConfigError(
                    path,
                    f"unknown channel preset '{ref}'",
                    line=line,
                    field=f"channels.{i}",
                    hint=f"use one of: {known}, or give name/width/height for a custom size",
                )
            out.append(PRESETS[ref])
            continue
        try:
            if ref.preset is not None:
                if ref.preset not in PRESETS:
                    raise ConfigError(
                        path,
                        f"unknown channel preset '{ref.preset}'",
                        line=line,
                        field=f"channels.{i}.preset",
                        hint=f"use one of: {known}",
                    )
                base = PRESETS[ref.preset].model_dump()
                base.update(
                    {
                        k: v
                        for k, v in ref.model_dump().items()
                        if k in ("name", "width", "height") and v is not None
                    }
                )
                base.update(ref.overrides)
                out.append(Channel.model_validate(base))
            else:
                if ref.name is None or ref.width is None or ref.height is None:
                    raise ConfigError(
                        path,
                        "a custom channel needs name, width and height (or a preset)",
                        line=line,
                        field=f"channels.{i}",
                    )
                out.append(
                    Channel.model_validate(
                        {
                            "name": ref.name,
                            "width": ref.width,
                            "height": ref.height,
                            **ref.overrides,
                        }
                    )
                )
        except ConfigError:
            raise
        except ValidationError as exc:
            loc, message, hint = first_error(exc)
            key = str(loc[0]) if loc else ""
            sub: tuple[str | int, ...] = (
                ("overrides", *loc) if isinstance(ref, ChannelRef) and key in ref.overrides else loc
            )
            where = ("channels", i, *sub)
            raise ConfigError(
                path,
                message,
                line=(doc.line_of(where) if doc else None) or line,
                field=".".join(map(str, where)),
                hint=hint,
            ) from None
        except ValueError as exc:
            message, suffix = Channel.describe_error(exc)
            raise ConfigError(path, message, line=line, field=f"channels.{i}{suffix}") from None
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise ConfigError(
            path,
            "two channels share a name",
            field="channels",
            line=doc.line_of(("channels",)) if doc else None,
        )
    return out


def _cross_check(brief: Brief, doc: YamlDoc) -> None:
    """Rules that span fields; each failure points at the offending field's line."""

    def fail(loc: tuple[str | int, ...], message: str, hint: str | None = None) -> None:
        raise ConfigError(
            doc.path, message, line=doc.line_of(loc), field=".".join(map(str, loc)), hint=hint
        )

    used = brief.prompt.slot_names()
    for name in used:
        if name not in brief.prompt.slots:
            fail(
                ("prompt", "template"),
                f"uses slot '{{{name}}}' but prompt.slots has no values for it",
                f"add 'prompt.slots.{name}: [value, ...]'",
            )
    for name in brief.prompt.slots:
        if name not in used:
            fail(
                ("prompt", "slots", name),
                "slot is not used in prompt.template",
                f"add '{{{name}}}' to the template or remove the slot",
            )
    seen: set[str] = set()
    for i, seg in enumerate(brief.segments):
        if seg.id in seen:
            fail(("segments", i, "id"), f"segment id '{seg.id}' is used twice")
        seen.add(seg.id)
        for slot, values in seg.slots.items():
            allowed = brief.prompt.slots.get(slot)
            if allowed is None:
                fail(("segments", i, "slots", slot), f"narrows unknown slot '{slot}'")
                continue
            bad = [x for x in values if x not in allowed]
            if bad or not values:
                fail(
                    ("segments", i, "slots", slot),
                    f"values must come from prompt.slots.{slot} (got {bad or 'none'})",
                )
        for loc in seg.copy_:
            if loc not in brief.locales:
                fail(
                    ("segments", i, "copy", loc),
                    f"overrides copy for unknown locale '{loc}'",
                    f"use one of: {', '.join(brief.locales)}",
                )
    if brief.product_slot is not None:
        if brief.product_slot not in brief.prompt.slots:
            fail(("product_slot",), f"'{brief.product_slot}' is not a slot in prompt.slots")
        missing = [x for x in brief.prompt.slots[brief.product_slot] if x not in brief.products]
        if missing:
            fail(
                ("products",),
                f"no product file for {brief.product_slot} value(s) {missing}",
                "add them under 'products:'",
            )
    elif len(brief.products) > 1:
        fail(
            ("products",),
            "several products but no product_slot to choose among them",
            "set product_slot to the slot whose values name the products",
        )


def load_brief(path: Path) -> tuple[Brief, YamlDoc]:
    """Load and validate a brief (schema only; files it names are checked by the plan)."""
    doc = read_yaml(path)
    brief = validate(doc, Brief)
    _cross_check(brief, doc)
    brief = brief.model_copy(update={"root": path.parent.resolve(), "sha256": doc.sha256})
    return brief, doc
