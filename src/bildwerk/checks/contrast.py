"""WCAG 2.x contrast of every text block against the pixels actually behind its glyphs.

Compose picks text colours from a sample of the scene, but what reaches the reader is the
final creative: scrims, plates and busy backgrounds all change it. So this check re-reads
the pixels. Inside a text box it separates glyphs from background by colour distance to
the text colour, grows the glyphs by their anti-aliased fringe, and takes a low percentile
of the per-pixel contrast of what remains: a headline that is readable on 90 % of its
background but vanishes into a bright highlight still fails, which a mean would hide.

Params (``qa.checks.contrast.params``):

- ``percentile`` (10): which percentile of the per-pixel background contrast counts.
- ``warn_below_aaa`` (false): warn when a block passes AA but not AAA (7:1 / 4.5:1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from bildwerk.checks.base import CheckContext, CheckResult, TextSpec
from bildwerk.colour import contrast_ratio, hex_to_srgb, relative_luminance, srgb_to_hex
from bildwerk.geometry import Box

PERCENTILE = 10.0
AA_NORMAL, AA_LARGE = 4.5, 3.0
AAA_NORMAL, AAA_LARGE = 7.0, 4.5
LARGE_PX = 24.0  # 18 pt at 1× display density
LARGE_BOLD_PX = 18.66  # 14 pt bold
BOLD_ROLES = ("headline", "cta")  # compose sets both in the bold face

GLYPH_DISTANCE = 48.0  # RGB distance to the text colour that still counts as ink
STROKE_LIMIT = 0.3  # thicker than this × font size is a background patch, not a stroke
MIN_BACKGROUND = 0.03  # below this share of the box, glyphs and background are one colour
SAMPLE_ABOVE = 40_000  # boxes larger than this (px) are read on a 2×2 lattice

Mask = NDArray[np.bool_]


def _window_sum(mask: Mask, k: int, outside: bool) -> NDArray[np.int32]:
    """Count of True pixels in the k×k window around each pixel (k odd), via an integral
    image so cost does not grow with k; pixels beyond the edge count as ``outside``."""
    p = k // 2
    padded = np.pad(mask, p, constant_values=outside)
    ii = np.zeros((padded.shape[0] + 1, padded.shape[1] + 1), dtype=np.int32)
    np.cumsum(padded, axis=0, dtype=np.int32, out=ii[1:, 1:])
    np.cumsum(ii[1:, 1:], axis=1, out=ii[1:, 1:])
    out: NDArray[np.int32] = ii[k:, k:] - ii[:-k, k:] - ii[k:, :-k] + ii[:-k, :-k]
    return out


def erode(mask: Mask, k: int) -> Mask:
    out: Mask = _window_sum(mask, k, True) == k * k
    return out


def dilate(mask: Mask, k: int) -> Mask:
    out: Mask = _window_sum(mask, k, False) > 0
    return out


def background_mask(pixels: NDArray[np.uint8], colour: str, font_size: int) -> Mask:
    """True where a text box shows background rather than glyphs.

    Ink is what lies near the text colour, minus patches too thick to be strokes (a
    background that happens to match the text colour is background, and exactly where
    the text disappears). When almost nothing is left, text and background are the same
    colour and the whole box counts as background, which then measures ~1:1.
    """
    diff = pixels.astype(np.int16) - hex_to_srgb(colour).astype(np.int16)
    near = np.einsum("ijk,ijk->ij", diff, diff, dtype=np.int32) < int(GLYPH_DISTANCE**2)
    thick = max(3, round(STROKE_LIMIT * font_size) | 1)
    patches = dilate(erode(near, thick), thick)
    fringe = 2 * max(1, round(font_size / 24)) + 1
    background: Mask = ~dilate(near & ~patches, fringe)
    if background.sum() < MIN_BACKGROUND * background.size:
        return np.ones_like(background)
    return background


def background_pixels(pixels: NDArray[np.uint8], colour: str, font_size: int) -> NDArray[np.uint8]:
    """The background pixels of a text box as (n, 3) rows (see :func:`background_mask`)."""
    out: NDArray[np.uint8] = pixels[background_mask(pixels, colour, font_size)]
    return out


def is_large(spec: TextSpec, density: int) -> bool:
    """WCAG large-scale text: 18 pt, or 14 pt bold, measured in CSS px at 1×."""
    px = spec.font_size / max(1, density)
    return px >= LARGE_PX or (spec.role in BOLD_ROLES and px >= LARGE_BOLD_PX)


def _clip(box: Box, width: int, height: int, pad: int) -> Box | None:
    x0, y0 = max(0, box.x0 - pad), max(0, box.y0 - pad)
    x1, y1 = min(width, box.x1 + pad), min(height, box.y1 + pad)
    return Box(x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _measure(image: Image.Image, spec: TextSpec, percentile: float) -> dict[str, Any] | None:
    text_lum = relative_luminance(hex_to_srgb(spec.color))
    if spec.background is not None:
        ratio = float(contrast_ratio(text_lum, relative_luminance(hex_to_srgb(spec.background))))
        return {"contrast": ratio, "background": spec.background, "source": "plate"}
    # small text needs a wider look around its glyphs, or too little background is read
    box = _clip(spec.box, image.width, image.height, max(6, spec.font_size // 8))
    if box is None:
        return None
    pixels = np.asarray(image.crop(box.as_tuple()).convert("RGB"))
    mask = background_mask(pixels, spec.color, spec.font_size)
    share = float(mask.mean())
    # The glyph mask needs every pixel; the percentile does not: a big headline box is
    # read on a 2×2 lattice (still tens of thousands of background pixels).
    step = 2 if mask.size > SAMPLE_ABOVE else 1
    bg = pixels[::step, ::step][mask[::step, ::step]]
    ratios = contrast_ratio(text_lum, relative_luminance(bg))
    return {
        "contrast": float(np.percentile(ratios, percentile)),
        "background": srgb_to_hex(np.median(bg, axis=0)),
        "source": "pixels",
        "background_share": round(share, 3),
    }


class ContrastCheck:
    """Fails when any text block is below WCAG AA against the pixels behind it."""

    name = "contrast"

    def run(self, image: Image.Image, context: CheckContext) -> CheckResult:
        if not context.texts:
            return CheckResult(self.name, "skip", reason="no text blocks to measure")
        percentile = float(context.params.get("percentile", PERCENTILE))
        warn_aaa = bool(context.params.get("warn_below_aaa", False))
        blocks: list[dict[str, Any]] = []
        failed: list[str] = []
        below_aaa: list[str] = []
        for spec in context.texts:
            found = _measure(image, spec, percentile)
            if found is None:
                failed.append(f"{spec.role} lies outside the image")
                continue
            large = is_large(spec, context.channel.density)
            need_aa = AA_LARGE if large else AA_NORMAL
            need_aaa = AAA_LARGE if large else AAA_NORMAL
            ratio = found["contrast"]
            level = "AAA" if ratio >= need_aaa else "AA" if ratio >= need_aa else "below AA"
            if ratio < need_aa:
                failed.append(f"{spec.role} {ratio:.2f}:1 < {need_aa}:1")
            elif ratio < need_aaa:
                below_aaa.append(f"{spec.role} {ratio:.2f}:1 < AAA {need_aaa}:1")
            blocks.append(
                {
                    "role": spec.role,
                    "box": list(spec.box.as_tuple()),
                    "color": spec.color,
                    **found,
                    "contrast": round(ratio, 2),
                    "large": large,
                    "required": need_aa,
                    "required_aaa": need_aaa,
                    "level": level,
                    "score": round(min(1.0, ratio / need_aaa), 3),
                }
            )
        score = min((b["score"] for b in blocks), default=0.0)
        evidence = {"percentile": percentile, "blocks": blocks}
        if failed:
            reason = "below WCAG AA: " + "; ".join(failed)
            return CheckResult(self.name, "fail", score, reason, evidence)
        if warn_aaa and below_aaa:
            reason = "below WCAG AAA: " + "; ".join(below_aaa)
            return CheckResult(self.name, "warn", score, reason, evidence)
        return CheckResult(self.name, "pass", score, None, evidence)
