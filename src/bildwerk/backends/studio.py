"""The built-in "studio" backend: packshot-style product scenes without model weights.

It renders what a product photographer builds in a small studio — a paper sweep or a
gradient backdrop, a soft key light, a podium, an arch, a few spheres — in the brand's
colours, stands the product cutout on the floor with a contact shadow, and keeps the
layout's copy and logo zones calm so the overlay text reads. Every choice comes from
keywords in the prompt and slots, else from a seeded RNG, so a request always renders the
same pixels and variants differ in a controlled way.

Smooth fields are computed at reduced resolution and upscaled; shadows are blurred small
and upscaled; only crisp things (props, patterns, the product) are drawn at full size.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from bildwerk.backends.base import Capabilities, Generated, SceneRequest
from bildwerk.colour import oklab_to_srgb, srgb_to_oklab
from bildwerk.config.brand import hex_to_rgb
from bildwerk.errors import InputImageError
from bildwerk.geometry import Box, Layout

F32 = npt.NDArray[np.float32]
RGB = tuple[float, float, float]

_LOW = 8  # downscale factor for smooth fields
_SHADOW = 4  # downscale factor for shadow maps
_LIGHT = (-0.5, 0.55, 0.67)  # key light from the upper left, towards the camera

BACKDROPS = ("sweep", "gradient", "softlight")
PROPS = ("podium", "arch", "spheres")
PATTERNS = ("none", "dots", "flutes", "terrazzo")
MOODS = ("neutral", "pastel", "dark", "warm", "cool")  # keyword priority after neutral
FINISHES = ("matte", "marble", "terrazzo")

_KEYWORDS: dict[str, tuple[str, ...]] = {
    "backdrop:sweep": ("sweep", "cyclorama", "seamless", "paper"),
    "backdrop:gradient": ("gradient", "ombre", "fade"),
    "backdrop:softlight": ("soft light", "softlight", "softbox", "glow", "halo", "spotlight"),
    "prop:podium": ("podium", "plinth", "pedestal", "platform", "stand", "display"),
    "prop:arch": ("arch", "archway", "niche", "alcove"),
    "prop:spheres": ("sphere", "spheres", "ball", "balls", "orb", "orbs", "bubble"),
    "pattern:dots": ("pattern", "dots", "dotted", "polka"),
    "pattern:flutes": ("stripes", "striped", "fluted", "ribbed", "lines"),
    "pattern:terrazzo": ("terrazzo", "speckled", "confetti"),
    "finish:marble": ("marble", "stone", "luxury"),
    "finish:terrazzo": ("terrazzo",),
    "mood:warm": ("warm", "sunlit", "sunny", "golden", "summer", "cozy", "autumn"),
    "mood:cool": ("cool", "fresh", "icy", "winter", "clean", "crisp"),
    "mood:dark": ("dark", "night", "moody", "evening", "noir", "dramatic"),
    "mood:pastel": ("pastel", "soft colors", "soft colours", "dreamy", "spring", "candy"),
    "reflection:yes": ("glossy", "reflection", "reflective", "mirror", "acrylic", "polished"),
}


# --------------------------------------------------------------------------- colour


def _tone(hex_colour: str, lightness: float, chroma: float, warmth: float = 0.0) -> RGB:
    """The palette colour's hue at a set OKLab lightness and at most ``chroma``; warmth
    shifts towards amber (+) or blue (-). Returns 0..255 floats."""
    r, g, b = hex_to_rgb(hex_colour)
    _, a, bb = srgb_to_oklab((r / 255, g / 255, b / 255))
    c = math.hypot(a, bb)
    k = min(c, chroma) / c if c > 1e-5 else 0.0
    a, bb = a * k + 0.004 * warmth, bb * k + 0.016 * warmth
    out = oklab_to_srgb((lightness, a, bb))
    return out[0] * 255.0, out[1] * 255.0, out[2] * 255.0


def _hex(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(round(min(max(c, 0.0), 255.0)) for c in rgb))


def _chroma(hex_colour: str) -> float:
    r, g, b = hex_to_rgb(hex_colour)
    _, a, bb = srgb_to_oklab((r / 255, g / 255, b / 255))
    return math.hypot(a, bb)


@dataclass(frozen=True)
class Colours:
    """The scene's colours (0..255 floats), all derived from the brand palette."""

    wall_top: RGB
    wall: RGB
    floor: RGB
    floor_front: RGB
    glow: RGB
    podium: RGB
    marble: RGB
    arch: RGB
    sphere_a: RGB
    sphere_b: RGB
    pattern_dark: RGB
    pattern_light: RGB
    shadow: RGB
    fleck: tuple[RGB, ...]

    def as_hex(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.__dict__.items():
            if name != "fleck":
                out[name] = _hex(value)
        out["fleck"] = ",".join(_hex(c) for c in self.fleck)
        return out


def derive_colours(palette: dict[str, str], mood: str) -> Colours:
    """Tints and shades of the palette: a calm light (or clearly dark) backdrop, props a
    little more saturated, spheres in the accent colour."""
    get = palette.get
    bg, pri = get("background", "#f4f1ec"), get("primary", "#33415c")
    sec, acc = get("secondary", pri), get("accent", pri)
    warmth = {"warm": 1.0, "cool": -0.8}.get(mood, 0.0)
    hue = bg if _chroma(bg) > 0.005 else sec
    if mood == "dark":
        base, step, cwall = 0.27, -0.05, 0.035
        hue = pri
    elif mood == "pastel":
        base, step, cwall = 0.9, 0.03, 0.05
        hue = acc
    else:
        base, step, cwall = 0.93, 0.03, 0.028
    dark = mood == "dark"
    return Colours(
        wall_top=_tone(hue, base - 0.05 if not dark else base - 0.08, cwall, warmth),
        wall=_tone(hue, base, cwall, warmth),
        floor=_tone(hue, base + step * 0.3, cwall, warmth),
        floor_front=_tone(hue, base - step, cwall, warmth),
        glow=_tone(hue, min(0.985, base + (0.06 if not dark else 0.14)), cwall * 0.8, warmth),
        podium=_tone(sec, 0.83 if not dark else 0.4, 0.05, warmth * 0.5),
        marble=_tone(hue, 0.9 if not dark else 0.5, 0.012, warmth * 0.3),
        arch=_tone(
            pri if not dark else sec, base - 0.06 if not dark else base + 0.07, 0.045, warmth
        ),
        sphere_a=_tone(acc, 0.74 if not dark else 0.6, 0.11, warmth * 0.3),
        sphere_b=_tone(pri, 0.8 if not dark else 0.5, 0.06, warmth * 0.3),
        pattern_dark=_tone(hue, base - 0.04, cwall, warmth),
        pattern_light=_tone(hue, min(0.99, base + 0.035), cwall, warmth),
        shadow=_tone(hue, 0.32 if not dark else 0.08, 0.03, warmth),
        fleck=(
            _tone(acc, 0.7, 0.1),
            _tone(pri, 0.55, 0.06),
            _tone(sec, 0.8, 0.05),
            _tone(bg, 0.6, 0.01),
        ),
    )


def backdrop_in(colours: Colours, hex_colour: str) -> Colours:
    """Walls and floor in exactly this colour's hue and chroma (lightness steps only)."""
    r, g, b = hex_to_rgb(hex_colour)
    lum, a, bb = srgb_to_oklab((r / 255, g / 255, b / 255))
    chroma = math.hypot(a, bb)

    def at(dl: float) -> RGB:
        return _tone(hex_colour, min(0.99, max(0.05, lum + dl)), chroma)

    return replace(
        colours,
        wall_top=at(-0.04),
        wall=at(0.0),
        floor=at(0.01),
        floor_front=at(-0.03),
        glow=at(0.05),
        pattern_dark=at(-0.02),
        pattern_light=at(0.02),
        marble=at(0.03),
    )


# --------------------------------------------------------------------------- choices


@dataclass(frozen=True)
class Scene:
    """The concrete scene choices; recorded in ``Generated.params``."""

    backdrop: str
    props: tuple[str, ...]
    pattern: str
    mood: str
    finish: str
    reflection: bool
    matched: tuple[str, ...] = ()


def _words(request: SceneRequest) -> str:
    text = " ".join([request.prompt, *(str(v) for v in request.slots.values())])
    return " " + re.sub(r"[^a-z0-9]+", " ", text.lower()) + " "


def _matches(text: str, negative: str) -> set[str]:
    hits = set()
    for tag, words in _KEYWORDS.items():
        if any(f" {w} " in text and f" {w} " not in negative for w in words):
            hits.add(tag)
    return hits


def choose_scene(request: SceneRequest, rng: np.random.Generator) -> Scene:
    """Pick backdrop, props, pattern, mood and finish: keywords first, then the RNG. The
    RNG is always drawn the same number of times so choices stay independent."""
    negative = " " + re.sub(r"[^a-z0-9]+", " ", request.negative_prompt.lower()) + " "
    hits = _matches(_words(request), negative)
    rolls = rng.random(8)

    def pick(kind: str, options: Sequence[str], roll: float, weights: Sequence[float]) -> str:
        named = [o for o in options if f"{kind}:{o}" in hits]
        if named:
            return named[0]
        allowed = [
            (o, w)
            for o, w in zip(options, weights, strict=True)
            if not any(f" {k} " in negative for k in _KEYWORDS.get(f"{kind}:{o}", ()))
        ]
        total = sum(w for _, w in allowed)
        acc = 0.0
        for option, weight in allowed:
            acc += weight / total
            if roll < acc:
                return option
        return allowed[-1][0]

    backdrop = pick("backdrop", BACKDROPS, rolls[0], (0.45, 0.25, 0.3))
    mood = pick("mood", MOODS, rolls[1], (0.5, 0.1, 0.05, 0.2, 0.15))
    pattern = pick("pattern", PATTERNS, rolls[2], (0.6, 0.14, 0.14, 0.12))
    finish = pick("finish", FINISHES, rolls[3], (0.6, 0.25, 0.15))
    named_props = tuple(p for p in PROPS if f"prop:{p}" in hits)
    props = named_props or tuple(
        p
        for p, roll, chance in zip(PROPS, rolls[4:7], (0.55, 0.3, 0.3), strict=True)
        if roll < chance and f" {p} " not in negative
    )
    if backdrop == "gradient" and "arch" in props:  # an arch needs a floor to stand on
        if "prop:arch" not in hits:
            props = tuple(p for p in props if p != "arch")
        elif "backdrop:gradient" not in hits:
            backdrop = "sweep"
    reflection = "reflection:yes" in hits or bool(mood == "dark" and rolls[7] < 0.5)
    return Scene(backdrop, props, pattern, mood, finish, reflection, tuple(sorted(hits)))


def scene_seed(request: SceneRequest) -> int:
    """A process-independent RNG seed from the request seed, prompt, slots and style."""
    doc = json.dumps(
        [request.seed, request.prompt, sorted(request.slots.items()), request.style],
        ensure_ascii=True,
        sort_keys=True,
    )
    return int.from_bytes(hashlib.sha256(doc.encode()).digest()[:8], "big")


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
    lw, lh = -(-w // _LOW), -(-h // _LOW)
    xs = (np.arange(lw, dtype=np.float32) + 0.5) * _LOW
    ys = (np.arange(lh, dtype=np.float32) + 0.5) * _LOW
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
    lw, lh = -(-w // _LOW), -(-h // _LOW)
    small = Image.new("L", (lw, lh), 0)
    d = ImageDraw.Draw(small)
    grow = 0.1 * min(w, h)
    z = layout.product
    d.rectangle(
        (
            (z.x0 - grow) / _LOW,
            (z.y0 - grow) / _LOW,
            (z.x1 + grow) / _LOW,
            (stage.horizon - 0.04 * h) / _LOW,
        ),
        fill=255,
    )
    pad = 0.05 * min(w, h)
    for b in (layout.copy, layout.logo):
        d.rectangle(
            ((b.x0 - pad) / _LOW, (b.y0 - pad) / _LOW, (b.x1 + pad) / _LOW, (b.y1 + pad) / _LOW),
            fill=0,
        )
    small = small.filter(ImageFilter.GaussianBlur(pad / _LOW * 0.6))
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
        _flecks(
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
        region.paste(Image.new("RGB", size, _int3(ink)), (0, 0), ImageChops.multiply(dots, mask))
    else:
        shade, light = _flute_field(w, h, max(16, round(min(w, h) * 0.04)))
        region.paste(
            Image.new("RGB", size, _int3(colours.pattern_dark)),
            (0, 0),
            ImageChops.multiply(shade.crop(box), mask),
        )
        region.paste(
            Image.new("RGB", size, _int3(colours.pattern_light)),
            (0, 0),
            ImageChops.multiply(light.crop(box), mask),
        )
    img.paste(region, box[:2])


def _int3(c: RGB) -> tuple[int, int, int]:
    return round(c[0]), round(c[1]), round(c[2])


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


def _flecks(
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
        dl.polygon(pts, fill=_int3(colours.fleck[kinds[i]]))
        dm.polygon(pts, fill=level)
    if clip is not None:
        mask = ImageChops.multiply(mask, clip)
    img.paste(layer, (region.x0, region.y0), mask)


def _shade_cylinder(u: F32) -> F32:
    """Lambert shading across a vertical cylinder lit from the upper left."""
    nz = np.sqrt(np.clip(1.0 - u * u, 0.0, 1.0))
    ndl = u * _LIGHT[0] + nz * _LIGHT[2]
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
        _flecks(
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
    img.paste(Image.new("RGB", (w, h), _int3(colours.shadow)), (offset[0] + dx, offset[1]), shadow)
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
    img.paste(Image.new("RGB", foot.size, _int3(colours.shadow)), (offset[0], b.y1 - 2), foot)


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
        ndl = gx * _LIGHT[0] - gy * _LIGHT[1] + nz * _LIGHT[2]
        diffuse = np.clip((ndl + 0.35) / 1.35, 0.0, 1.0)
        bounce = 0.08 * np.clip(gy, 0, 1) * nz  # light bounced from the floor
        spec = 0.18 * np.clip(ndl, 0, 1) ** 24
        k = 0.55 + 0.55 * diffuse + bounce
        rgb = np.asarray(base, dtype=np.float32) * k[..., None] + 255.0 * spec[..., None]
        cover = np.clip((1.0 - np.sqrt(d2)) * r + 0.5, 0.0, 1.0)
        region = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")
        img.paste(region, (x0, y0), Image.fromarray(np.rint(cover * 255).astype(np.uint8)))


# --------------------------------------------------------------------------- shadows


def draw_shadows(
    img: Image.Image, colours: Colours, stage: Stage, product: Image.Image | None
) -> None:
    """Contact shadows (tight and dark right under each base), wide soft ambient
    occlusion, and a faint cast shadow away from the key light; drawn at 1/4 size."""
    w, h = img.size
    lw, lh = -(-w // _SHADOW), -(-h // _SHADOW)
    dens = Image.new("L", (lw, lh), 0)
    if stage.podium:
        cx, _, bottom, rx, ry = stage.podium
        _blob(dens, cx, bottom + ry * 0.15, rx * 1.02, ry * 1.05, 150, ry * 0.25)
        _blob(dens, cx + rx * 0.15, bottom + ry * 0.3, rx * 1.5, ry * 1.8, 70, ry * 1.2)
    for sx, sy, r, i in stage.spheres:
        if i:
            _blob(dens, sx, sy + r * 0.97, r * 0.55, r * 0.09, 170, r * 0.05)
            _blob(dens, sx + r * 0.25, sy + r, r * 1.1, r * 0.22, 70, r * 0.25)
    if stage.podium is None:
        bx = stage.product.center[0]
        bw = stage.base_w
        _blob(dens, bx, stage.base_y - bw * 0.03, bw * 0.53, bw * 0.075, 215, bw * 0.025)
        _blob(dens, bx + bw * 0.06, stage.base_y, bw * 0.7, bw * 0.09, 60, bw * 0.07)
        if product is not None and stage.podium is None:
            _cast(dens, product, stage)
    _apply_shadow(img, dens, colours.shadow)


def _apply_shadow(img: Image.Image, dens: Image.Image, colour: RGB) -> None:
    """Multiply the shadow colour into ``img`` by the 1/4-size density map, touching only
    the map's non-empty box."""
    bbox = dens.getbbox()
    if bbox is None:
        return
    s = _SHADOW
    x0, y0 = max(0, bbox[0] - 1), max(0, bbox[1] - 1)
    x1, y1 = min(dens.width, bbox[2] + 1), min(dens.height, bbox[3] + 1)
    small = dens.crop((x0, y0, x1, y1))
    shade = Image.new("RGB", small.size, _int3(colour))
    tint = Image.composite(shade, Image.new("RGB", small.size, (255, 255, 255)), small)
    bx0, by0 = x0 * s, y0 * s
    bx1, by1 = min(img.width, x1 * s), min(img.height, y1 * s)
    tint = tint.resize(
        (bx1 - bx0, by1 - by0),
        Image.Resampling.BILINEAR,
        box=(0, 0, (bx1 - bx0) / s, (by1 - by0) / s),
    )
    region = img.crop((bx0, by0, bx1, by1))
    img.paste(ImageChops.multiply(region, tint), (bx0, by0))


def _blob(
    dens: Image.Image, cx: float, cy: float, rx: float, ry: float, level: int, blur: float
) -> None:
    """Add a blurred ellipse (canvas coordinates) to the shadow density map."""
    s = _SHADOW
    pad = int(blur / s * 3) + 2
    x0, y0 = int((cx - rx) / s) - pad, int((cy - ry) / s) - pad
    x1, y1 = int((cx + rx) / s) + pad + 1, int((cy + ry) / s) + pad + 1
    if x1 <= x0 or y1 <= y0:
        return
    blob = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(blob).ellipse(
        ((cx - rx) / s - x0, (cy - ry) / s - y0, (cx + rx) / s - x0, (cy + ry) / s - y0), fill=level
    )
    blob = blob.filter(ImageFilter.GaussianBlur(max(0.6, blur / s)))
    region = dens.crop((x0, y0, x1, y1))
    dens.paste(ImageChops.lighter(region, _screen(region, blob)), (x0, y0))


def _screen(a: Image.Image, b: Image.Image) -> Image.Image:
    return ImageChops.screen(a, b)


def _cast(dens: Image.Image, product: Image.Image, stage: Stage) -> None:
    """The product silhouette laid on the floor behind it, away from the front-left key
    light: squashed, sheared to the right, fading and blurring with distance."""
    s = _SHADOW
    pw, ph = product.size
    sw = max(1, pw // s)
    flat_h = max(2, round(ph / s * 0.28))
    flat = product.getchannel("A").resize((sw, flat_h), Image.Resampling.BILINEAR)
    lean = round(sw * 0.3)
    out_w = sw + lean + 2
    # output pixel (x, y) samples input (x - lean * (1 - y / flat_h), y): the top leans right
    sheared = flat.transform(
        (out_w, flat_h),
        Image.Transform.AFFINE,
        (1, lean / flat_h, -lean, 0, 1, 0),
        resample=Image.Resampling.BILINEAR,
    )
    fade = np.linspace(0.0, 1.0, flat_h, dtype=np.float32)[:, None] ** 1.5 * 0.26
    arr = np.asarray(sheared, dtype=np.float32) * fade
    near = Image.fromarray(arr.astype(np.uint8), "L").filter(
        ImageFilter.GaussianBlur(max(1.0, flat_h * 0.05))
    )
    far = near.filter(ImageFilter.GaussianBlur(max(2.0, flat_h * 0.3)))
    ramp = Image.fromarray(
        np.repeat(np.linspace(255, 0, flat_h, dtype=np.uint8)[:, None], out_w, axis=1), "L"
    )
    cast = Image.composite(far, near, ramp)
    x0 = int(stage.product.x0 / s)
    y0 = int(stage.base_y / s) - flat_h
    region = dens.crop((x0, y0, x0 + out_w, y0 + flat_h))
    dens.paste(ImageChops.lighter(region, cast), (x0, y0))


def draw_reflection(img: Image.Image, product: Image.Image, stage: Stage) -> None:
    """A faint mirrored product fading out quickly, as on a glossy surface."""
    pw, ph = product.size
    depth = max(2, round(ph * 0.3))
    part = product.crop((0, ph - depth, pw, ph)).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    alpha = np.asarray(part.getchannel("A"), dtype=np.float32)
    fade = np.linspace(0.2, 0.0, depth, dtype=np.float32)[:, None] ** 1.3 / 0.2**0.3
    part.putalpha(Image.fromarray((alpha * fade).astype(np.uint8), "L"))
    part = part.filter(ImageFilter.GaussianBlur(1.0))
    img.paste(part.convert("RGB"), (stage.product.x0, stage.base_y - 2), part.getchannel("A"))


def add_grain(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """±2 levels of seeded monochrome grain: breaks up banding in the smooth gradients."""
    grain = _grain(img.width, img.height, int(rng.integers(0, 4))).convert("RGB")
    return ImageChops.add(img, grain, 1.0, -2)


@lru_cache(maxsize=20)
def _grain(w: int, h: int, variant: int) -> Image.Image:
    """One of four fixed grain fields per size (cached: generating it costs more than
    applying it). Triangular noise in 0..4 from a fixed seed per variant."""
    rng = np.random.default_rng(0x5EED + variant)
    tile = rng.integers(0, 3, (256, 256), dtype=np.uint8) + rng.integers(
        0, 3, (256, 256), dtype=np.uint8
    )
    noise = np.tile(tile, (-(-h // 256), -(-w // 256)))[:h, :w]
    return Image.fromarray(np.ascontiguousarray(noise), "L")


# --------------------------------------------------------------------------- backend


_OVERRIDES = ("backdrop", "props", "pattern", "mood", "finish", "reflection")


def _apply_overrides(scene: Scene, params: dict[str, Any]) -> Scene:
    """Explicit ``request.params`` win over keywords and the RNG (for reproduction)."""
    values = {k: getattr(scene, k) for k in (*_OVERRIDES, "matched")}
    for key in _OVERRIDES:
        if key in params:
            values[key] = tuple(params[key]) if key == "props" else params[key]
    return Scene(**values)


def render(request: SceneRequest) -> Generated:
    """Render one studio scene for ``request``."""
    seed = scene_seed(request)
    rng = np.random.default_rng(seed)
    scene = _apply_overrides(choose_scene(request, rng), dict(request.params))
    # style params may recolour the set (a seasonal backdrop, say): {"palette": {role: hex}}
    # tints the whole set; {"backdrop_colour": hex} paints walls and floor in that colour.
    palette = {**request.palette, **dict(request.params.get("palette") or {})}
    colours = derive_colours(palette, scene.mood)
    if request.params.get("backdrop_colour"):
        colours = backdrop_in(colours, str(request.params["backdrop_colour"]))
    cut = load_cutout(request.product) if request.product is not None else None
    if cut is None and "podium" not in scene.props:  # the hero sphere needs its podium
        scene = replace(scene, props=("podium", *scene.props))
    if request.layout.width != request.width or request.layout.height != request.height:
        raise ValueError("the layout was planned for another canvas size")
    stage = plan_stage(request.layout, cut, scene)
    product = None
    if cut is not None:
        product = cut.image.resize(
            (stage.product.width, stage.product.height), Image.Resampling.LANCZOS
        )
    img = render_backdrop(request.layout, scene, colours, stage, rng)
    draw_pattern(img, request.layout, scene, colours, stage, rng)
    draw_arch(img, colours, stage)
    draw_shadows(img, colours, stage, product)
    draw_podium(img, request.layout, scene, colours, stage, rng)
    if stage.podium and (product is not None or stage.spheres):
        _podium_contact(img, colours, stage)
    draw_spheres(img, colours, stage)
    img = add_grain(img, rng)
    if product is not None:
        if scene.reflection:
            draw_reflection(img, product, stage)
        img.paste(product, (stage.product.x0, stage.product.y0), product)
    cx, cy = stage.product.center
    return Generated(
        image=img,
        focal=(cx / request.width, cy / request.height),
        product_box=stage.product,
        params=_params(scene, colours, stage, seed),
    )


def _podium_contact(img: Image.Image, colours: Colours, stage: Stage) -> None:
    """Contact shadow of the product (or hero sphere) on the podium's top face."""
    assert stage.podium is not None
    w, h = img.size
    lw, lh = -(-w // _SHADOW), -(-h // _SHADOW)
    dens = Image.new("L", (lw, lh), 0)
    bx = stage.product.center[0]
    bw = stage.base_w
    _blob(dens, bx, stage.base_y - bw * 0.03, bw * 0.53, bw * 0.08, 200, bw * 0.025)
    _blob(dens, bx + bw * 0.06, stage.base_y, bw * 0.7, bw * 0.12, 75, bw * 0.08)
    _apply_shadow(img, dens, colours.shadow)


def _params(scene: Scene, colours: Colours, stage: Stage, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "backdrop": scene.backdrop,
        "props": list(scene.props),
        "pattern": scene.pattern,
        "mood": scene.mood,
        "finish": scene.finish,
        "reflection": scene.reflection,
        "keywords": list(scene.matched),
        "colors": colours.as_hex(),
        "horizon_y": round(stage.horizon),
        "product_scale": round(stage.scale, 4),
        "rng_seed": seed,
    }
    if stage.podium:
        out["podium"] = [round(v, 1) for v in stage.podium]
    if stage.arch:
        out["arch"] = list(stage.arch.as_tuple())
    if stage.spheres:
        out["spheres"] = [[round(v, 1) for v in s[:3]] for s in stage.spheres]
    return out


class StudioBackend:
    """Packshot studio scenes from the brand palette; no model weights, deterministic."""

    name = "studio"
    version = "1"
    capabilities = Capabilities(
        text_to_image=True,
        product_placement=True,
        max_batch=1,
        needs_model=False,
        deterministic=True,
    )

    def generate(self, batch: Sequence[SceneRequest]) -> list[Generated]:
        """Render each request in order."""
        return [render(request) for request in batch]
