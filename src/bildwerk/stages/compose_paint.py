"""Painting copy onto a scene: text colour chosen from the pixels it lands on (WCAG
contrast), a scrim where no colour is enough, text masks and the CTA plate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from bildwerk.colour import contrast_ratio, relative_luminance
from bildwerk.config.brand import BrandKit, hex_to_rgb
from bildwerk.geometry import Box, Layout
from bildwerk.textlayout import Shaping, TextFit, is_cjk_breakable

Rgb = tuple[int, int, int]
FloatArray = NDArray[np.float64]

MIN_CONTRAST = 4.5  # WCAG AA for body text; headlines get the same bar on busy scenes
MIN_CONTRAST_LARGE = 3.0  # WCAG AA for large text (bold >= 14 pt, i.e. ~19 px at 1x)
LARGE_BOLD_PX = 19
SUPERSAMPLE = 4  # anti-aliasing factor for the CTA plate's rounded corners


# --- colour ------------------------------------------------------------------------------


def luminance(rgb: FloatArray) -> FloatArray:
    """WCAG relative luminance of sRGB pixels (last axis = channels)."""
    return relative_luminance(rgb.astype(np.float64))


def contrast(a: Rgb, b: Rgb) -> float:
    la, lb = (float(luminance(np.array(c, dtype=np.float64))) for c in (a, b))
    return float(contrast_ratio(la, lb))


def _contrast_p10(color: Rgb, pixels: FloatArray) -> float:
    """10th-percentile contrast of ``color`` over ``pixels``: busy backgrounds score low
    even when their mean would pass."""
    lum = luminance(pixels)
    lc = float(luminance(np.array(color, dtype=np.float64)))
    ratio = (np.maximum(lum, lc) + 0.05) / (np.minimum(lum, lc) + 0.05)
    return float(np.percentile(ratio, 10))


def _sample(image: Image.Image, box: Box) -> FloatArray:
    """Pixels under ``box`` (subsampled to ~20k), as float RGB rows."""
    box = clip_box(box, image.width, image.height)
    arr = np.asarray(image.crop(box.as_tuple()), dtype=np.float64).reshape(-1, 3)
    step = max(1, len(arr) // 20000)
    out: FloatArray = arr[::step]
    return out


@dataclass(frozen=True)
class TextColour:
    hex: str
    source: str
    contrast: float
    scrim: float


def choose_text_colour(image: Image.Image, region: Box, brand: BrandKit) -> TextColour:
    """The brand text colour if it reads on this part of the scene, else the palette
    background or white, whichever contrasts best."""
    pixels = _sample(image, region)
    pal = brand.palette
    candidates = [
        ("palette.text", pal.text),
        ("palette.background", pal.background),
        ("white", "#ffffff"),
    ]
    if brand.overlay.text_colour == "palette":
        candidates = candidates[:1]
    scored = [(name, value, _contrast_p10(hex_to_rgb(value), pixels)) for name, value in candidates]
    for name, value, score in scored:
        if score >= MIN_CONTRAST:
            return TextColour(value, name, round(score, 2), 0.0)
    name, value, score = max(scored, key=lambda t: t[2])
    return TextColour(value, name, round(score, 2), 0.0)


def on_plate_colour(fill: Rgb, brand: BrandKit, large: bool) -> str:
    """Label colour for a CTA plate: the first brand-ish option that reaches AA (3:1 for
    large bold labels, as WCAG allows), else the one with the most contrast."""
    pal = brand.palette
    options = [pal.background, "#ffffff", pal.text, "#111111"]
    need = MIN_CONTRAST_LARGE if large else MIN_CONTRAST
    for value in options:
        if contrast(hex_to_rgb(value), fill) >= need:
            return value
    return max(options, key=lambda v: contrast(hex_to_rgb(v), fill))


def plate_colour(image: Image.Image, region: Box, brand: BrandKit) -> str:
    """Accent, unless it vanishes into the scene where primary stands out more."""
    mean = _sample(image, region).mean(axis=0)
    around: Rgb = (int(mean[0]), int(mean[1]), int(mean[2]))
    accent, primary = brand.palette.accent, brand.palette.primary
    ca, cp = (contrast(hex_to_rgb(c), around) for c in (accent, primary))
    return primary if ca < 1.5 and cp > ca else accent


# --- scrim -------------------------------------------------------------------------------


def _scrim_mask(
    size: tuple[int, int], region: Box, avoid: Box, vertical: bool, alpha: float
) -> Image.Image:
    """A soft gradient from the nearest canvas edge behind the copy.

    The fade is long (over a quarter of the canvas) and centred on the text's far edge,
    but ends barely inside the product zone, so the product keeps its exposure.
    """
    w, h = size
    length = h if vertical else w
    near, far = (region.y0, region.y1) if vertical else (region.x0, region.x1)
    stop_near, stop_far = (avoid.y0, avoid.y1) if vertical else (avoid.x0, avoid.x1)
    fade = round(length * 0.28)
    pos = np.arange(length, dtype=np.float64)
    if near < length - far:  # copy on the start side: shade from the start edge
        end = min(far + fade // 2, stop_near + (stop_far - stop_near) // 8)
        start = max(near, end - fade)
        t = (pos - start) / max(1, end - start)
    else:
        end = max(near - fade // 2, stop_far - (stop_far - stop_near) // 8)
        start = min(far, end + fade)
        t = (start - pos) / max(1, start - end)
    t = np.clip(t, 0.0, 1.0)
    ramp = alpha * (1.0 - t * t * (3.0 - 2.0 * t))
    line = np.round(ramp * 255).astype(np.uint8)
    grid = np.repeat(line[:, None], w, axis=1) if vertical else np.repeat(line[None, :], h, 0)
    return Image.fromarray(grid, "L")


def apply_scrim(
    image: Image.Image, region: Box, layout: Layout, colour: TextColour
) -> tuple[Image.Image, TextColour]:
    """Darken behind the copy just enough for light text to reach AA. Dark scrims read as
    natural shade on photos, so dark text is swapped for white first."""
    if float(luminance(np.array(hex_to_rgb(colour.hex), dtype=np.float64))) < 0.4:
        colour = TextColour("#ffffff", "white", colour.contrast, 0.0)
    vertical = layout.orientation == "portrait"
    tint = Image.new("RGB", image.size, (0, 0, 0))
    out, score, alpha = image, colour.contrast, 0.0
    for alpha in (0.3, 0.45, 0.6, 0.75):
        mask = _scrim_mask(image.size, region, layout.product, vertical, alpha)
        out = Image.composite(tint, image, mask)
        score = _contrast_p10(hex_to_rgb(colour.hex), _sample(out, region))
        if score >= MIN_CONTRAST:
            break
    return out, TextColour(colour.hex, colour.source, round(score, 2), alpha)


# --- drawing -----------------------------------------------------------------------------


def draw_lines(size: tuple[int, int], fit: TextFit, origins: list[tuple[int, int]]) -> Image.Image:
    """The block's glyphs as an 8-bit coverage mask the size of the canvas."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    font = fit.load()
    shaping = Shaping.of(fit.direction, fit.language)
    for line, xy in zip(fit.lines, origins, strict=True):
        draw.text(
            xy,
            line,
            font=font,
            fill=255,
            anchor="ls",
            direction=shaping.direction,
            language=shaping.language,
        )
    return mask


