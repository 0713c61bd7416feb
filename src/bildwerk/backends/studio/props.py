"""Props: podium (matte, marble, terrazzo), arch and spheres, shaded by the key light."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from bildwerk.backends.studio.backdrop import flecks
from bildwerk.backends.studio.common import F32, KEY_LIGHT, int3
from bildwerk.backends.studio.palette import Colours
from bildwerk.backends.studio.scene import Scene
from bildwerk.backends.studio.stage import Stage
from bildwerk.geometry import Box, Layout


def _shade_cylinder(u: F32) -> F32:
    """Lambert shading across a vertical cylinder lit from the upper left."""
    nz = np.sqrt(np.clip(1.0 - u * u, 0.0, 1.0))
    ndl = u * KEY_LIGHT[0] + nz * KEY_LIGHT[2]
    out: F32 = (0.62 + 0.45 * np.clip((ndl + 0.3) / 1.3, 0.0, 1.0)) * (1.0 - 0.18 * (1 - nz) ** 2)
    return out


def draw_podium(
    img: Image.Image,
    layout: Layout,
    scene: Scene,
    colours: Colours,
    stage: Stage,
    rng: np.random.Generator,
) -> None:
    """A cylindrical plinth: shaded side, lighter top face, a bevel highlight on the front
    rim, with a matte, marble or terrazzo finish."""
    if stage.podium is None:
        return
    cx, top, bottom, rx, ry = stage.podium
    x0, x1 = max(0, int(cx - rx) - 1), min(layout.width, int(cx + rx) + 2)
    y0, y1 = max(0, int(top - ry) - 1), min(layout.height, int(bottom + ry) + 2)
    gx, gy = np.meshgrid(
        np.arange(x0, x1, dtype=np.float32) + 0.5, np.arange(y0, y1, dtype=np.float32) + 0.5
    )
    u = np.clip((gx - cx) / rx, -1.0, 1.0)
    arc = ry * np.sqrt(1.0 - u * u)
    cover = np.clip(rx - np.abs(gx - cx) + 0.5, 0.0, 1.0)
    cover = cover * np.clip(gy - (top - arc) + 0.5, 0, 1) * np.clip(bottom + arc - gy + 0.5, 0, 1)
    side_t = np.clip(gy - (top + arc) + 0.5, 0.0, 1.0)
    base = np.asarray(
        colours.marble if scene.finish == "marble" else colours.podium, dtype=np.float32
    )
    vert = np.clip((gy - top) / max(bottom - top, 1.0), 0.0, 1.0)
    side = _shade_cylinder(u) * (1.0 - 0.1 * vert)
    tv = (gy - top) / max(ry, 1.0)
    top_k = 1.06 + 0.04 * np.clip(-tv - 0.3 * u, -1, 1)
    bevel = 0.09 * np.exp(-(((gy - (top + arc)) / 1.6) ** 2)) * np.clip(1 - u * u, 0, 1)
    k = top_k + (side - top_k) * side_t + bevel
    rgb = base * k[..., None]
    if scene.finish == "marble":
        rgb = rgb * _marble(gx, gy, rng, rx)[..., None]
    region = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")
    mask = Image.fromarray(np.rint(cover * 255).astype(np.uint8), "L")
    img.paste(region, (x0, y0), mask)
    if scene.finish == "terrazzo":
        flecks(
            img,
            layout,
            colours,
            rng,
            Box(x0, y0, x1, y1),
            count=int(rx * (bottom - top) / 120),
            size=rx * 0.035,
            clip=mask,
        )


def _fbm(shape: tuple[int, int], rng: np.random.Generator, cells: float) -> F32:
    """Smooth fractal noise in 0..1: random grids at three octaves, upscaled bicubically."""
    h, w = shape
    total = np.zeros(shape, dtype=np.float32)
    for octave, weight in ((1, 0.55), (2, 0.3), (4, 0.15)):
        gw = max(2, int(cells * octave * w / max(w, h)) + 2)
        gh = max(2, int(cells * octave * h / max(w, h)) + 2)
        grid = Image.fromarray(rng.random((gh, gw), dtype=np.float32), "F")
        total += weight * np.asarray(grid.resize((w, h), Image.Resampling.BICUBIC))
    return total


def _marble(gx: F32, gy: F32, rng: np.random.Generator, scale: float) -> F32:
    """Thin grey veins along a turbulent diagonal field plus cloudy tone (near 1)."""
    noise = _fbm(gx.shape, rng, 4.0)
    fade = _fbm(gx.shape, rng, 2.0)
    a, b = rng.random(2)
    f = 2 * math.pi / (scale * 1.1)
    field_ = (gx * 0.9 + gy * 1.6) * f + noise * 7.0 + a * 6.0
    vein = (1.0 - np.abs(np.sin(field_))) ** 30 * np.clip(fade * 2.2 - 0.5, 0.0, 1.0)
    fine = (1.0 - np.abs(np.sin(field_ * 2.7 + noise * 4.0 + b * 6.0))) ** 50
    out: F32 = (1.0 - 0.22 * vein - 0.07 * fine - 0.04 * (noise - 0.5)).astype(np.float32)
    return out


def draw_arch(img: Image.Image, colours: Colours, stage: Stage) -> None:
    """A freestanding arch panel behind the product, with a soft shadow on the wall."""
    if stage.arch is None:
        return
    b = stage.arch
    ss = 2
    pad = round(b.width * 0.12)
    w, h = b.width + 2 * pad, b.height + pad
    mask = Image.new("L", (w * ss, h * ss), 0)
    d = ImageDraw.Draw(mask)
    r = b.width / 2 * ss
    left, top = pad * ss, pad * ss
    d.ellipse((left, top, left + 2 * r, top + 2 * r), fill=255)
    d.rectangle((left, top + r, left + 2 * r, h * ss), fill=255)
    mask = mask.reduce(ss)
    offset = (b.x0 - pad, b.y0 - pad)
    shadow = mask.filter(ImageFilter.GaussianBlur(b.width * 0.06)).point(lambda v: v * 0.32)
    dx = round(b.width * 0.06)
    img.paste(Image.new("RGB", (w, h), int3(colours.shadow)), (offset[0] + dx, offset[1]), shadow)
    depth = max(2, round(b.width * 0.035))
    edge = tuple(round(c * 0.86) for c in colours.arch)
    img.paste(Image.new("RGB", (w, h), edge), (offset[0] + depth, offset[1]), mask)
    grad = np.linspace(1.03, 0.97, h, dtype=np.float32)[:, None, None]
    xg = np.linspace(1.02, 0.98, w, dtype=np.float32)[None, :, None]
    fill = np.asarray(colours.arch, dtype=np.float32) * grad * xg
    panel = Image.fromarray(np.clip(np.rint(fill), 0, 255).astype(np.uint8), "RGB")
    img.paste(panel, offset, mask)
    foot = Image.new("L", (w, max(4, pad)), 0)
    ImageDraw.Draw(foot).rectangle((pad, 0, pad + b.width + depth, max(1, pad // 8)), fill=90)
    foot = foot.filter(ImageFilter.GaussianBlur(max(1.0, pad / 10)))
    img.paste(Image.new("RGB", foot.size, int3(colours.shadow)), (offset[0], b.y1 - 2), foot)


def draw_spheres(img: Image.Image, colours: Colours, stage: Stage) -> None:
    """Matte spheres with a soft specular, in the accent and primary tints."""
    for cx, cy, r, i in stage.spheres:
        base = colours.sphere_a if i != 2 else colours.sphere_b
        if i == 0:
            base = colours.sphere_a
        x0, y0 = int(cx - r) - 1, int(cy - r) - 1
        x1, y1 = int(cx + r) + 2, int(cy + r) + 2
        gx, gy = np.meshgrid(
            (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx) / r,
            (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy) / r,
        )
        d2 = gx * gx + gy * gy
        nz = np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
        ndl = gx * KEY_LIGHT[0] - gy * KEY_LIGHT[1] + nz * KEY_LIGHT[2]
        diffuse = np.clip((ndl + 0.35) / 1.35, 0.0, 1.0)
        bounce = 0.08 * np.clip(gy, 0, 1) * nz  # light bounced from the floor
        spec = 0.18 * np.clip(ndl, 0, 1) ** 24
        k = 0.55 + 0.55 * diffuse + bounce
        rgb = np.asarray(base, dtype=np.float32) * k[..., None] + 255.0 * spec[..., None]
        cover = np.clip((1.0 - np.sqrt(d2)) * r + 0.5, 0.0, 1.0)
        region = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")
        img.paste(region, (x0, y0), Image.fromarray(np.rint(cover * 255).astype(np.uint8)))
