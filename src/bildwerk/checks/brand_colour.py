"""Brand colour: does the creative stay in the brand's colour world?

A downscaled copy of the creative (product excluded: packaging may be any colour) is
compared pixel by pixel with the palette in CIELAB using CIEDE2000. Generated backdrops
are rarely the exact palette colours: they are tints and shades of them, lit and
vignetted. So each palette colour is expanded into a short ramp of tints (mixed towards
white) and shades (towards black), lightness differences count half (kL = 2), and
near-neutral pixels (whites, greys, blacks, soft shadows) are always allowed. What is
left beyond the tolerance is the off-palette share. Dominant colours (k-means in CIELAB,
fixed seed) are reported with their nearest brand colour for the reviewer.

Params (``qa.checks.brand_colour.params``):

- ``tolerance_de`` (8): ΔE00 (kL = 2) beyond which a pixel is off-palette, measured
  against the palette *and its tints and shades*, so it only has to absorb lighting and
  rendering drift. Calibrated on studio renders: renders of the brand's own palette are
  ≤ 3 % off-palette at 8, renders of two other palettes (green, purple) are 82-99 % off;
  at 10, half of those pale off-brand renders would pass. Photographic backends drift
  more: raise it per channel or backend if they warn on on-brand scenes.
- ``neutral_chroma`` (5): C*ab below which a pixel is neutral (white, grey, black) and
  allowed; pale brand tints sit around 6-12, so this must stay low.
- ``warn_off_palette_share`` (0.10) / ``max_off_palette_share`` (0.25): warn / fail above.
- ``clusters`` (6): dominant colours to report.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from bildwerk.checks.base import CheckContext, CheckResult
from bildwerk.colour import chroma, ciede2000, hex_to_srgb, lab_to_srgb, srgb_to_hex, srgb_to_lab
from bildwerk.geometry import Box

TOLERANCE_DE = 8.0
NEUTRAL_CHROMA = 5.0
WARN_OFF_PALETTE_SHARE = 0.10
MAX_OFF_PALETTE_SHARE = 0.25
CLUSTERS = 6
WORK_SIZE = 128  # longest side of the measured copy (at most)
QUANT_BITS = 2  # colours are binned to 6 bits a channel: ≤ 1.5 ΔE00, ~10× fewer to measure
K_L = 2.0  # lightness weight: tints and shades of a brand colour stay close to it
TINTS = (0.25, 0.5, 0.75)  # mixed towards white
SHADES = (0.25, 0.5)  # mixed towards black
_SEED = 0

Floats = NDArray[np.float64]


def references(context: CheckContext) -> tuple[list[str], list[str], Floats]:
    """Brand colours with their tints and shades: (hex, label, Lab) per reference."""
    pal = context.brand.palette
    named = [(role, str(getattr(pal, role))) for role in ("primary", "secondary", "accent")]
    named += [("text", pal.text), ("background", pal.background)]
    named += [(f"extra[{i}]", value) for i, value in enumerate(pal.extra)]
    hexes: list[str] = []
    labels: list[str] = []
    rgbs: list[Floats] = []
    for role, value in named:
        rgb = hex_to_srgb(value)
        ramp = [(role, rgb)]
        ramp += [(f"{role} tint {t:.0%}", rgb + (255.0 - rgb) * t) for t in TINTS]
        ramp += [(f"{role} shade {s:.0%}", rgb * (1.0 - s)) for s in SHADES]
        for label, colour in ramp:
            hexes.append(value if label == role else srgb_to_hex(colour))
            labels.append(label)
            rgbs.append(colour)
    return hexes, labels, srgb_to_lab(np.array(rgbs))


def _measured_pixels(image: Image.Image, excluded: list[Box]) -> NDArray[np.uint8]:
    """(n, 3) uint8 pixels of a ≤ WORK_SIZE copy (box-filtered), without the excluded boxes."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    factor = max(1, -(-max(image.width, image.height) // WORK_SIZE))
    small = np.asarray(rgb.reduce(factor))
    h, w = small.shape[:2]
    keep = np.ones((h, w), dtype=bool)
    sx, sy = w / image.width, h / image.height
    for box in excluded:
        keep[
            int(box.y0 * sy) : int(np.ceil(box.y1 * sy)),
            int(box.x0 * sx) : int(np.ceil(box.x1 * sx)),
        ] = False
    out: NDArray[np.uint8] = small[keep]
    return out


