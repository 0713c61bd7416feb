"""The backdrop: sweep, gradient or soft-light fields at low resolution, and wall patterns."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from bildwerk.backends.studio.common import F32, LOW_SCALE, RGB, int3
from bildwerk.backends.studio.palette import Colours
from bildwerk.backends.studio.scene import Scene
from bildwerk.backends.studio.stage import Stage
from bildwerk.geometry import Box, Layout

# --------------------------------------------------------------------------- drawing


def _smooth(t: F32) -> F32:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _mix(a: RGB, b: RGB, t: F32) -> F32:
    ca, cb = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return ca + (cb - ca) * t[..., None]


def render_backdrop(
    layout: Layout, scene: Scene, colours: Colours, stage: Stage, rng: np.random.Generator
) -> Image.Image:
    """Wall, floor, key-light glow and vignette at 1/8 size, upscaled bilinearly."""
    w, h = layout.width, layout.height
    lw, lh = -(-w // LOW_SCALE), -(-h // LOW_SCALE)
    xs = (np.arange(lw, dtype=np.float32) + 0.5) * LOW_SCALE
    ys = (np.arange(lh, dtype=np.float32) + 0.5) * LOW_SCALE
    gx, gy = np.meshgrid(xs, ys)
    fx, fy = stage.product.center
    if scene.backdrop == "gradient":
        angle = rng.uniform(-0.6, 0.6) + math.pi / 2
        d = (gx - w / 2) * math.cos(angle) + (gy - h / 2) * math.sin(angle)
        t = _smooth(d / (0.9 * math.hypot(w, h)) + 0.5)
        img = _mix(colours.wall_top, colours.floor_front, t)
        img = img + (_mix(colours.wall, colours.glow, t) - img) * 0.5
        glow_k, vignette = 0.35, 0.06
    else:
        rng.uniform()  # keep the draw count independent of the backdrop
        bow = (gx - fx) / w
        horizon = stage.horizon + 0.05 * h * bow * bow
        band = 0.05 * h if scene.backdrop == "sweep" else 0.22 * h
        t = _smooth((gy - horizon) / band + 0.5)
        up = _smooth(gy / max(stage.horizon, 1.0))
        wall = _mix(colours.wall_top, colours.wall, up)
        front = np.clip((gy - horizon) / max(h - stage.horizon, 1.0), 0.0, 1.0)
        floor = _mix(colours.floor, colours.floor_front, front)
        img = wall + (floor - wall) * t[..., None]
        glow_k = 0.6 if scene.backdrop == "sweep" else 1.0
        vignette = 0.07 if scene.backdrop == "sweep" else 0.12
    if scene.mood == "dark":
        vignette *= 2.2
    gcy = min(fy, stage.horizon) - 0.1 * h
    rad = ((gx - fx) / (0.55 * w)) ** 2 + ((gy - gcy) / (0.5 * h)) ** 2
    img = (
        img
        + (np.asarray(colours.glow, dtype=np.float32) - img) * (glow_k * np.exp(-rad))[..., None]
    )
    vr = ((gx - w / 2) / (0.75 * w)) ** 2 + ((gy - h / 2) / (0.75 * h)) ** 2
    img = img * (1.0 - vignette * _smooth(vr - 0.25))[..., None]
    small = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")
    return small.resize((w, h), Image.Resampling.BILINEAR)


def _pattern_mask(layout: Layout, stage: Stage) -> Image.Image:
    """'L' mask of where a wall pattern may show: around the product zone, above the
    floor, faded out well before the copy and logo zones."""
    w, h = layout.width, layout.height
    lw, lh = -(-w // LOW_SCALE), -(-h // LOW_SCALE)
    small = Image.new("L", (lw, lh), 0)
    d = ImageDraw.Draw(small)
    grow = 0.1 * min(w, h)
    z = layout.product
    d.rectangle(
        (
            (z.x0 - grow) / LOW_SCALE,
            (z.y0 - grow) / LOW_SCALE,
            (z.x1 + grow) / LOW_SCALE,
            (stage.horizon - 0.04 * h) / LOW_SCALE,
        ),
        fill=255,
    )
    pad = 0.05 * min(w, h)
    for b in (layout.copy, layout.logo):
        d.rectangle(
            (
                (b.x0 - pad) / LOW_SCALE,
                (b.y0 - pad) / LOW_SCALE,
                (b.x1 + pad) / LOW_SCALE,
                (b.y1 + pad) / LOW_SCALE,
            ),
            fill=0,
        )
    small = small.filter(ImageFilter.GaussianBlur(pad / LOW_SCALE * 0.6))
    return small.resize((w, h), Image.Resampling.BILINEAR)


def draw_pattern(
    img: Image.Image,
    layout: Layout,
    scene: Scene,
    colours: Colours,
    stage: Stage,
    rng: np.random.Generator,
) -> None:
    """Low-contrast dots or fluted panels on the wall behind the product, terrazzo flecks
    on the floor; all kept off the copy and logo zones."""
    if scene.pattern == "none":
        return
    w, h = img.size
    if scene.pattern == "terrazzo":
        flecks(
            img,
            layout,
            colours,
            rng,
            Box(0, round(stage.horizon + 0.03 * h), w, h),
            count=int(w * h / 9000),
            size=0.005 * min(w, h),
            level=70,
        )
        return
    mask = _pattern_mask(layout, stage)
    box = mask.getbbox()
    if box is None:
        return
    mask = mask.crop(box)
    size = mask.size
    region = img.crop(box)
    if scene.pattern == "dots":
        step = max(18, round(min(w, h) * 0.045))
        dots = _dot_field(w, h, step).crop(box)
        ink = colours.pattern_light if scene.mood == "dark" else colours.pattern_dark
        region.paste(Image.new("RGB", size, int3(ink)), (0, 0), ImageChops.multiply(dots, mask))
    else:
        shade, light = _flute_field(w, h, max(16, round(min(w, h) * 0.04)))
        region.paste(
            Image.new("RGB", size, int3(colours.pattern_dark)),
            (0, 0),
            ImageChops.multiply(shade.crop(box), mask),
        )
        region.paste(
            Image.new("RGB", size, int3(colours.pattern_light)),
            (0, 0),
            ImageChops.multiply(light.crop(box), mask),
        )
    img.paste(region, box[:2])


def _dot_field(w: int, h: int, step: int) -> Image.Image:
    """A staggered dot grid as an anti-aliased coverage mask, built from one tile."""
    ss = 4
    tile = Image.new("L", (2 * step * ss, 2 * step * ss), 0)
    d = ImageDraw.Draw(tile)
    r = step * 0.1 * ss
    for cx, cy in ((0.5, 0.5), (1.5, 1.5)):
        x, y = cx * step * ss, cy * step * ss
        d.ellipse((x - r, y - r, x + r, y + r), fill=150)
    small = np.asarray(tile.reduce(ss))
    reps = (-(-h // small.shape[0]), -(-w // small.shape[1]))
    return Image.fromarray(np.ascontiguousarray(np.tile(small, reps)[:h, :w]), "L")


def _flute_field(w: int, h: int, step: int) -> tuple[Image.Image, Image.Image]:
    """Vertical fluted panels lit from the left: (shadow, highlight) coverage masks."""
    x = (np.arange(w, dtype=np.float32) % step) / step
    slope = np.cos(x * math.pi)  # +1 left edge faces the light, -1 right edge
    shade = np.clip(-slope, 0, 1) ** 1.5 * 200
    light = np.clip(slope, 0, 1) ** 1.5 * 220
    rows = np.ones((h, 1), dtype=np.float32)
    return (
        Image.fromarray((rows * shade).astype(np.uint8), "L"),
        Image.fromarray((rows * light).astype(np.uint8), "L"),
    )


def flecks(
    img: Image.Image,
    layout: Layout,
    colours: Colours,
    rng: np.random.Generator,
    region: Box,
    count: int,
    size: float,
    clip: Image.Image | None = None,
    level: int = 110,
) -> None:
    """Terrazzo: small irregular chips in palette tints, flattened by the floor's tilt."""
    w, h = region.width, region.height
    if w <= 0 or h <= 0:
        return
    layer = Image.new("RGB", (w, h))
    mask = Image.new("L", (w, h), 0)
    dl, dm = ImageDraw.Draw(layer), ImageDraw.Draw(mask)
    xs = rng.uniform(0, w, count)
    ys = rng.uniform(0, h, count)
    sizes = size * rng.uniform(0.5, 1.6, count)
    kinds = rng.integers(0, len(colours.fleck), count)
    angles = rng.uniform(0, 2 * math.pi, (count, 5))
    calm = [b for b in (layout.copy, layout.logo)]
    for i in range(count):
        px, py = region.x0 + xs[i], region.y0 + ys[i]
        if any(b.x0 - size <= px <= b.x1 + size and b.y0 - size <= py <= b.y1 + size for b in calm):
            continue
        s = sizes[i]
        pts = [(xs[i] + s * math.cos(a), ys[i] + 0.45 * s * math.sin(a)) for a in sorted(angles[i])]
        dl.polygon(pts, fill=int3(colours.fleck[kinds[i]]))
        dm.polygon(pts, fill=level)
    if clip is not None:
        mask = ImageChops.multiply(mask, clip)
    img.paste(layer, (region.x0, region.y0), mask)
