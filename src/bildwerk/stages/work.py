"""Picklable per-creative work units for the compose and render stages.

Each takes only plain data and blob digests: the worker opens the blob store itself
(reads verify the digest), stores what it makes and returns digests, so any worker
process — local or on another machine — can run it and the result does not depend on
which one did.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from PIL import Image

from bildwerk.backends.base import SceneRequest
from bildwerk.blobs.base import BlobStore, BlobStoreSpec
from bildwerk.checks.base import CheckResult
from bildwerk.config.brand import BrandKit
from bildwerk.config.brief import Copy
from bildwerk.config.channels import Channel
from bildwerk.config.delivery import DeliveryProfile
from bildwerk.fonts import FontSet
from bildwerk.geometry import Layout
from bildwerk.records import JobSpec, RenditionRecord, TextBlock
from bildwerk.stages.compose import TextRun, compose
from bildwerk.stages.generate import png_bytes
from bildwerk.stages.render import RenderSettings, render


@dataclass(frozen=True)
class ComposeTask:
    job_key: str
    scene_sha256: str
    layout: Layout
    copy: Copy
    locale: str
    direction: Literal["ltr", "rtl"]
    brand: BrandKit
    logo_sha256: str | None
    density: int = 1
    store: BlobStoreSpec | None = None


@dataclass(frozen=True)
class Composed:
    """A composed master in memory (``reproduce`` compares it; the task stores it)."""

    png: bytes
    width: int
    height: int
    texts: tuple[TextBlock, ...]
    logo_box: tuple[int, int, int, int] | None
    checks: list[CheckResult]
    ms: float = 0.0


@dataclass(frozen=True)
class ComposeOutput:
    job_key: str
    sha256: str
    width: int
    height: int
    texts: tuple[TextBlock, ...]
    logo_box: tuple[int, int, int, int] | None
    checks: list[CheckResult]
    ms: float = 0.0


@dataclass(frozen=True)
class RenderOutput:
    job_key: str
    renditions: list[RenditionRecord]
    checks: list[CheckResult] = field(default_factory=list)
    ms: float = 0.0


def compose_task(
    spec: JobSpec,
    scene: SceneRequest,
    brand: BrandKit,
    scene_sha256: str,
    logo_sha256: str | None,
    store: BlobStoreSpec | None,
) -> ComposeTask:
    """The compose input of one job, from its records: the run and ``reproduce`` build
    it the same way."""
    return ComposeTask(
        job_key=spec.job_key,
        scene_sha256=scene_sha256,
        layout=scene.layout,
        copy=spec.copy,
        locale=spec.locale,
        direction=spec.direction,
        brand=brand,
        logo_sha256=logo_sha256,
        density=spec.channel.density,
        store=store,
    )


_FONTSETS: dict[tuple[str, str], FontSet] = {}


def _fonts(brand: BrandKit) -> FontSet:
    """One FontSet per brand kit and process (brand kits hold dicts, so no lru_cache)."""
    key = (brand.sha256, str(brand.root))
    if key not in _FONTSETS:
        _FONTSETS[key] = FontSet.from_brand(brand)
    return _FONTSETS[key]


@lru_cache(maxsize=8)
def load_rgba(path: Path | None) -> Image.Image | None:
    """A stored logo (or cutout) as RGBA, decoded once per process."""
    if path is None:
        return None
    with Image.open(path) as im:
        return im.convert("RGBA")


def text_blocks(runs: Sequence[TextRun]) -> tuple[TextBlock, ...]:
    """Compose's text runs as the records keep them (what QA reads back)."""
    return tuple(
        TextBlock(
            role=t.role,
            text=t.text,
            box=t.box.as_tuple(),
            color=t.color,
            background=t.background,
            font_size=t.font_size,
            lines=t.lines,
            plate=t.plate.as_tuple() if t.plate else None,
            font=t.font,
        )
        for t in runs
    )


def compose_image(task: ComposeTask, scene: Image.Image, logo: Image.Image | None) -> Composed:
    """The brand overlay on ``scene``, in memory."""
    started = time.perf_counter()
    result = compose(
        scene,
        task.layout,
        task.copy,
        brand=task.brand,
        locale=task.locale,
        direction=task.direction,
        logo=logo,
        fonts=_fonts(task.brand),
        density=task.density,
    )
    texts = text_blocks(result.texts)
    return Composed(
        png=png_bytes(result.image),
        width=result.image.width,
        height=result.image.height,
        texts=texts,
        logo_box=result.logo_box.as_tuple() if result.logo_box else None,
        checks=list(result.checks),
        ms=(time.perf_counter() - started) * 1000,
    )


def _store(spec: BlobStoreSpec | None) -> BlobStore:
    if spec is None:
        raise ValueError("this task needs a blob store spec")
    return spec.opened()


def compose_creative(task: ComposeTask) -> ComposeOutput:
    """The compose task: scene and logo read by digest, the master stored back."""
    blobs = _store(task.store)
    with Image.open(blobs.local_path(task.scene_sha256)) as im:
        scene = im.convert("RGB")
    logo = load_rgba(blobs.local_path(task.logo_sha256)) if task.logo_sha256 else None
    made = compose_image(task, scene, logo)
    return ComposeOutput(
        job_key=task.job_key,
        sha256=blobs.put(made.png),
        width=made.width,
        height=made.height,
        texts=made.texts,
        logo_box=made.logo_box,
        checks=made.checks,
        ms=made.ms,
    )


def render_creative(
    job_key: str,
    master_sha256: str,
    channel: Channel,
    focal: tuple[float, float],
    settings: RenderSettings,
    asset_id: str | None,
    store: BlobStoreSpec,
    profile: DeliveryProfile | None = None,
) -> RenderOutput:
    """Every rendition of one creative, stored; ``asset_id`` becomes the invisible
    watermark where the channel's delivery ``profile`` applies it, and the profile's SSIM
    target sets the encoder qualities."""
    started = time.perf_counter()
    blobs = _store(store)
    with Image.open(blobs.local_path(master_sha256)) as im:
        master = im.convert("RGB")
    renditions = render(
        master, channel, focal=focal, settings=settings, watermark=asset_id, profile=profile
    )
    over = [r for r in renditions if not r.within_budget]
    check = CheckResult(
        "byte_budget",
        "warn" if over else "pass",
        score=1.0 - len(over) / max(1, len(renditions)),
        reason=(
            "over budget: "
            + ", ".join(f"{r.format} {r.width}px {len(r.data)} B > {r.budget} B" for r in over)
            if over
            else None
        ),
        evidence={"over": [[r.format, r.width, len(r.data), r.budget] for r in over]},
    )
    records = [
        RenditionRecord(
            format=r.format,
            width=r.width,
            height=r.height,
            sha256=blobs.put(r.data),
            bytes=len(r.data),
            quality=r.quality,
            budget=r.budget,
            within_budget=r.within_budget,
            watermark=r.watermark,
        )
        for r in renditions
    ]
    return RenderOutput(
        job_key=job_key,
        renditions=records,
        checks=[check],
        ms=(time.perf_counter() - started) * 1000,
    )