def kmeans(points: Floats, weights: Floats, k: int, iters: int = 20) -> tuple[Floats, Floats]:
    """Weighted k-means with k-means++ seeding from a fixed seed: (centres, shares)."""
    rng = np.random.default_rng(_SEED)
    k = min(k, len(points))
    p = weights / weights.sum()
    centres = [points[rng.choice(len(points), p=p)]]
    for _ in range(1, k):
        d2 = np.min([((points - c) ** 2).sum(1) for c in centres], axis=0) * weights
        if d2.sum() <= 0:
            break
        centres.append(points[rng.choice(len(points), p=d2 / d2.sum())])
    c = np.array(centres)
    for _ in range(iters):
        label = ((points[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
        mass = np.bincount(label, weights=weights, minlength=len(c))
        sums = np.stack(
            [
                np.bincount(label, weights=weights * points[:, j], minlength=len(c))
                for j in range(3)
            ],
            axis=1,
        )
        new = np.where(mass[:, None] > 0, sums / np.maximum(mass, 1e-12)[:, None], c)
        converged = np.allclose(new, c, atol=1e-3)
        c = new
        if converged:
            break
    label = ((points[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
    mass = np.bincount(label, weights=weights, minlength=len(c))
    keep = mass > 0
    return c[keep], mass[keep] / mass.sum()


class BrandColourCheck:
    """Fails when too much of the frame (outside the product) is off the brand palette."""

    name = "brand_colour"

    def run(self, image: Image.Image, context: CheckContext) -> CheckResult:
        params = context.params
        tolerance = float(params.get("tolerance_de", TOLERANCE_DE))
        neutral = float(params.get("neutral_chroma", NEUTRAL_CHROMA))
        warn_share = float(params.get("warn_off_palette_share", WARN_OFF_PALETTE_SHARE))
        max_share = float(params.get("max_off_palette_share", MAX_OFF_PALETTE_SHARE))
        clusters = int(params.get("clusters", CLUSTERS))
        excluded = [b for b in (context.product_box,) if b is not None]
        pixels = _measured_pixels(image, excluded)
        if len(pixels) == 0:
            return CheckResult(
                self.name, "skip", reason="nothing left to measure outside the product"
            )
        # A 128 px creative has few distinct binned colours: measure each once, by count.
        q = (pixels >> QUANT_BITS).astype(np.int64)
        uniq, counts = np.unique((q[:, 0] << 16) | (q[:, 1] << 8) | q[:, 2], return_counts=True)
        bins = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1)
        half = (1 << QUANT_BITS) // 2
        lab = srgb_to_lab(((bins << QUANT_BITS) + half).astype(np.uint8))
        weights = counts.astype(np.float64)
        hexes, labels, ref_lab = references(context)
        de = ciede2000(lab[:, None, :], ref_lab[None], k_l=K_L).min(axis=1)
        is_neutral = chroma(lab) < neutral
        off = (de > tolerance) & ~is_neutral
        off_share = float(weights[off].sum() / weights.sum())

        centres, shares = kmeans(lab, weights, clusters)
        cde = ciede2000(centres[:, None, :], ref_lab[None], k_l=K_L)
        nearest = cde.argmin(axis=1)
        found: list[dict[str, Any]] = []
        for i in np.argsort(-shares):
            c_neutral = bool(chroma(centres[i]) < neutral)
            found.append(
                {
                    "colour": srgb_to_hex(lab_to_srgb(centres[i])),
                    "share": round(float(shares[i]), 3),
                    "nearest": hexes[nearest[i]],
                    "nearest_role": labels[nearest[i]],
                    "delta_e": round(float(cde[i, nearest[i]]), 2),
                    "neutral": c_neutral,
                    "off_palette": bool(cde[i, nearest[i]] > tolerance and not c_neutral),
                }
            )
        evidence: dict[str, Any] = {
            "off_palette_share": round(off_share, 4),
            "tolerance_de": tolerance,
            "k_l": K_L,
            "neutral_chroma": neutral,
            "clusters": found,
            "excluded": [list(b.as_tuple()) for b in excluded],
        }
        score = round(max(0.0, 1.0 - off_share), 3)
        worst = ", ".join(c["colour"] for c in found if c["off_palette"]) or "scattered pixels"
        if off_share > max_share:
            reason = f"{off_share:.0%} of the frame is off-palette (max {max_share:.0%}): {worst}"
            return CheckResult(self.name, "fail", score, reason, evidence)
        if off_share > warn_share:
            reason = f"{off_share:.0%} of the frame is off-palette (warn above {warn_share:.0%})"
            return CheckResult(self.name, "warn", score, f"{reason}: {worst}", evidence)
        return CheckResult(self.name, "pass", score, None, evidence)
