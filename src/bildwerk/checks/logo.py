"""Logo: the brand's own logo is on the creative, legible, in its zone and undistorted.

The logo is found in the pixels, not taken from the compose stage's word: ORB features of
the logo (composited over the local background, since the file is transparent) are
matched to the creative near where compose says it drew it, with Lowe's ratio test and a
RANSAC homography whose projected corners give the box. Logos too small or too plain for
features (or distorted past what ORB tolerates) fall back to template matching over
sizes and aspect ratios. The box is then snapped to the pixel grid by NCC, which settles
size and aspect ratio, and the final word is a pixel comparison there: normalised
cross-correlation with the logo as the brand file draws it, and the CIEDE2000 colour
difference of its solid parts, so a recoloured, redrawn or covered logo does not pass
as "found".

Needs OpenCV (the ``qa`` extra); without it the check is skipped with a reason.

Params (``qa.checks.logo.params``):

- ``min_match`` (0.5): NCC below this means the logo is not there.
- ``warn_match`` (0.8): NCC below this (but ≥ ``min_match``) means altered or covered: fail.
- ``max_colour_de`` (10): median ΔE00 of the logo's solid pixels; above it, recoloured.
- ``max_distortion`` (0.05): allowed |aspect / true aspect − 1| (never below what one
  pixel of the found box amounts to).
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
UNDISTORTED_BONUS = 0.005  # NCC an undistorted fit may trail a stretched one and still win

Pixels = NDArray[np.uint8]
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Found:
    """Where the logo was found (master px), its measured width/height ratio and how it
    was found (``features`` or ``template``; ``inliers`` counts RANSAC inliers)."""

    box: Box
    ratio: float
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


def _grey_master(logo: Image.Image, background: Floats) -> NDArray[np.float32]:
    """The (premultiplied) logo over ``background`` in grey, at the logo's resolution.

    Candidate templates are area-resized from this: compositing and area averaging are
    both linear, so this equals resizing first and compositing after, at a fraction of
    the cost of a Lanczos resize per candidate size.
    """
    rgba = np.asarray(logo.convert("RGBA"), dtype=np.float32)
    alpha = rgba[..., 3] / 255.0
    grey_logo = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    grey_bg = np.float32(background @ np.array([0.299, 0.587, 0.114]))
    out: NDArray[np.float32] = grey_logo * alpha + grey_bg * (1.0 - alpha)
    return out


def _render(cv2: Any, master: NDArray[np.float32], size: tuple[int, int]) -> Pixels:
    sized = cv2.resize(master, size, interpolation=cv2.INTER_AREA)
    out: Pixels = np.clip(np.rint(sized), 0, 255).astype(np.uint8)
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
    return Found(box, float(width / height), "features", int(mask.sum()))


def _by_template(
    cv2: Any,
    logo: Image.Image,
    background: Floats,
    region: Pixels,
    origin: Box,
    expected_h: int,
    hint: Box | None,
) -> Found | None:
    """Template matching over sizes on a copy where the logo is ~40 px tall.

    Candidates: the hinted box as drawn (a logo stretched into its box is the usual
    distortion), the logo undistorted at the hint's height or width, and a search over
    heights, then aspect ratios at the best height; a fine pass refines the winner.
    """
    k = min(1.0, TEMPLATE_HEIGHT / max(1, expected_h))
    true_aspect = logo.width / max(1, logo.height)
    master = _grey_master(premultiplied(logo, TEMPLATE_HEIGHT), background)
    rh, rw = region.shape
    small = cv2.resize(
        region, (max(1, round(rw * k)), max(1, round(rh * k))), interpolation=cv2.INTER_AREA
    )
    seen: dict[tuple[int, int], tuple[float, int, int]] = {}

    def match(size: tuple[float, float]) -> float:
        tw, th = max(4, round(size[0] * k)), max(4, round(size[1] * k))
        if (tw, th) not in seen:
            if th > small.shape[0] or tw > small.shape[1]:
                seen[tw, th] = (-1.0, 0, 0)
            else:
                tmpl = _render(cv2, master, (tw, th))
                res = cv2.matchTemplate(small, tmpl, cv2.TM_CCOEFF_NORMED)
                _, value, _, (x, y) = cv2.minMaxLoc(res)
                seen[tw, th] = (float(value), int(x), int(y))
        return seen[tw, th][0]

    candidates: list[tuple[float, float]] = []
    if hint is not None:
        candidates += [
            (hint.width, hint.height),
            (hint.height * true_aspect, hint.height),
            (hint.width, hint.width / true_aspect),
        ]
    heights = [float(h) for h in np.geomspace(0.5, 1.6, 10) * expected_h]
    best_h = max(heights, key=lambda h: match((h * true_aspect, h)))
    aspects = [float(a) for a in np.geomspace(0.5, 2.0, 13)]
    best_a = max(aspects, key=lambda a: match((best_h * true_aspect * a, best_h)))
    candidates.append((best_h * true_aspect * best_a, best_h))
    w0, h0 = max(candidates, key=match)
    fine = [(w0 * dw, h0 * dh) for dw in (0.96, 1.0, 1.04) for dh in (0.96, 1.0, 1.04)]
    w1, h1 = max(fine, key=match)
    tw, th = max(4, round(w1 * k)), max(4, round(h1 * k))
    value, x, y = seen[tw, th]
    if value < 0:
        return None
    box = Box(
        origin.x0 + round(x / k),
        origin.y0 + round(y / k),
        origin.x0 + round(x / k + w1),
        origin.y0 + round(y / k + h1),
    )
    return Found(box, float(w1 / h1), "template")


def refine(cv2: Any, image: Image.Image, logo: Image.Image, found: Found) -> Found:
    """:func:`snap` until the box stops moving (at most three rounds)."""
    b = found.box
    ring = np.asarray(image.crop((b.x0 - 4, b.y0 - 4, b.x1 + 4, b.y1 + 4)).convert("RGB"))
    background = np.median(np.concatenate([ring[0], ring[-1], ring[:, 0], ring[:, -1]]), axis=0)
    master = _grey_master(logo, background.astype(np.float64))
    true_ratio = logo.width / max(1, logo.height)
    for _ in range(3):
        snapped = snap(cv2, image, master, true_ratio, found)
        if snapped.box == found.box:
            return snapped
        found = snapped
    return found


def snap(
    cv2: Any, image: Image.Image, master: NDArray[np.float32], true_ratio: float, found: Found
) -> Found:
    """Snap the box to the pixel grid by NCC of the logo drawn at each candidate size:
    ±2 px in width or height, and the undistorted logo at ±2 px of the height.

    Feature corners and template scales are a pixel or two off, and a pixel matters to
    a small logo's NCC, its clear space and above all its aspect ratio; when the
    undistorted logo fits as well as a stretched one, it wins, so grid noise is not
    reported as distortion. The ratio returned is that of the winning candidate;
    ``master`` is the logo over the local background (:func:`_grey_master`).
    """
    b, m = found.box, 3
    window = image.crop((b.x0 - m - 1, b.y0 - m - 1, b.x1 + m + 1, b.y1 + m + 1)).convert("RGB")
    grey = _grey(np.asarray(window, dtype=np.float64))
    # ±2 px, not ±1: sizes of the other parity sit half a pixel off the grid and score
    # worse than both neighbours, which would stall the search one pixel short.
    steps = (-2, -1, 0, 1, 2)
    sizes = {(round((b.height + d) * true_ratio), b.height + d): True for d in steps}
    for d in steps:
        sizes.setdefault((b.width + d, b.height), False)
        sizes.setdefault((b.width, b.height + d), False)
    best = (-2.0, b, found.ratio)
    for (w, h), undistorted in sizes.items():
        if w < 4 or h < 4 or w > grey.shape[1] or h > grey.shape[0]:
            continue
        res = cv2.matchTemplate(grey, _render(cv2, master, (w, h)), cv2.TM_CCOEFF_NORMED)
        _, value, _, (x, y) = cv2.minMaxLoc(res)
        value += UNDISTORTED_BONUS if undistorted else 0.0
        if value > best[0]:
            x0, y0 = b.x0 - m - 1 + int(x), b.y0 - m - 1 + int(y)
            best = (float(value), Box(x0, y0, x0 + w, y0 + h), true_ratio if undistorted else w / h)
    return Found(best[1], best[2], found.method, found.inliers)


@dataclass(frozen=True)
class Match:
    """How the pixels at a box compare with the logo: NCC, median ΔE00 of its solid
    pixels, and the colour observed there."""

    ncc: float
    colour_de: float
    colour: str


def verify(image: Image.Image, logo: Image.Image, box: Box) -> Match:
    """Compare the creative at ``box`` with the (premultiplied) logo drawn there.

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
        return Match(ncc, 0.0, srgb_to_hex(observed.reshape(-1, 3).mean(axis=0)))
    de = ciede2000(srgb_to_lab(expected[solid]), srgb_to_lab(observed[solid]))
    return Match(ncc, float(np.median(de)), srgb_to_hex(np.median(observed[solid], axis=0)))


