"""Logo: the brand's own logo is on the creative, legible, in its zone and undistorted.

The logo is found in the pixels, not taken from the compose stage's word: ORB features of
the logo (composited over the local background, since the file is transparent) are
matched to the creative near where compose says it drew it, with Lowe's ratio test and a
RANSAC homography whose projected corners give the box and the aspect ratio. Logos too
small or too plain for features fall back to template matching over scales and aspect
ratios. Either way the final word is a pixel comparison at the found box: normalised
cross-correlation with the logo as the brand file draws it, and the CIEDE2000 colour
difference of its solid parts, so a recoloured, redrawn or covered logo does not pass as
"found".

Needs OpenCV (the ``qa`` extra); without it the check is skipped with a reason.

Params (``qa.checks.logo.params``):

- ``min_match`` (0.5): NCC below this means the logo is not there.
- ``warn_match`` (0.8): NCC below this (but ≥ ``min_match``) means altered or covered: fail.
- ``max_colour_de`` (10): median ΔE00 of the logo's solid pixels; above it, recoloured.
- ``max_distortion`` (0.05): allowed |aspect / true aspect − 1|.
- ``clear_space_fails`` (false): a text block inside the clear space warns by default; a
  brand that treats clear space as a hard rule sets this to fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from bildwerk.checks.base import CheckContext, CheckResult
from bildwerk.colour import ciede2000, srgb_to_hex, srgb_to_lab
from bildwerk.geometry import Box

if TYPE_CHECKING:
    from bildwerk.geometry import Layout

MIN_MATCH = 0.5
WARN_MATCH = 0.8
MAX_COLOUR_DE = 10.0
MAX_DISTORTION = 0.05
MIN_INLIERS = 8  # fewer RANSAC inliers than this: fall back to template matching
RATIO = 0.8  # Lowe's ratio test
SEARCH_PAD = 1.0  # search this many logo heights around the expected box
TEMPLATE_HEIGHT = 40  # template search runs with the logo about this tall

Pixels = NDArray[np.uint8]
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Found:
    """Where the logo was found (master px) and how: aspect is found / true aspect."""

    box: Box
    aspect: float
    method: str
    inliers: int = 0


def premultiplied(logo: Image.Image, height: int) -> Image.Image:
    """The logo in premultiplied alpha ('RGBa', so resizing leaves no dark fringes),
    reduced once to about 2× ``height`` or less: every later resize starts from this."""
    pre = logo.convert("RGBA").convert("RGBa")
    factor = pre.height // max(1, 2 * height)
    return pre.reduce(factor) if factor >= 2 else pre


def _premultiplied_resize(logo: Image.Image, size: tuple[int, int]) -> Floats:
    """RGBA floats of a premultiplied logo at ``size``."""
    sized = logo.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(sized.convert("RGBA"), dtype=np.float64)


def _over(rgba: Floats, background: Floats) -> Floats:
    alpha = rgba[..., 3:4] / 255.0
    out: Floats = rgba[..., :3] * alpha + background * (1.0 - alpha)
    return out


def _grey(rgb: Floats) -> Pixels:
    out: Pixels = np.clip(rgb @ np.array([0.299, 0.587, 0.114]), 0, 255).astype(np.uint8)
    return out


def _region(context: CheckContext, width: int, height: int, expected_h: int) -> Box:
    if context.logo_box is None:
        return Box(0, 0, width, height)
    b, pad = context.logo_box, math.ceil(SEARCH_PAD * expected_h)
    return Box(
        max(0, b.x0 - pad), max(0, b.y0 - pad), min(width, b.x1 + pad), min(height, b.y1 + pad)
    )


def _by_features(cv2: Any, template: Pixels, region: Pixels, origin: Box) -> Found | None:
    """ORB + ratio test + RANSAC homography; None when too few consistent matches."""
    orb = cv2.ORB_create(500, edgeThreshold=8, patchSize=15, fastThreshold=5)
    k1, d1 = orb.detectAndCompute(template, None)
    k2, d2 = orb.detectAndCompute(region, None)
    if d1 is None or d2 is None or len(k1) < MIN_INLIERS or len(k2) < 2:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(d1, d2, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < MIN_INLIERS:
        return None
    src = np.array([k1[m.queryIdx].pt for m in good], dtype=np.float32)
    dst = np.array([k2[m.trainIdx].pt for m in good], dtype=np.float32)
    h_mat, mask = cv2.findHomography(src, dst, cv2.RANSAC, 3.0)
    if h_mat is None or int(mask.sum()) < MIN_INLIERS:
        return None
    th, tw = template.shape
    corners = np.array([[[0, 0], [tw, 0], [tw, th], [0, th]]], dtype=np.float32)
    quad = cv2.perspectiveTransform(corners, h_mat)[0].astype(np.float64)
    if not cv2.isContourConvex(quad.astype(np.float32)):
        return None
    width = (np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[3])) / 2
    height = (np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])) / 2
    if width < 2 or height < 2:
        return None
    x0, y0 = quad.min(axis=0)
    x1, y1 = quad.max(axis=0)
    box = Box(
        origin.x0 + round(x0), origin.y0 + round(y0), origin.x0 + round(x1), origin.y0 + round(y1)
    )
    return Found(box, (width / height) / (tw / th), "features", int(mask.sum()))


def _by_template(
    cv2: Any, logo: Image.Image, background: Floats, region: Pixels, origin: Box, expected_h: int
) -> Found | None:
    """Multi-scale, multi-aspect template matching on a copy where the logo is ~40 px tall:
    scale first, then aspect at that scale, then a fine pass around both."""
    k = min(1.0, TEMPLATE_HEIGHT / max(1, expected_h))
    true_aspect = logo.width / max(1, logo.height)
    logo = premultiplied(logo, TEMPLATE_HEIGHT)
    rh, rw = region.shape
    size = (max(1, round(rw * k)), max(1, round(rh * k)))
    small = cv2.resize(region, size, interpolation=cv2.INTER_AREA)

    def score(scale: float, aspect: float) -> tuple[float, tuple[int, int], tuple[int, int]]:
        h = max(4, round(expected_h * scale * k))
        w = max(4, round(h * true_aspect * aspect))
        if h > small.shape[0] or w > small.shape[1]:
            return -1.0, (0, 0), (w, h)
        tmpl = _grey(_over(_premultiplied_resize(logo, (w, h)), background))
        res = cv2.matchTemplate(small, tmpl, cv2.TM_CCOEFF_NORMED)
        _, best, _, loc = cv2.minMaxLoc(res)
        return float(best), (int(loc[0]), int(loc[1])), (w, h)

    scales = np.geomspace(0.5, 1.6, 12)
    s = max(scales, key=lambda v: score(float(v), 1.0)[0])
    a = max(np.geomspace(0.5, 2.0, 13), key=lambda v: score(float(s), float(v))[0])
    fine = [(s * ds, a * da) for ds in (0.95, 1.0, 1.05) for da in (0.96, 1.0, 1.04)]
    best_s, best_a = max(fine, key=lambda sa: score(float(sa[0]), float(sa[1]))[0])
    value, (x, y), (w, h) = score(float(best_s), float(best_a))
    if value < 0:
        return None
    box = Box(
        origin.x0 + round(x / k),
        origin.y0 + round(y / k),
        origin.x0 + round((x + w) / k),
        origin.y0 + round((y + h) / k),
    )
    return Found(box, (w / h) / true_aspect, "template")


def refine(cv2: Any, image: Image.Image, logo: Image.Image, found: Found) -> Found:
    """Snap the box to the pixel grid: ±1 px in size and ±3 px in position, by NCC of the
    logo at that exact size (feature corners and template scales are a pixel or two off,
    and a pixel matters to a 30 px logo's NCC and its clear space)."""
    b, m = found.box, 3
    window = image.crop((b.x0 - m - 1, b.y0 - m - 1, b.x1 + m + 1, b.y1 + m + 1)).convert("RGB")
    rgb = np.asarray(window, dtype=np.float64)
    background = np.median(np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]), axis=0)
    grey = _grey(rgb)
    base = _grey(_over(_premultiplied_resize(logo, (b.width, b.height)), background))
    best = (-2.0, b)
    for dw in (-1, 0, 1):
        for dh in (-1, 0, 1):
            w, h = b.width + dw, b.height + dh
            if w < 4 or h < 4 or w > grey.shape[1] or h > grey.shape[0]:
                continue
            tmpl = (
                base if dw == dh == 0 else cv2.resize(base, (w, h), interpolation=cv2.INTER_LINEAR)
            )
            res = cv2.matchTemplate(grey, tmpl, cv2.TM_CCOEFF_NORMED)
            _, value, _, (x, y) = cv2.minMaxLoc(res)
            if value > best[0]:
                x0, y0 = b.x0 - m - 1 + int(x), b.y0 - m - 1 + int(y)
                best = (float(value), Box(x0, y0, x0 + w, y0 + h))
    return Found(best[1], found.aspect, found.method, found.inliers)


