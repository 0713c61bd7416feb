"""Picklable per-creative work units for the compose and render stages.

Each takes only plain data and blob paths, so any worker process can run it and the
result does not depend on which one did.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from PIL import Image

from bildwerk.backends.base import SceneRequest
from bildwerk.checks.base import CheckResult
from bildwerk.config.brand import BrandKit
from bildwerk.config.brief import Copy
from bildwerk.config.channels import Channel
from bildwerk.fonts import FontSet
from bildwerk.geometry import Layout
from bildwerk.records import JobSpec, TextBlock
from bildwerk.stages.compose import compose
from bildwerk.stages.generate import png_bytes
from bildwerk.stages.render import RenderSettings, Rendition, render


@dataclass(frozen=True)
class ComposeTask:
    job_key: str
    scene_path: Path
    layout: Layout
    copy: Copy
    locale: str
    direction: Literal["ltr", "rtl"]
    brand: BrandKit
    logo_path: Path | None
    density: int = 1


@dataclass(frozen=True)
class ComposeOutput:
    job_key: str
    png: bytes
    width: int
    height: int
    texts: tuple[TextBlock, ...]
    logo_box: tuple[int, int, int, int] | None
    checks: list[CheckResult]
    ms: float = 0.0


@dataclass(frozen=True)
class RenderOutput:
    job_key: str
    renditions: list[Rendition]
    checks: list[CheckResult] = field(default_factory=list)
    ms: float = 0.0


def compose_task(
    spec: JobSpec,
    scene: SceneRequest,
    brand: BrandKit,
    scene_path: Path,
    logo_path: Path | None,
) -> ComposeTask:
    """The compose input of one job, from its records: the run and ``reproduce`` build
    it the same way."""
    return ComposeTask(
        job_key=spec.job_key,
        scene_path=scene_path,
        layout=scene.layout,
        copy=spec.copy,
        locale=spec.locale,
        direction=spec.direction,
        brand=brand,
        logo_path=logo_path,
        density=spec.channel.density,
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


def compose_creative(task: ComposeTask) -> ComposeOutput:
    started = time.perf_counter()
    with Image.open(task.scene_path) as im:
        scene = im.convert("RGB")
    result = compose(
        scene,
        task.layout,
        task.copy,
        brand=task.brand,
        locale=task.locale,
        direction=task.direction,
        logo=load_rgba(task.logo_path),
        fonts=_fonts(task.brand),
        density=task.density,
    )
    texts = tuple(
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
        for t in result.texts
    )
    return ComposeOutput(
        job_key=task.job_key,
        png=png_bytes(result.image),
        width=result.image.width,
        height=result.image.height,
        texts=texts,
        logo_box=result.logo_box.as_tuple() if result.logo_box else None,
        checks=list(result.checks),
        ms=(time.perf_counter() - started) * 1000,
    )


def render_creative(
    job_key: str,
    master_path: Path,
    channel: Channel,
    focal: tuple[float, float],
    settings: RenderSettings,
    asset_id: str | None = None,
) -> RenderOutput:
    """Every rendition of one creative; ``asset_id`` becomes the invisible watermark."""
    started = time.perf_counter()
    with Image.open(master_path) as im:
        master = im.convert("RGB")
    renditions = render(master, channel, focal=focal, settings=settings, watermark=asset_id)
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
    return RenderOutput(
        job_key=job_key,
        renditions=renditions,
        checks=[check],
        ms=(time.perf_counter() - started) * 1000,
    )