def allowed_zone(context: CheckContext, width: int, height: int) -> tuple[Box, str]:
    """The logo zone of the layout (mirrored for right-to-left, as compose places it),
    else the safe area."""
    layout: Layout | None = context.layout
    if layout is not None:
        from bildwerk.stages.compose_logo import logo_zone  # the zone rule lives with compose

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


def locate(
    image: Image.Image, context: CheckContext, logo: Image.Image
) -> tuple[Found, Match] | None:
    """Find the (premultiplied) logo near ``context.logo_box``, or anywhere.

    Features first; when they find nothing, or a placement the pixels do not confirm (a
    squashed logo can still yield a few consistent but wrong matches), template matching
    runs too and the better-confirmed placement wins. Results are snapped by
    :func:`refine`.
    """
    import cv2

    expected_h = expected_height(context, image.width, image.height)
    area = _region(context, image.width, image.height, expected_h)
    rgb = np.asarray(image.crop(area.as_tuple()).convert("RGB"), dtype=np.float64)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    background = np.median(border, axis=0)
    region = _grey(rgb)
    tw = max(4, round(expected_h * logo.width / logo.height))
    template = _grey(_over(_premultiplied_resize(logo, (tw, expected_h)), background))
    candidates: list[tuple[Found, Match]] = []
    found = _by_features(cv2, template, region, area)
    if found is not None:
        found = refine(cv2, image, logo, found)
        candidates.append((found, verify(image, logo, found.box)))
        if candidates[0][1].ncc >= WARN_MATCH:
            return candidates[0]
    found = _by_template(cv2, logo, background, region, area, expected_h, context.logo_box)
    if found is not None:
        found = refine(cv2, image, logo, found)
        candidates.append((found, verify(image, logo, found.box)))
    return max(candidates, key=lambda c: c[1].ncc, default=None)


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
                "unchecked",
                reason="the logo check needs OpenCV: pip install 'bildwerk[qa]'",
            )
        p = context.params
        min_match = float(p.get("min_match", MIN_MATCH))
        warn_match = float(p.get("warn_match", WARN_MATCH))
        max_de = float(p.get("max_colour_de", MAX_COLOUR_DE))
        max_distortion = float(p.get("max_distortion", MAX_DISTORTION))
        clear_fails = bool(p.get("clear_space_fails", False))
        logo = premultiplied(context.logo, expected_height(context, image.width, image.height))
        located = locate(image, context, logo)
        expected = list(context.logo_box.as_tuple()) if context.logo_box else None
        if located is None:
            return CheckResult(
                self.name, "fail", 0.0, "logo not found", {"expected": expected, "found": None}
            )
        found, match = located
        ncc, colour_de, colour = match.ncc, match.colour_de, match.colour
        aspect = found.ratio / (context.logo.width / context.logo.height)
        evidence: dict[str, Any] = {
            "expected": expected,
            "found": list(found.box.as_tuple()),
            "method": found.method,
            "inliers": found.inliers,
            "match": round(ncc, 3),
            "colour_de": round(colour_de, 2),
            "colour": colour,
            "aspect": round(aspect, 3),
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
        # A logo h px tall is measured to ±1 px each way: never demand more than that.
        tolerance = max(max_distortion, 1 / found.box.height + 1 / found.box.width)
        evidence["distortion_tolerance"] = round(tolerance, 3)
        if abs(aspect - 1.0) > tolerance:
            fails.append(f"logo distorted: aspect ratio ×{aspect:.2f}")
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