def verify(image: Image.Image, logo: Image.Image, box: Box) -> tuple[float, float, str]:
    """(NCC, median ΔE00 of the solid logo pixels, observed colour there) at ``box``.

    The expected pixels are the logo drawn over the median colour around the box, so
    the comparison is colour-aware: a recoloured logo keeps its shape but not its NCC
    over the three channels together, and its ΔE shows how far the colour moved.
    """
    w, h = max(1, box.width), max(1, box.height)
    ring = image.crop((box.x0 - 3, box.y0 - 3, box.x1 + 3, box.y1 + 3)).convert("RGB")
    r = np.asarray(ring, dtype=np.float64)
    edge = np.concatenate([r[:2].reshape(-1, 3), r[-2:].reshape(-1, 3), r[:, :2].reshape(-1, 3)])
    background = np.median(edge, axis=0)
    rgba = _premultiplied_resize(logo, (w, h))
    expected = _over(rgba, background)
    observed = np.asarray(image.crop(box.as_tuple()).convert("RGB"), dtype=np.float64)
    e, o = expected - expected.mean(), observed - observed.mean()
    denom = math.sqrt(float((e * e).sum() * (o * o).sum()))
    ncc = float((e * o).sum() / denom) if denom > 0 else 0.0
    solid = rgba[..., 3] >= 250
    if solid.sum() < 4:
        return ncc, 0.0, srgb_to_hex(observed.reshape(-1, 3).mean(axis=0))
    de = ciede2000(srgb_to_lab(expected[solid]), srgb_to_lab(observed[solid]))
    return ncc, float(np.median(de)), srgb_to_hex(np.median(observed[solid], axis=0))


