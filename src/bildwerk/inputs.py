"""Everything a run reads before it writes anything: brief, brand kit, channels, cleaned
input images and the fingerprints that enter job keys. Any user mistake surfaces here,
so a bad brief leaves the catalog and blob store untouched."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bildwerk.atomicio import sha256_bytes
from bildwerk.config.brand import BrandKit, load_brand
from bildwerk.config.brief import Brief, load_brief, resolve_channels
from bildwerk.config.channels import Channel
from bildwerk.config.delivery import BUILTIN, DeliveryProfile
from bildwerk.config.yamlfile import YamlDoc
from bildwerk.errors import ConfigError, InputImageError, UserError
from bildwerk.fonts import FontSet
from bildwerk.guard import GuardPolicy, load_policy
from bildwerk.imageinput import CleanImage, load_image
from bildwerk.registry import get_backend
from bildwerk.stages.render import RenderSettings, encoder_versions


@dataclass(frozen=True)
class CleanInput:
    """A cleaned input image held in memory until the run is allowed to write."""

    source: Path
    kind: str
    png: bytes
    sha256: str
    width: int
    height: int
    notes: tuple[str, ...]


@dataclass
class RunInputs:
    brief: Brief
    doc: YamlDoc
    brand: BrandKit
    brand_path: Path
    channels: list[Channel]
    backend: str
    backend_version: str
    products: dict[Path, CleanInput] = field(default_factory=dict)
    logo: CleanInput | None = None
    render_settings: RenderSettings = field(default_factory=RenderSettings)
    delivery: dict[str, DeliveryProfile] = field(default_factory=dict)  # by channel name
    guard: GuardPolicy = field(default_factory=GuardPolicy)
    generation: dict[str, dict[str, Any]] = field(default_factory=dict)  # per channel
    needs_model: bool = False
    fingerprints: dict[str, Any] = field(default_factory=dict)


def _clean(path: Path, kind: str, max_mp: float) -> CleanInput:
    clean: CleanImage = load_image(path, max_megapixels=max_mp)
    png = clean.png_bytes()
    return CleanInput(
        source=path,
        kind=kind,
        png=png,
        sha256=sha256_bytes(png),
        width=clean.width,
        height=clean.height,
        notes=clean.notes,
    )


def _delivery(
    channels: list[Channel], known: dict[str, DeliveryProfile], doc: YamlDoc
) -> dict[str, DeliveryProfile]:
    """Each channel's delivery profile; an unknown name points at the channel."""
    out: dict[str, DeliveryProfile] = {}
    for i, channel in enumerate(channels):
        profile = known.get(channel.delivery)
        if profile is None:
            raise ConfigError(
                doc.path,
                f"channel '{channel.name}': unknown delivery profile '{channel.delivery}'",
                line=doc.line_of(("channels", i)),
                field=f"channels.{i}.delivery",
                hint="use one of " + ", ".join(sorted(known)) + " or define it under"
                " delivery: in bildwerk.yaml",
            )
        out[channel.name] = profile
    return out


def read_inputs(
    brief_path: Path,
    *,
    default_brand: Path,
    max_megapixels: float,
    backend: str | None = None,
    delivery: Mapping[str, DeliveryProfile] | None = None,
) -> RunInputs:
    brief, doc = load_brief(brief_path)
    brand_path = brief.resolve(brief.brand) if brief.brand else default_brand
    try:
        brand = load_brand(brand_path)
    except ConfigError as exc:
        if brief.brand is not None and not brand_path.exists():
            raise ConfigError(
                doc.path,
                f"brand kit not found: {brand_path}",
                line=doc.line_of(("brand",)),
                field="brand",
                hint="fix the path (relative to the brief)",
            ) from None
        raise exc
    channels = resolve_channels(brief, doc)
    profiles = _delivery(channels, dict(delivery or BUILTIN), doc)
    backend_name = backend or brief.backend
    try:
        instance = get_backend(backend_name)
    except ConfigError:
        raise
    except UserError as exc:
        # unknown name, missing extra, missing key: point at the brief's line. Anything
        # else is a bug in the backend and keeps its traceback.
        if backend is None:
            raise ConfigError(
                doc.path,
                exc.message,
                line=doc.line_of(("backend",)),
                field="backend",
                hint=exc.hint,
            ) from exc
        raise
    products: dict[Path, CleanInput] = {}
    for name, rel in brief.products.items():
        path = brief.resolve(rel)
        try:
            products[path] = _clean(path, "product", max_megapixels)
        except InputImageError as exc:
            raise ConfigError(
                doc.path,
                f"product '{name}': {exc.message}",
                line=doc.line_of(("products", name)),
                field=f"products.{name}",
                hint=exc.hint or "fix the file or the path",
            ) from None
    logo = None
    if brand.logo is not None:
        try:
            logo = _clean(brand.resolve(brand.logo.file), "logo", max_megapixels)
        except InputImageError as exc:
            raise ConfigError(
                brand_path,
                f"logo: {exc.message}",
                field="logo.file",
                hint=exc.hint or "fix the file or the path",
            ) from None
    fonts = FontSet.from_brand(brand, brand_path=brand_path)
    guard = load_policy(brand.resolve(brand.policy_file)) if brand.policy_file else GuardPolicy()
    settings = RenderSettings()
    fingerprints = {
        "logo": logo.sha256 if logo else None,
        "fonts": fonts.fingerprint(),
        "render": settings.fingerprint(),
        # the stamp reserve follows the profile's credentials and changes budgeted bytes
        "delivery": {
            name: {**p.rendering(), "stamp_reserve": settings.reserve(p)}
            for name, p in sorted(profiles.items())
        },
        "encoders": encoder_versions(),
    }
    return RunInputs(
        brief=brief,
        doc=doc,
        brand=brand,
        brand_path=brand_path,
        channels=channels,
        backend=backend_name,
        backend_version=str(instance.version),
        products=products,
        logo=logo,
        render_settings=settings,
        delivery=profiles,
        guard=guard,
        fingerprints=fingerprints,
        needs_model=bool(getattr(instance.capabilities, "needs_model", False)),
    )
