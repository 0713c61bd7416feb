"""Where things stand: the product cutout and the placement of floor, podium, arch and
spheres around the layout's copy and logo zones."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from bildwerk.backends.studio.scene import Scene
from bildwerk.errors import InputImageError
from bildwerk.geometry import Box, Layout

# --------------------------------------------------------------------------- product


@dataclass(frozen=True)
class Cutout:
    """A product cutout trimmed to its opaque extent, plus the width of its base."""

    image: Image.Image
    base_width: float  # as a fraction of the image width


@lru_cache(maxsize=16)
def _load_cutout(path: str, mtime_ns: int, size: int) -> Cutout:
    """Decode and trim a cutout once per file version (many variants share a product)."""
    del mtime_ns, size  # only part of the cache key
    try:
        with Image.open(path) as im:
            img = im.convert("RGBA")
    except (OSError, ValueError) as exc:
        raise InputImageError(path, f"cannot read the product cutout ({exc})") from exc
    bbox = img.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
    if bbox is None:
        raise InputImageError(
            path,
            "the product cutout is fully transparent",
            hint="check the background removal of this product image",
        )
    img = img.crop(bbox)
    alpha = np.asarray(img.getchannel("A"))
    rows = alpha[int(alpha.shape[0] * 0.9) :] > 128
    cols = np.flatnonzero(rows.any(axis=0))
    base = (cols[-1] - cols[0] + 1) / img.width if cols.size else 0.6
    return Cutout(img, float(base))


def load_cutout(path: Path) -> Cutout:
    """The product cutout at ``path`` (cached by path, mtime and size)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise InputImageError(path, "the product cutout does not exist") from exc
    return _load_cutout(str(path), st.st_mtime_ns, st.st_size)


# --------------------------------------------------------------------------- geometry


@dataclass
class Stage:
    """Where everything stands, in canvas pixels."""

    product: Box  # the product (or hero prop) box
    base_y: int  # the product's lowest row
    base_w: float  # width of its footprint
    horizon: float
    podium: tuple[float, float, float, float, float] | None = None  # cx, top, bottom, rx, ry
    arch: Box | None = None
    spheres: list[tuple[float, float, float, int]] = field(default_factory=list)  # cx,cy,r,i
    scale: float = 1.0


def plan_stage(layout: Layout, cut: Cutout | None, scene: Scene) -> Stage:
    """Size the product to the layout's product zone and arrange props around it."""
    zone = layout.product
    podium = "podium" in scene.props
    cx = zone.x0 + zone.width / 2
    if cut is not None:
        pw0, ph0 = cut.image.size
        target_h = zone.height * (0.66 if podium else 0.72 if "arch" in scene.props else 0.86)
        scale = min(target_h / ph0, zone.width * 0.86 / pw0, 1.5)
        pw, ph = max(1, round(pw0 * scale)), max(1, round(ph0 * scale))
        base_w = pw * cut.base_width
    else:
        scale, pw = 1.0, round(min(zone.width * 0.34, zone.height * 0.42))
        ph, base_w = pw, pw * 0.3
    stage_podium = None
    if podium:
        rx = min(max(0.78 * pw, 0.22 * zone.width, 0.55 * base_w * 2), 0.47 * zone.width)
        ry = rx * 0.16
        hp = zone.height * 0.17
        bottom = zone.y1 - ry - 1
        top = bottom - hp
        base_y = round(top + 0.3 * ry)
        if base_y - ph < zone.y0 and cut is not None:  # shrink to fit above the podium
            k = (base_y - zone.y0 - 2) / ph
            pw, ph, scale, base_w = round(pw * k), round(ph * k), scale * k, base_w * k
        stage_podium = (cx, top, bottom, rx, ry)
    else:
        base_y = round(zone.y1 - zone.height * 0.04)
    x0 = round(cx - pw / 2)
    box = Box(x0, base_y - ph, x0 + pw, base_y)
    horizon = (stage_podium[1] if stage_podium else base_y) - (0.3 if podium else 0.42) * ph
    stage = Stage(box, base_y, base_w, max(horizon, layout.height * 0.3), stage_podium, scale=scale)
    _add_arch(stage, layout, scene)
    _add_spheres(stage, layout, scene, cut is None)
    return stage


def _add_arch(stage: Stage, layout: Layout, scene: Scene) -> None:
    """An arch panel centred behind the product, as tall as the wall in the zone allows."""
    if "arch" not in scene.props:
        return
    zone = layout.product
    top = zone.y0 + 2.0
    want = max(stage.product.width * 1.7, (stage.podium[3] * 2.3) if stage.podium else 0)
    aw = min(want, zone.width * 0.8, stage.horizon - top)
    if aw < stage.product.width * 1.1:
        return
    top = max(top, stage.horizon - 2.2 * aw)
    x0 = min(max(stage.product.center[0] - aw / 2, zone.x0), zone.x1 - aw)
    stage.arch = Box(round(x0), round(top), round(x0 + aw), round(stage.horizon + 2))


def _add_spheres(stage: Stage, layout: Layout, scene: Scene, hero: bool) -> None:
    zone = layout.product
    if hero and stage.podium:  # no product: a sphere on the podium is the hero
        cx, top, _, rx, ry = stage.podium
        r = min(rx * 0.62, (top - zone.y0) * 0.5)
        stage.spheres.append((cx, top + 0.3 * ry - r, r, 0))
        stage.product = Box(
            round(cx - r), round(top + 0.3 * ry - 2 * r), round(cx + r), round(top + 0.3 * ry)
        )
    if "spheres" not in scene.props:
        return
    foot = stage.podium[3] if stage.podium else stage.product.width / 2
    floor_y = (stage.podium[2] + stage.podium[4] * 0.6) if stage.podium else stage.base_y + 2
    cx = stage.product.center[0]
    for i, (side, k) in enumerate(((-1, 0.2), (1, 0.13))):
        r = min(zone.height * k, zone.width * k * 0.6)
        sx = cx + side * (foot + r * 1.15)
        sphere = Box(round(sx - r), round(floor_y - 2 * r), round(sx + r), round(floor_y))
        clear = all(not sphere.intersects(b) for b in (layout.copy, layout.logo))
        if zone.contains(sphere) and clear and not sphere.intersects(stage.product):
            stage.spheres.append((sx, floor_y - r, r, i + 1))