def allowed_zone(context: CheckContext, width: int, height: int) -> tuple[Box, str]:
    """The logo zone of the layout (mirrored for right-to-left, as compose places it),
    else the safe area."""
    layout: Layout | None = context.layout
    if layout is not None:
        from bildwerk.stages.compose import logo_zone  # the zone rule lives with compose

        direction: Literal["ltr", "rtl"] = "rtl" if context.direction == "rtl" else "ltr"
        return logo_zone(layout, direction), "layout.logo"
    from bildwerk.checks.safe_area import safe_box

    return safe_box(context, width, height), "safe area"


def expected_height(context: CheckContext, width: int, height: int) -> int:
    """The logo height compose reports, else the brand's height share of the short side."""
    if context.logo_box is not None:
        return max(1, context.logo_box.height)
    frac = context.brand.logo.height if context.brand.logo else 0.06
    return max(8, round(frac * min(width, height)))


def locate(image: Image.Image, context: CheckContext, logo: Image.Image) -> Found | None:
    """Find the (premultiplied) logo near ``context.logo_box``, or anywhere: features
    first, then templates; the result is snapped by :func:`refine`."""
    import cv2

    expected_h = expected_height(context, image.width, image.height)
    area = _region(context, image.width, image.height, expected_h)
    rgb = np.asarray(image.crop(area.as_tuple()).convert("RGB"), dtype=np.float64)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    background = np.median(border, axis=0)
    region = _grey(rgb)
    tw = max(4, round(expected_h * logo.width / logo.height))
    template = _grey(_over(_premultiplied_resize(logo, (tw, expected_h)), background))
    found = _by_features(cv2, template, region, area)
    if found is None:
        found = _by_template(cv2, logo, background, region, area, expected_h)
    return None if found is None else refine(cv2, image, logo, found)