def paint_mask(image: Image.Image, mask: Image.Image, colour: str) -> Box | None:
    """Fill ``colour`` through ``mask``; returns the box of the pixels actually drawn."""
    bbox = mask.getbbox()
    if bbox is None:
        return None
    box = Box(*bbox)
    solid = Image.new("RGB", (box.width, box.height), hex_to_rgb(colour))
    image.paste(solid, (box.x0, box.y0), mask.crop(bbox))
    return box


def rounded_plate(image: Image.Image, box: Box, colour: str) -> None:
    """An anti-aliased pill: drawn 4× larger and reduced, since Pillow's shapes are not
    anti-aliased."""
    k = SUPERSAMPLE
    big = Image.new("L", (box.width * k, box.height * k), 0)
    ImageDraw.Draw(big).rounded_rectangle(
        (0, 0, box.width * k - 1, box.height * k - 1), radius=box.height * k // 2, fill=255
    )
    mask = big.resize((box.width, box.height), Image.Resampling.BOX)
    image.paste(Image.new("RGB", mask.size, hex_to_rgb(colour)), (box.x0, box.y0), mask)


def label_offset(fit: TextFit) -> int:
    """Baseline offset that centres a CTA label in its plate: cap height for Latin-like
    scripts (descenders hang below), the ink box for Arabic and CJK."""
    _, top, _, bottom = fit.extents[0]
    if any(is_cjk_breakable(c) or 0x0590 <= ord(c) <= 0x08FF for c in fit.lines[0]):
        return -(top + bottom) // 2
    cap = fit.load().getbbox("H", anchor="ls")[1]
    return int(-cap) // 2


# --- the stage ---------------------------------------------------------------------------


def clip_box(box: Box, w: int, h: int) -> Box:
    x0, y0 = min(max(0, box.x0), w - 1), min(max(0, box.y0), h - 1)
    return Box(x0, y0, max(x0 + 1, min(w, box.x1)), max(y0 + 1, min(h, box.y1)))