class LogoCheck:
    """Fails when the logo is missing, altered, recoloured, too small, out of its zone or
    distorted; warns when text crowds its clear space."""

    name = "logo"

    def run(self, image: Image.Image, context: CheckContext) -> CheckResult:
        if context.logo is None:
            return CheckResult(self.name, "skip", reason="no brand logo configured")
        try:
            import cv2  # noqa: F401
        except ImportError:
            return CheckResult(
                self.name,
                "skip",
                reason="the logo check needs OpenCV: pip install 'bildwerk[qa]'",
            )
        p = context.params
        min_match = float(p.get("min_match", MIN_MATCH))
        warn_match = float(p.get("warn_match", WARN_MATCH))
        max_de = float(p.get("max_colour_de", MAX_COLOUR_DE))
        max_distortion = float(p.get("max_distortion", MAX_DISTORTION))
        clear_fails = bool(p.get("clear_space_fails", False))
        logo = premultiplied(context.logo, expected_height(context, image.width, image.height))
        found = locate(image, context, logo)
        expected = list(context.logo_box.as_tuple()) if context.logo_box else None
        if found is None:
            return CheckResult(
                self.name, "fail", 0.0, "logo not found", {"expected": expected, "found": None}
            )
        ncc, colour_de, colour = verify(image, logo, found.box)
        evidence: dict[str, Any] = {
            "expected": expected,
            "found": list(found.box.as_tuple()),
            "method": found.method,
            "inliers": found.inliers,
            "match": round(ncc, 3),
            "colour_de": round(colour_de, 2),
            "colour": colour,
            "aspect": round(found.aspect, 3),
        }
        if ncc < min_match:
            return CheckResult(
                self.name,
                "fail",
                round(max(0.0, ncc), 3),
                f"logo not found (match {ncc:.2f})",
                evidence,
            )
        fails, crowded = self._rules(image, context, found, evidence)
        warns: list[str] = []
        if ncc < warn_match:
            fails.append(f"logo differs from the brand file (match {ncc:.2f} < {warn_match})")
        if colour_de > max_de:
            fails.append(f"logo recoloured (ΔE00 {colour_de:.1f} > {max_de:g})")
        if abs(found.aspect - 1.0) > max_distortion:
            fails.append(f"logo distorted: aspect ratio ×{found.aspect:.2f}")
        (fails if clear_fails else warns).extend(crowded)
        score = round(min(1.0, max(0.0, ncc)) * (0.5 if fails else 1.0), 3)
        if fails:
            return CheckResult(self.name, "fail", score, "; ".join(fails + warns), evidence)
        if warns:
            return CheckResult(self.name, "warn", score, "; ".join(warns), evidence)
        return CheckResult(self.name, "pass", score, None, evidence)

    def _rules(
        self, image: Image.Image, context: CheckContext, found: Found, evidence: dict[str, Any]
    ) -> tuple[list[str], list[str]]:
        """Size and zone failures, and clear-space issues (their verdict is a param)."""
        fails: list[str] = []
        box = found.box
        min_h = context.brand.logo.min_height if context.brand.logo else 24
        min_h *= context.channel.density
        evidence["min_height"] = min_h
        if box.height < min_h:
            fails.append(f"logo {box.height}px tall, below the {min_h}px minimum")
        zone, zone_name = allowed_zone(context, image.width, image.height)
        slack = max(2, round(0.05 * box.height))
        grown = Box(zone.x0 - slack, zone.y0 - slack, zone.x1 + slack, zone.y1 + slack)
        evidence["zone"] = {"name": zone_name, "box": list(zone.as_tuple())}
        if not grown.contains(box):
            fails.append(f"logo outside its zone ({zone_name})")
        clear = round(context.brand.safe_area.logo_clear_space * box.height)
        space = Box(box.x0 - clear, box.y0 - clear, box.x1 + clear, box.y1 + clear)
        crowding: list[str] = []
        for spec in context.texts:
            for part, b in ((spec.role, spec.box), (f"{spec.role} plate", spec.plate)):
                if b is not None and space.inset(slack).intersects(b):
                    crowding.append(part)
        evidence["clear_space"] = {
            "px": clear,
            "box": list(space.as_tuple()),
            "crowded_by": crowding,
        }
        if not crowding:
            return fails, []
        return fails, [f"{', '.join(crowding)} inside the logo's clear space ({clear}px)"]
