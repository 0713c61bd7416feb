"""Measured accuracy of the QA checks on a generated, labelled evaluation set.

Every case is built in code from known quantities (colours, sizes, blur, noise, boxes),
so the ground truth never comes from the check under test: WCAG ratios are computed here
from the colours drawn, off-palette scenes are recoloured to hues far from every brand
colour, degradations have a known strength. Each check runs through its public ``run``
at its default params (and a small grid around them). Positive class = "the check should
fail this creative"; a prediction is positive when the verdict is ``fail`` (the gate's
default ``block``), and the warn-or-fail rate is shown where a check warns.

    .venv/bin/python benchmarks/qa_eval.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from bildwerk.backends.base import SceneRequest
from bildwerk.backends.studio import render as studio_render
from bildwerk.checks.base import CheckContext, CheckResult, TextSpec
from bildwerk.checks.brand_colour import TOLERANCE_DE, BrandColourCheck
from bildwerk.checks.contrast import ContrastCheck
from bildwerk.checks.legibility import LegibilityCheck
from bildwerk.checks.logo import LogoCheck
from bildwerk.checks.safe_area import SafeAreaCheck
from bildwerk.checks.technical import TechnicalCheck
from bildwerk.config.brand import BrandKit, Logo, Palette
from bildwerk.config.brief import Copy
from bildwerk.config.channels import PRESETS, Channel
from bildwerk.fonts import FontSet
from bildwerk.geometry import Box, Layout, plan_layout
from bildwerk.samples import draw_can, draw_candle, draw_serum, write_sample_logo
from bildwerk.stages.compose import compose
from bildwerk.stages.qa import text_specs
from bildwerk.stages.work import ComposeTask, compose_image, text_blocks

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dedup_eval  # a sibling script: its evaluation is reused, not redone

FONTS = Path("/usr/share/fonts/truetype/noto")
FEED = PRESETS["instagram_feed"]
ACME = Palette(
    primary="#1f3a5f", secondary="#f4e9dc", accent="#e4572e", text="#14213d", background="#fbf7f2"
)
BRAND = BrandKit(name="Acme", palette=ACME, logo=Logo(file=Path("logo.png"), height=0.05))
STORY = PRESETS["instagram_story"]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]


# --- scoring ----------------------------------------------------------------------------------


@dataclass
class Tally:
    """Confusion counts for one check (or one group of cases)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, truth: bool, predicted: bool) -> None:
        if truth:
            self.tp, self.fn = self.tp + predicted, self.fn + (not predicted)
        else:
            self.fp, self.tn = self.fp + predicted, self.tn + (not predicted)

    @property
    def cases(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def positives(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        flagged = self.tp + self.fp
        return self.tp / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        return self.tp / self.positives if self.positives else 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "positives": self.positives,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
        }


@dataclass(frozen=True)
class Outcome:
    """One evaluated case: ground truth, the check's verdict, and the groups (tags) it is
    reported under."""

    truth: bool
    verdict: str
    tags: tuple[str, ...]
    value: float | None = None  # the check's measurement
    expected: float | None = None  # the true quantity it measures, where one exists

    @property
    def failed(self) -> bool:
        return self.verdict == "fail"

    @property
    def flagged(self) -> bool:
        return self.verdict in ("fail", "warn")


def tally(outcomes: Iterable[Outcome], flag: Callable[[Outcome], bool] | None = None) -> Tally:
    t = Tally()
    for o in outcomes:
        t.add(o.truth, flag(o) if flag else o.failed)
    return t


def groups(outcomes: Sequence[Outcome]) -> dict[str, dict[str, Any]]:
    """Per tag: cases, positives, errors at the defaults (false positives, false
    negatives), and the share failed and flagged (warn or fail)."""
    out: dict[str, dict[str, Any]] = {}
    first = list(dict.fromkeys(t for o in outcomes for t in o.tags))
    kinds = list(dict.fromkeys(t.split(":")[0] for t in first))  # "size:10px" → "size"
    for name in sorted(first, key=lambda t: (kinds.index(t.split(":")[0]), first.index(t))):
        members = [o for o in outcomes if name in o.tags]
        t = tally(members)
        out[name] = {
            "cases": len(members),
            "positives": t.positives,
            "fp": t.fp,
            "fn": t.fn,
            "failed": round(sum(o.failed for o in members) / len(members), 3),
            "flagged": round(sum(o.flagged for o in members) / len(members), 3),
        }
    return out


def section(
    outcomes: Sequence[Outcome], threshold: str, grid: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """The report for one check: scores at the defaults (fail, and warn-or-fail), the
    grid, and the per-group breakdown."""
    return {
        **tally(outcomes).to_json(),
        "flagged": tally(outcomes, lambda o: o.flagged).to_json(),
        "threshold": threshold,
        "grid": list(grid),
        "groups": groups(outcomes),
    }


def grid_row(params: Mapping[str, Any], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    t = tally(outcomes)
    return {"params": dict(params), **t.to_json()}


# --- colour ground truth (independent of bildwerk.colour) --------------------------------------


def wcag_luminance(rgb: Sequence[float] | F64) -> F64:
    """WCAG 2.x relative luminance of sRGB values in 0..255 (last axis)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    out: F64 = lin @ np.array([0.2126, 0.7152, 0.0722])
    return out


def wcag_ratio(a: F64 | float, b: F64 | float) -> F64:
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    out: F64 = (hi + 0.05) / (lo + 0.05)
    return out


def ramp(hue: Sequence[float], s: float) -> F64:
    """sRGB colour on the ramp black → ``hue`` (s = 0.5) → white; luminance grows with s."""
    h = np.asarray(hue, dtype=np.float64)
    out: F64 = h * 2 * s if s < 0.5 else h + (255.0 - h) * (2 * s - 1)
    return out


def colour_at(hue: Sequence[float], luminance: float) -> tuple[int, int, int]:
    """The 8-bit colour on ``hue``'s ramp nearest to a WCAG luminance (bisection)."""
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if float(wcag_luminance(ramp(hue, mid))) < luminance:
            lo = mid
        else:
            hi = mid
    r, g, b = (int(v) for v in np.clip(np.rint(ramp(hue, (lo + hi) / 2)), 0, 255))
    return r, g, b


def hexa(rgb: Sequence[float] | F64) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(round(v) for v in rgb))


def random_hue(rng: np.random.Generator, saturation: float = 0.6) -> tuple[float, float, float]:
    """A mid colour of random hue (HSV value 1, given saturation), 0..255."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(float(rng.random()), saturation * float(rng.random()), 1.0)
    return r * 255.0, g * 255.0, b * 255.0


# --- text drawing --------------------------------------------------------------------------------


@cache
def font(size: int, bold: bool) -> ImageFont.FreeTypeFont:
    path = FONTS / ("NotoSans-Bold.ttf" if bold else "NotoSans-Regular.ttf")
    if not path.is_file():
        raise SystemExit(f"{path} is missing: apt-get install fonts-noto-core")
    return ImageFont.truetype(str(path), size)


def text_mask(
    text: str, size: int, bold: bool, pad: int
) -> tuple[Image.Image, Box, tuple[int, int]]:
    """An anti-aliased glyph mask with ``pad`` px of room, the glyph box in it, and the
    canvas size."""
    f = font(size, bold)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    x0, y0, x1, y1 = (int(v) for v in probe.textbbox((0, 0), text, font=f, anchor="ls"))
    w, h = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
    mask = Image.new("L", (w, h), 0)
    origin = (pad - x0, pad - y0)
    ImageDraw.Draw(mask).text(origin, text, font=f, fill=255, anchor="ls")
    bbox = mask.getbbox() or (pad, pad, w - pad, h - pad)
    return mask, Box(*bbox), (w, h)


def paint(background: U8, mask: Image.Image, colour: Sequence[int]) -> Image.Image:
    """Text of ``colour`` over ``background`` through the mask, as compose paints it."""
    img = Image.fromarray(background, "RGB")
    r, g, b = colour
    img.paste((r, g, b), (0, 0), mask)
    return img


def value_noise(rng: np.random.Generator, w: int, h: int, cells: float) -> F64:
    """Smooth noise in -1..1 with about ``cells`` features across the width."""
    gw, gh = max(2, round(cells)), max(2, round(cells * h / w))
    grid = rng.random((gh, gw)).astype(np.float32)
    layer = Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BICUBIC)
    out: F64 = np.clip(np.asarray(layer, dtype=np.float64) * 2 - 1, -1, 1)
    return out


# --- contrast -----------------------------------------------------------------------------------

CONTRAST_RATIOS = (1.5, 2.0, 2.5, 2.8, 3.2, 3.6, 4.0, 4.3, 4.7, 5.2, 6.0, 7.0, 10.0)
CONTRAST_SIZES = (10, 14, 18, 20, 24, 32, 44, 60)
BACKGROUNDS = ("flat", "gradient", "texture")
PHRASES = ("Fresh summer drop", "New colours this week", "Shop the sale", "Up to 30% off")
GRAIN = 1.5  # the studio backend's sensor grain, in levels; not part of the ground truth


def wcag_large(size: int, bold: bool) -> bool:
    """WCAG large-scale text: 18 pt (24 px), or 14 pt (18.66 px) bold."""
    return size >= 24 or (bold and size >= 18.66)


def _field(kind: str, base: F64, shade: F64, w: int, h: int, rng: np.random.Generator) -> F64:
    """The smooth background (float sRGB, h × w × 3) before grain."""
    if kind == "flat":
        return np.broadcast_to(base, (h, w, 3)).astype(np.float64)
    if kind == "gradient":  # base on the left to ``shade`` on the right
        t = np.linspace(0.0, 1.0, w)[None, :, None]
        return np.broadcast_to(base + (shade - base) * t, (h, w, 3)).astype(np.float64)
    noise = value_noise(rng, w, h, max(3.0, w / 40))  # blotches a few letters wide
    out: F64 = base + 14.0 * noise[..., None]
    return out


def contrast_case(
    ratio: float, size: int, bold: bool, kind: str, seed: int, text: str = ""
) -> tuple[Image.Image, TextSpec, float]:
    """Text at ``ratio``:1 against the least-contrasting point of the background behind
    it; returns the image, the spec compose would report and the true (8-bit) ratio."""
    rng = np.random.default_rng(seed)
    text = text or PHRASES[seed % len(PHRASES)]
    mask, box, (w, h) = text_mask(text, size, bold, pad=max(12, size // 2))
    glyphs = (slice(box.y0, box.y1), slice(box.x0, box.x1))
    for _ in range(100):
        dark_text = bool(rng.random() < 0.5)
        lo = 0.05 * ratio - 0.05 + 0.03  # darkest background dark text can reach r on
        hi = 1.05 / ratio - 0.05 - 0.01  # lightest background light text can reach r on
        if dark_text and lo > 0.92:
            dark_text = False
        if not dark_text and hi < 0.005:
            dark_text = True
        lb = rng.uniform(lo, 0.92) if dark_text else rng.uniform(0.0, hi)
        hue = random_hue(rng)
        base = np.array(colour_at(hue, lb), dtype=np.float64)
        other = lb * 1.6 + 0.02 if rng.random() < 0.5 else lb / 1.6 - 0.01
        shade = np.array(colour_at(hue, float(np.clip(other, 0.0, 1.0))), dtype=np.float64)
        smooth = np.clip(np.rint(_field(kind, base, shade, w, h, rng)), 0, 255)
        lum = wcag_luminance(smooth[glyphs])
        worst = float(lum.min() if dark_text else lum.max())
        target = (worst + 0.05) / ratio - 0.05 if dark_text else ratio * (worst + 0.05) - 0.05
        if 0.0 <= target <= 1.0:
            break
    else:  # pragma: no cover - the ranges above always leave room
        raise RuntimeError(f"no colours for {ratio}:1")
    colour = colour_at(random_hue(rng, 0.5), target)
    true_ratio = float(wcag_ratio(wcag_luminance(colour), lum).min())
    grainy = smooth + rng.normal(0.0, GRAIN, (h, w, 1))
    img = paint(np.clip(np.rint(grainy), 0, 255).astype(np.uint8), mask, colour)
    role = "headline" if bold else "subline"  # compose sets headline and CTA in bold
    return img, TextSpec(role, text, box, hexa(colour), None, size), true_ratio


def eval_contrast(quick: bool) -> dict[str, Any]:
    ratios = (*CONTRAST_RATIOS[::2], 4.3, 4.7, 2.8, 3.2) if quick else CONTRAST_RATIOS
    sizes = (10, 18, 20, 32, 60) if quick else CONTRAST_SIZES
    check = ContrastCheck()
    percentiles = (10.0,) if quick else (1.0, 5.0, 10.0, 20.0, 50.0)
    by_p: dict[float, list[Outcome]] = {p: [] for p in percentiles}
    seed = 0
    for kind in BACKGROUNDS:
        for ratio in sorted(set(ratios)):
            for size in sizes:
                for bold in (False, True):
                    seed += 1
                    img, spec, true_ratio = contrast_case(ratio, size, bold, kind, seed)
                    need = 3.0 if wcag_large(size, bold) else 4.5
                    truth = true_ratio < need
                    near = abs(math.log(true_ratio / need)) < math.log(1.1)
                    tags = (f"bg:{kind}", f"size:{size}px") + (
                        ("within 10 % of AA",) if near else ()
                    )
                    for p in percentiles:
                        context = CheckContext(
                            channel=FEED, brand=BRAND, texts=(spec,), params={"percentile": p}
                        )
                        result = check.run(img, context)
                        measured = result.evidence["blocks"][0]["contrast"]
                        outcome = Outcome(truth, result.verdict, tags, measured, true_ratio)
                        by_p[p].append(outcome)
    grid = [grid_row({"percentile": p}, by_p[p]) for p in percentiles]
    out = section(by_p[10.0], "WCAG AA 4.5:1 (3:1 large) at the 10th percentile", grid)
    errors = [abs(o.value / o.expected - 1) for o in by_p[10.0] if o.value and o.expected]
    out["median_ratio_error"] = round(float(np.median(errors)), 4)
    return out


# --- realistic creatives: studio backend + compose, as a run makes them -----------------------

COPY = Copy(headline="Summer, bottled.", subline="Up to 30% off this week.", cta="Shop the sale")
PRODUCTS: dict[str, Callable[[], Image.Image]] = {
    "serum": draw_serum,
    "candle": draw_candle,
    "can": draw_can,
}
MOODS = ("", "pastel", "dark", "warm", "cool")
SETS = ("podium", "arch", "spheres", "sweep", "gradient")


@dataclass(frozen=True)
class Creative:
    """A composed creative and what the runner's QA task would tell the checks."""

    image: Image.Image
    scene: Image.Image
    layout: Layout
    texts: tuple[TextSpec, ...]
    logo_box: Box | None
    product_box: Box | None
    plates: tuple[Box | None, ...] = ()  # compose's plate boxes, whether QA gets them or not


class Assets:
    """Sample product cutouts and per-brand logos, written once to a temp folder."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="bildwerk-qa-eval-")
        self.root = Path(self._dir.name)
        self.products = {}
        for name, draw in PRODUCTS.items():
            path = self.root / f"{name}.png"
            draw().save(path)
            self.products[name] = path
        self._logos: dict[str, Path] = {}

    def logo(self, brand: BrandKit) -> Path:
        if brand.name not in self._logos:
            path = self.root / f"logo-{brand.name}.png"
            pal = brand.palette
            self._logos[brand.name] = write_sample_logo(path, brand.name, pal.primary, pal.accent)
        return self._logos[brand.name]


@cache
def assets() -> Assets:
    return Assets()


def make_creative(
    brand: BrandKit,
    seed: int,
    size: tuple[int, int] = (1080, 1350),
    channel: Channel = FEED,
    prompt: str = "",
    params: Mapping[str, Any] | None = None,
    product: str | None = "serum",
    edit: Callable[[Image.Image, Layout, Box | None], Image.Image] | None = None,
) -> Creative:
    """Studio scene → optional ``edit`` of the scene (blur, noise or a prop; it gets the
    layout and the product box) → compose. The texts reach the checks as the runner
    passes them: as the compose work unit's dicts (which, today, leave out the CTA plate
    box; see :func:`runner_keeps_plate`)."""
    w, h = size
    layout = plan_layout(w, h, channel.unsafe, brand.safe_area.margin)
    palette = brand.palette.model_dump(exclude={"extra"})
    request = SceneRequest(
        key=f"qa-eval-{seed}",
        prompt=prompt or f"studio packshot on a {SETS[seed % len(SETS)]}",
        negative_prompt="",
        slots={},
        seed=seed,
        width=w,
        height=h,
        palette=palette,
        layout=layout,
        params=dict(params or {}),
        product=assets().products[product] if product else None,
    )
    generated = studio_render(request)
    scene = generated.image
    if edit is not None:
        scene = edit(scene, layout, generated.product_box)
    composed = compose(
        scene,
        layout,
        COPY,
        brand=brand,
        locale="en-US",
        direction="ltr",
        logo=logo_image(brand),
        fonts=fontset(),
        density=channel.density,
    )
    runner_texts = tuple(  # what compose_image (stages/work.py) hands on
        t if runner_keeps_plate() else replace(t, plate=None) for t in text_blocks(composed.texts)
    )
    return Creative(
        image=composed.image,
        scene=scene,
        layout=layout,
        texts=text_specs(runner_texts),
        logo_box=composed.logo_box,
        product_box=generated.product_box,
        plates=tuple(t.plate for t in composed.texts),
    )


@cache
def runner_keeps_plate() -> bool:
    """Whether the compose work unit passes the CTA plate box on to QA (probed once on a
    small creative, so this script follows the runner if that changes)."""
    brand = brand_kit("acme")
    layout = plan_layout(300, 250, FEED.unsafe, brand.safe_area.margin)
    scene = Image.new("RGB", (300, 250), "#f4f1ec")
    task = ComposeTask("probe", "0" * 64, layout, COPY, "en-US", "ltr", brand, None)
    return any(t.plate is not None for t in compose_image(task, scene, None).texts)


@cache
def fontset() -> FontSet:
    return FontSet(None)


def logo_image(brand: BrandKit) -> Image.Image:
    with Image.open(assets().logo(brand)) as im:
        return im.convert("RGBA")


def context_for(
    creative: Creative,
    brand: BrandKit,
    channel: Channel = FEED,
    params: Mapping[str, Any] | None = None,
    logo: Image.Image | None = None,
) -> CheckContext:
    return CheckContext(
        channel=channel,
        brand=brand,
        layout=creative.layout,
        texts=creative.texts,
        logo_box=creative.logo_box,
        logo=logo,
        product_box=creative.product_box,
        scene=creative.scene,
        params=dict(params or {}),
    )


# --- brand colour -------------------------------------------------------------------------------


def _oklab(rgb: Sequence[float]) -> tuple[float, float, float]:
    """sRGB 0..255 → OKLab (Ottosson's published matrices)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    r, g, b = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    l_ = np.cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b)
    m_ = np.cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b)
    s_ = np.cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b)
    return (
        float(0.2104542553 * l_ + 0.7936177850 * m_ - 0.0040720468 * s_),
        float(1.9779984951 * l_ - 2.4285922050 * m_ + 0.4505937099 * s_),
        float(0.0259040371 * l_ + 0.7827717662 * m_ - 0.8086757660 * s_),
    )


def oklch_hex(lightness: float, chroma: float, hue_deg: float) -> str | None:
    """OKLCh → '#rrggbb', or None when the colour is outside sRGB."""
    a, b = chroma * math.cos(math.radians(hue_deg)), chroma * math.sin(math.radians(hue_deg))
    l_ = (lightness + 0.3963377774 * a + 0.2158037573 * b) ** 3
    m_ = (lightness - 0.1055613458 * a - 0.0638541728 * b) ** 3
    s_ = (lightness - 0.0894841775 * a - 1.2914855480 * b) ** 3
    lin = np.array(
        [
            4.0767416621 * l_ - 3.3077115913 * m_ + 0.2309699292 * s_,
            -1.2684380046 * l_ + 2.6097574011 * m_ - 0.3413193965 * s_,
            -0.0041960863 * l_ - 0.7034186147 * m_ + 1.7076147010 * s_,
        ]
    )
    if lin.min() < -1e-4 or lin.max() > 1 + 1e-4:
        return None
    lin = np.clip(lin, 0.0, 1.0)
    srgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)
    return hexa(srgb * 255.0)


def hue_chroma(hex_colour: str) -> tuple[float, float]:
    """(OKLCh hue in degrees, chroma) of a '#rrggbb' colour."""
    rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    _, a, b = _oklab(rgb)
    return math.degrees(math.atan2(b, a)) % 360.0, math.hypot(a, b)


CHROMATIC = 0.02  # OKLCh chroma above which a brand colour has a hue worth keeping away from
OFF_HUE = 45.0  # degrees from every chromatic brand colour: unmistakably another colour


def brand_hues(palette: Palette) -> list[float]:
    roles = (palette.primary, palette.secondary, palette.accent, palette.text, palette.background)
    return [h for h, c in (hue_chroma(x) for x in (*roles, *palette.extra)) if c > CHROMATIC]


def hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def off_hues(palette: Palette, count: int) -> list[float]:
    """``count`` hues spread over the part of the wheel ≥ OFF_HUE from every brand hue."""
    hues = brand_hues(palette)
    free = [float(h) for h in range(0, 360, 5) if all(hue_distance(h, b) >= OFF_HUE for b in hues)]
    picks = np.linspace(0, len(free) - 1, count + 2)[1:-1]
    return [free[round(i)] for i in picks]


BRANDS: dict[str, Palette] = {
    "acme": ACME,
    "verdant": Palette(
        primary="#2d6a4f",
        secondary="#b7e4c7",
        accent="#e9c46a",
        text="#1b2a22",
        background="#f6faf7",
    ),
    "plum": Palette(
        primary="#5a189a",
        secondary="#e0c3fc",
        accent="#ffb703",
        text="#240046",
        background="#fbf8fd",
    ),
    "ocean": Palette(
        primary="#005f73",
        secondary="#94d2bd",
        accent="#ee9b00",
        text="#001219",
        background="#f5f3ee",
    ),
    "rouge": Palette(
        primary="#9d0208",
        secondary="#f8e1dc",
        accent="#ffba08",
        text="#1a1a1a",
        background="#fffaf5",
    ),
}


def brand_kit(name: str) -> BrandKit:
    return BrandKit(name=name, palette=BRANDS[name], logo=Logo(file=Path("logo.png"), height=0.05))


def tint(hex_colour: str, amount: float) -> str:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)
    return hexa(rgb + (255.0 - rgb) * amount)


def with_prop(
    share: float, colour: str, seed: int
) -> Callable[[Image.Image, Layout, Box | None], Image.Image]:
    """A scene edit that adds an off-palette sphere (see :func:`_prop`)."""

    def edit(img: Image.Image, layout: Layout, product: Box | None) -> Image.Image:
        out = img.copy()
        _prop(out, share, colour, [layout.copy, layout.logo, *([product] if product else [])], seed)
        return out

    return edit


def _prop(img: Image.Image, share: float, colour: str, avoid: Sequence[Box], seed: int) -> None:
    """A shaded off-palette sphere covering ``share`` of the frame, placed clear of the
    product, copy and logo where possible."""
    rng = np.random.default_rng(seed)
    w, h = img.size
    r = math.sqrt(share * w * h / math.pi)
    best: tuple[float, float] = (w / 2, h - r - 1)
    for _ in range(200):
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        spot = Box(int(cx - r), int(cy - r), int(cx + r), int(cy + r))
        if not any(spot.intersects(b) for b in avoid):
            best = (cx, cy)
            break
    cx, cy = best
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    d = np.hypot(xx - cx, yy - cy) / r
    inside = d <= 1.0
    base = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)
    light = 1.1 - 0.35 * np.clip((xx - cx + (yy - cy)) / (2 * r) + 0.5, 0, 1)
    arr = np.asarray(img, dtype=np.float64).copy()
    arr[inside] = np.clip(base * light[inside, None], 0, 255)
    img.paste(Image.fromarray(arr.astype(np.uint8), "RGB"))


def in_gamut(lightness: float, chroma: float, hue: float) -> str:
    """The OKLCh colour, its chroma reduced until it fits sRGB."""
    while chroma > 0:
        found = oklch_hex(lightness, chroma, hue)
        if found is not None:
            return found
        chroma -= 0.005
    return oklch_hex(lightness, 0.0, hue) or "#808080"


def wall_hue(palette: Palette) -> tuple[float, float]:
    """(hue, chroma) the studio backend builds its walls from: the background colour unless
    it is neutral, then the secondary (see ``derive_colours``)."""
    hue, chroma = hue_chroma(palette.background)
    return (hue, chroma) if chroma > 0.005 else hue_chroma(palette.secondary)


OFF_LEVELS = ((0.92, 0.05), (0.8, 0.09), (0.65, 0.13))  # (OKLCh lightness, chroma)
PROP_SHARES = (0.02, 0.05, 0.1)


def brand_colour_cases(quick: bool) -> list[tuple[bool, tuple[str, ...], Creative, BrandKit]]:
    size = (432, 540)  # the check reads a ≤ 128 px copy: resolution does not matter here
    names = list(BRANDS)[:3] if quick else list(BRANDS)
    moods = MOODS[:3] if quick else MOODS
    levels = OFF_LEVELS[:2] if quick else OFF_LEVELS
    cases: list[tuple[bool, tuple[str, ...], Creative, BrandKit]] = []
    seed = 100

    def add(truth: bool, tags: tuple[str, ...], kit: BrandKit, **kw: Any) -> None:
        nonlocal seed
        seed += 1
        product = list(PRODUCTS)[seed % len(PRODUCTS)]
        creative = make_creative(kit, seed, size, product=product, **kw)
        cases.append((truth, tags, creative, kit))

    for name in names:
        kit = brand_kit(name)
        pal = kit.palette
        for mood in moods:
            prompt = f"studio packshot on a {SETS[seed % len(SETS)]}, {mood} light"
            add(False, ("on-palette render", f"mood:{mood or 'neutral'}"), kit, prompt=prompt)
        recolours = (pal.secondary, tint(pal.primary, 0.6), tint(pal.accent, 0.5), pal.primary)
        for colour in recolours[:2] if quick else recolours:
            add(
                False, ("backdrop in a brand colour/tint",), kit, params={"backdrop_colour": colour}
            )
        add(False, ("neutral grey backdrop",), kit, params={"backdrop_colour": "#c9c9c9"})
        for hue in off_hues(pal, 2 if quick else 3):
            for lightness, chroma in levels:
                colour = in_gamut(lightness, chroma, hue)
                tag = f"off-palette backdrop C={chroma}"
                add(True, (tag,), kit, params={"backdrop_colour": colour})
        hues = brand_hues(pal)
        for other, other_pal in BRANDS.items():
            if other != name and all(
                hue_distance(wall_hue(other_pal)[0], h) >= OFF_HUE for h in hues
            ):
                swap = other_pal.model_dump(exclude={"extra"})
                add(True, ("another brand's palette",), kit, params={"palette": swap})
                break
        prop = in_gamut(0.65, 0.15, off_hues(pal, 1)[0])
        for share in PROP_SHARES:
            add(True, (f"off-palette prop {share:.0%}",), kit, edit=with_prop(share, prop, seed))
    return cases


def eval_brand_colour(quick: bool) -> dict[str, Any]:
    """Two positive sets against the same on-palette negatives: the frame recoloured (the
    backdrop in an off-palette colour), and local off-palette elements (a small prop, or
    another brand's palette, which the studio renders as a pale set whose props carry
    its colours)."""
    check = BrandColourCheck()
    cases = brand_colour_cases(quick)
    tolerances = (8.0,) if quick else (6.0, 8.0, 10.0, 12.0)
    max_shares = (0.15, 0.25, 0.35)
    frame: list[Outcome] = []
    local: list[Outcome] = []
    shares: dict[float, list[tuple[bool, float, bool]]] = {t: [] for t in tolerances}
    for truth, tags, creative, kit in cases:
        is_local = truth and not tags[0].startswith("off-palette backdrop")
        for tol in tolerances:
            context = context_for(creative, kit, params={"tolerance_de": tol})
            result = check.run(creative.image, context)
            share = float(result.evidence["off_palette_share"])
            shares[tol].append((truth, share, is_local))
            if tol == TOLERANCE_DE:
                outcome = Outcome(truth, result.verdict, tags, share)
                if truth:
                    (local if is_local else frame).append(outcome)
                else:
                    frame.append(outcome)
                    local.append(outcome)
    grid = []
    for tol in tolerances:
        for max_share in max_shares:
            t = Tally()
            for truth, share, is_local in shares[tol]:
                if not is_local:
                    t.add(truth, share > max_share)
            params = {"tolerance_de": tol, "max_off_palette_share": max_share}
            grid.append({"params": params, **t.to_json()})
    out = section(frame, "off-palette share > 25 % fails (> 10 % warns) at ΔE00 8", grid)
    out["local"] = section(local, "the same defaults")
    return out


# --- technical ------------------------------------------------------------------------------------

BLUR_SIGMAS = (1.0, 2.0, 3.0, 4.0)  # master px (1080 wide)
NOISE_SIGMAS = (3.0, 6.0, 10.0, 15.0)  # 8-bit levels, the same on R, G and B (luma noise)
VISIBLE_BLUR, VISIBLE_NOISE = 2.0, 6.0  # below these the change is hard to see: reported apart
BAND_STEPS = (2, 4, 8)  # posterisation steps (levels) of the banded gradients


def blurred(sigma: float) -> Callable[[Image.Image, Layout, Box | None], Image.Image]:
    def edit(img: Image.Image, _layout: Layout, _product: Box | None) -> Image.Image:
        return img.filter(ImageFilter.GaussianBlur(sigma))  # Pillow's radius is σ

    return edit


def noisy(sigma: float, seed: int) -> Callable[[Image.Image, Layout, Box | None], Image.Image]:
    def edit(img: Image.Image, _layout: Layout, _product: Box | None) -> Image.Image:
        rng = np.random.default_rng(seed)
        noise = rng.normal(0.0, sigma, (img.height, img.width, 1)).astype(np.float32)
        arr = np.asarray(img, dtype=np.float32) + noise
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")

    return edit


def gradient_backdrop(seed: int, span: float, w: int = 1080, h: int = 1350) -> F64:
    """A smooth studio-like backdrop (float levels): a vertical fade of ``span`` levels
    and a soft off-centre light, in a random pale hue."""
    rng = np.random.default_rng(seed)
    top = np.array(colour_at(random_hue(rng, 0.3), rng.uniform(0.55, 0.8)), dtype=np.float64)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    fade = -span * (y / h)
    light = (
        0.35 * span * np.exp(-(((x - 0.4 * w) / (0.6 * w)) ** 2 + ((y - 0.3 * h) / (0.5 * h)) ** 2))
    )
    out: F64 = top[None, None, :] + (fade + light)[..., None]
    return out


def quantised(smooth: F64, step: int, dither: bool, seed: int) -> Image.Image:
    """``smooth`` rounded to a grid of ``step`` levels, with triangular (TPDF) dither of
    ±1 step, the standard requantisation dither, or without (bands)."""
    rng = np.random.default_rng(seed)
    shape = (*smooth.shape[:2], 1)
    tpdf = rng.random(shape) - rng.random(shape) if dither else 0.0
    arr = step * np.floor(smooth / step + tpdf + 0.5)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def with_product(img: Image.Image, seed: int) -> Image.Image:
    """Stand a product cutout in the lower half, as a packshot would."""
    with Image.open(assets().products[list(PRODUCTS)[seed % len(PRODUCTS)]]) as im:
        cut = im.convert("RGBA")
    k = 0.45 * img.height / cut.height
    cut = cut.resize((round(cut.width * k), round(cut.height * k)), Image.Resampling.LANCZOS)
    img = img.copy()
    img.paste(cut, ((img.width - cut.width) // 2, img.height - cut.height - 60), cut)
    return img


def eval_technical(quick: bool) -> dict[str, Any]:
    check = TechnicalCheck()
    names = list(BRANDS)
    bases = 4 if quick else 8
    sharp: list[Outcome] = []
    noise: list[Outcome] = []
    overall: list[Outcome] = []

    def sub(result: CheckResult, key: str) -> tuple[str, float]:
        measure = result.evidence[key]
        return str(measure["verdict"]), float(measure["value"])

    for i in range(bases):
        kit = brand_kit(names[i % len(names)])
        seed = 300 + i
        prompt = f"studio packshot on a {SETS[i % len(SETS)]}, {MOODS[i % len(MOODS)]} light"
        product = list(PRODUCTS)[i % len(PRODUCTS)]

        def run(
            edit: Callable[[Image.Image, Layout, Box | None], Image.Image] | None,
            kit: BrandKit = kit,
            seed: int = seed,
            prompt: str = prompt,
            product: str = product,
        ) -> CheckResult:
            creative = make_creative(kit, seed, prompt=prompt, product=product, edit=edit)
            return check.run(creative.image, context_for(creative, kit))

        clean = run(None)
        overall.append(Outcome(False, clean.verdict, ("clean creative, overall verdict",)))
        for key, pool in (("sharpness", sharp), ("noise", noise)):
            verdict, value = sub(clean, key)
            pool.append(Outcome(False, verdict, ("clean",), value))
        for sigma in BLUR_SIGMAS:
            verdict, value = sub(run(blurred(sigma)), "sharpness")
            tag = f"blur σ={sigma:g}" + (" (mild)" if sigma < VISIBLE_BLUR else "")
            sharp.append(Outcome(sigma >= VISIBLE_BLUR, verdict, (tag,), value))
        for sigma in NOISE_SIGMAS:
            verdict, value = sub(run(noisy(sigma, seed)), "noise")
            tag = f"noise σ={sigma:g}" + (" (mild)" if sigma < VISIBLE_NOISE else "")
            noise.append(Outcome(sigma >= VISIBLE_NOISE, verdict, (tag,), value))

    bands: list[Outcome] = []
    spans = (24.0, 48.0) if quick else (16.0, 32.0, 64.0)
    for j, span in enumerate(spans):
        for k in range(1 if quick else 2):
            seed = 400 + 10 * j + k
            smooth = gradient_backdrop(seed, span)
            cases = [(s, False) for s in BAND_STEPS] + [(s, True) for s in (1, *BAND_STEPS)]
            cases.append((1, False))
            for step, dither in cases:
                img = with_product(quantised(smooth, step, dither, seed), seed)
                result = check.run(img, CheckContext(channel=FEED, brand=BRAND))
                verdict, value = sub(result, "banding")
                if dither:
                    tag = f"dithered, {step}-level grid"
                elif step == 1:
                    tag = "8-bit, no dither (mild)"
                else:
                    tag = f"banded, {step}-level steps"
                bands.append(Outcome(not dither and step > 1, verdict, (tag,), value))

    def scored(outcomes: list[Outcome]) -> list[Outcome]:
        return [o for o in outcomes if not any("(mild)" in t for t in o.tags)]

    def with_mild(
        outcomes: list[Outcome], threshold: str, key: str = "", limits: Sequence[float] = ()
    ) -> dict[str, Any]:
        """Scores without the mild levels (shown in the groups); the grid re-thresholds
        the measured values, since a sub-measure's verdict is a pure threshold on them."""
        kept = scored(outcomes)
        grid = []
        for limit in limits:
            t = Tally()
            for o in kept:
                assert o.value is not None
                t.add(o.truth, o.value < limit if key == "min_sharpness" else o.value > limit)
            grid.append({"params": {key: limit}, **t.to_json()})
        out = section(kept, threshold, grid)
        out["groups"] = groups(outcomes)  # the mild levels too, outside the scores
        return out

    return {
        "sharpness": with_mild(
            sharp,
            "Laplacian variance < 200 fails, < 500 warns",
            "min_sharpness",
            (150.0, 200.0, 300.0, 400.0, 500.0, 700.0),
        ),
        "noise": with_mild(
            noise, "noise σ > 8 levels fails, > 4 warns", "max_noise", (4.0, 5.0, 6.0, 8.0, 10.0)
        ),
        "banding": with_mild(bands, "banded share > 0.5 fails (≥ 2-level steps), > 0.25 warns"),
        "clean": groups(overall),
    }


# --- legibility -----------------------------------------------------------------------------------

LEGIBLE_PX, LEGIBLE_RATIO = 12, 3.0  # ground truth: smaller or fainter text is illegible
LEGIBILITY_SIZES = (8, 10, 11, 12, 14, 18, 24, 40)
LEGIBILITY_RATIOS = (1.2, 1.6, 2.0, 2.5, 2.9, 3.2, 4.5, 8.0)
SHORT = ("Shop now", "Fresh drop", "New in store", "Order today", "Save 30%")
MISMATCHES = (  # (drawn, expected, kind)
    ("Shop later", "Shop now", "other word"),
    ("Save 30% to", "Save 30% today", "truncated"),
    ("New store", "New in store", "word missing"),
    ("Summer sale", "Winter sale", "other word"),
    ("Fresh dorp", "Fresh drop", "typo (2 letters)"),
    ("Ordr today", "Order today", "typo (1 letter)"),
)


def eval_legibility(quick: bool) -> dict[str, Any]:
    check = LegibilityCheck()
    sizes = (8, 11, 12, 18, 40) if quick else LEGIBILITY_SIZES
    ratios = (1.2, 2.0, 2.9, 4.5, 8.0) if quick else LEGIBILITY_RATIOS
    settings: list[dict[str, Any]] = [{}]
    if not quick:
        settings += [{"view_scale": v} for v in (0.4, 0.6)]
        settings += [{"view_contrast_loss": v} for v in (1.5, 2.5, 3.0)]
        settings += [{"view_scale": 0.4, "view_contrast_loss": v} for v in (2.5, 3.0)]
    cases: list[tuple[bool, tuple[str, ...], Image.Image, TextSpec]] = []
    seed = 700
    for size in sizes:
        for ratio in ratios:
            seed += 1
            text = SHORT[seed % len(SHORT)]
            img, spec, true_ratio = contrast_case(ratio, size, seed % 2 == 0, "flat", seed, text)
            truth = size < LEGIBLE_PX or true_ratio < LEGIBLE_RATIO
            tags: tuple[str, ...] = (f"size:{size}px", f"contrast:{ratio:g}")
            cases.append((truth, tags, img, spec))
    for drawn, expected, kind in MISMATCHES[:3] if quick else MISMATCHES:
        for size in (18, 32):
            seed += 1
            img, spec, _ = contrast_case(8.0, size, True, "flat", seed, drawn)
            cases.append((True, (f"mismatch: {kind}",), img, replace(spec, text=expected)))
    by_setting: list[list[Outcome]] = []
    for params in settings:
        outcomes = []
        for truth, tags, img, spec in cases:
            context = CheckContext(
                channel=FEED, brand=BRAND, texts=(spec,), params={**params, "unintended": False}
            )
            result = check.run(img, context)
            block = result.evidence["blocks"][0]
            outcomes.append(Outcome(truth, result.verdict, tags, block.get("similarity")))
        by_setting.append(outcomes)
    grid = [grid_row(p or {"defaults": True}, o) for p, o in zip(settings, by_setting, strict=True)]
    return section(
        by_setting[0],
        "OCR similarity < 0.8 fails (< 0.9 warns), read at 0.5 px/CSS px, 2:1 loss",
        grid,
    )


# --- logo ---------------------------------------------------------------------------------------


def paste_logo(img: Image.Image, logo: Image.Image, box: Box) -> None:
    """As compose pastes it: resized in premultiplied alpha, composited by its alpha."""
    sized = logo.convert("RGBa").resize((box.width, box.height), Image.Resampling.LANCZOS)
    sized = sized.convert("RGBA")
    img.paste(sized.convert("RGB"), (box.x0, box.y0), sized.getchannel("A"))


def without_logo(creative: Creative) -> Image.Image:
    """The creative with the logo area restored from the scene (the logo zone holds no
    text, so only the logo goes)."""
    img = creative.image.copy()
    if creative.logo_box is not None:
        b = creative.logo_box
        pad = (b.x0 - 3, b.y0 - 3, b.x1 + 3, b.y1 + 3)
        img.paste(creative.scene.crop(pad), pad[:2])
    return img


def logo_cases(
    creative: Creative, logo: Image.Image, min_height: int
) -> list[tuple[bool, str, Image.Image, Box | None]]:
    """(should fail, case, image, the logo box compose would report)."""
    assert creative.logo_box is not None
    box = creative.logo_box
    aspect = logo.width / logo.height
    bare = without_logo(creative)

    def placed(b: Box, art: Image.Image = logo) -> Image.Image:
        img = bare.copy()
        paste_logo(img, art, b)
        return img

    def sized(h: int, squash: float = 1.0, x: int | None = None, y: int | None = None) -> Box:
        w = round(h * aspect)
        x0, y0 = box.x0 if x is None else x, box.y0 if y is None else y
        return Box(x0, y0, x0 + w, y0 + round(h * squash))

    r, g, b, a = logo.split()
    recoloured = Image.merge("RGBA", (b, g, r, a))
    smaller = sized(max(min_height + 4, round(box.height * 0.75)))
    small = sized(min_height - 6)
    covered = placed(box)
    ImageDraw.Draw(covered).rectangle(
        (box.x0 + box.width // 2, box.y0, box.x1, box.y1), fill=bare.getpixel((box.x1 + 4, box.y0))
    )
    outside = sized(
        box.height, x=creative.layout.product.x0 + 20, y=creative.layout.product.y1 - 2 * box.height
    )
    return [
        (False, "as composed", creative.image, box),
        (False, "smaller, above the minimum", placed(smaller), smaller),
        (True, "missing", bare, box),
        (True, f"below the {min_height}px minimum", placed(small), small),
        (True, "squashed to 80 %", placed(sized(box.height, 0.8)), sized(box.height, 0.8)),
        (True, "squashed to 93 %", placed(sized(box.height, 0.93)), sized(box.height, 0.93)),
        (True, "stretched to 120 %", placed(sized(box.height, 1.2)), sized(box.height, 1.2)),
        (True, "recoloured", placed(box, recoloured), box),
        (True, "half covered", covered, box),
        (True, "outside its zone", placed(outside), outside),
    ]


def eval_logo(quick: bool) -> dict[str, Any]:
    check = LogoCheck()
    outcomes: list[Outcome] = []
    for i, name in enumerate(list(BRANDS)[: 2 if quick else 5]):
        kit = brand_kit(name)
        creative = make_creative(kit, 600 + i, product=list(PRODUCTS)[i % len(PRODUCTS)])
        logo = logo_image(kit)
        min_height = kit.logo.min_height if kit.logo else 24
        for truth, case, img, box in logo_cases(creative, logo, min_height):
            context = replace(context_for(creative, kit, logo=logo), logo_box=box)
            result = check.run(img, context)
            outcomes.append(Outcome(truth, result.verdict, (case,), result.evidence.get("match")))
    return section(outcomes, "NCC < 0.5 missing, < 0.8 altered; ΔE00 > 10; |aspect − 1| > 5 %")


# --- safe area ----------------------------------------------------------------------------------


def safe_rect(channel: Channel, brand: BrandKit, w: int, h: int) -> tuple[int, int, int, int]:
    """Canvas minus platform insets (× density) minus the brand margin: the ground truth."""
    d, u = channel.density, channel.unsafe
    m = round(min(w, h) * brand.safe_area.margin)
    return u.left * d + m, u.top * d + m, w - u.right * d - m, h - u.bottom * d - m


def inside(box: Box, rect: tuple[int, int, int, int]) -> bool:
    return rect[0] <= box.x0 and rect[1] <= box.y0 and box.x1 <= rect[2] and box.y1 <= rect[3]


def moved(box: Box, dx: int, dy: int) -> Box:
    return Box(box.x0 + dx, box.y0 + dy, box.x1 + dx, box.y1 + dy)


def eval_safe_area(quick: bool) -> dict[str, Any]:
    check = SafeAreaCheck()
    outcomes: list[Outcome] = []
    channels = ((FEED, (1080, 1350)), (STORY, (1080, 1920)))
    for i, name in enumerate(list(BRANDS)[: 2 if quick else 4]):
        kit = brand_kit(name)
        for channel, size in channels:
            creative = make_creative(kit, 650 + i, size=size, channel=channel)
            rect = safe_rect(channel, kit, *size)
            head, *_, cta = creative.texts
            plate, logo, product = creative.plates[-1], creative.logo_box, creative.product_box
            assert plate is not None and logo is not None and product is not None
            top = head.box.y0 - rect[1]  # room between the headline and the safe box's top
            out_plate = moved(plate, rect[2] - plate.x1 + 20, 0)
            variants: list[tuple[str, dict[str, Box]]] = [
                ("as composed", {}),
                (
                    "headline nudged up 2 px, still inside",
                    {"head": moved(head.box, 0, -min(2, top))},
                ),
                ("headline 12 px into the top margin", {"head": moved(head.box, 0, -top - 12)}),
                ("logo 8 px past the left margin", {"logo": moved(logo, rect[0] - logo.x0 - 8, 0)}),
                (
                    "product at the bottom edge",
                    {"product": moved(product, 0, size[1] - 5 - product.y1)},
                ),
                ("CTA plate past the right margin, as the runner passes it", {"unseen": out_plate}),
                ("CTA plate past the right margin, plate box passed", {"plate": out_plate}),
            ]
            if runner_keeps_plate():
                variants[-2] = (
                    "CTA plate past the right margin, as the runner passes it",
                    {"plate": out_plate},
                )
            for case, change in variants:
                texts = list(creative.texts)
                if "head" in change:
                    texts[0] = replace(head, box=change["head"])
                if "plate" in change:
                    texts[-1] = replace(cta, plate=change["plate"])
                logo_box, product_box = change.get("logo", logo), change.get("product", product)
                drawn = [t.box for t in texts] + [logo_box, product_box, plate]
                drawn += [change[k] for k in ("plate", "unseen") if k in change]
                truth = not all(inside(b, rect) for b in drawn)
                context = CheckContext(
                    channel=channel,
                    brand=kit,
                    layout=creative.layout,
                    texts=tuple(texts),
                    logo_box=logo_box,
                    product_box=product_box,
                )
                result = check.run(creative.image, context)
                outcomes.append(Outcome(truth, result.verdict, (case, f"channel:{channel.name}")))
    return section(outcomes, "any placed box outside the safe box or in a platform zone (0 px)")


# --- duplicates: benchmarks/dedup_eval.py's evaluation, reused --------------------------------


def eval_duplicates(quick: bool) -> dict[str, Any]:
    from bildwerk.dedup import COLOUR_MAX, PHASH_MAX, evaluate

    data = dedup_eval.build(families=4 if quick else 12)
    chosen = evaluate(data.duplicates, data.distinct, [PHASH_MAX], [COLOUR_MAX])[0]
    flagged = round(chosen.recall * len(data.duplicates))
    wrong = round(chosen.false_positive_rate * len(data.distinct))
    per_group: dict[str, dict[str, Any]] = {}
    for name in dedup_eval.TRANSFORMS:
        pairs = [p for p, n in zip(data.duplicates, data.transform_of, strict=True) if n == name]
        found = evaluate(pairs, [], [PHASH_MAX], [COLOUR_MAX])[0].recall
        missed = len(pairs) - round(found * len(pairs))
        per_group[f"copy: {name}"] = _dup_group(len(pairs), len(pairs), 0, missed, found)
    for name in dedup_eval.VARIANTS[1:]:
        kind = f"template~{name}"
        pairs = [p for p, k in zip(data.distinct, data.variants_of, strict=True) if k == kind]
        rate = evaluate([], pairs, [PHASH_MAX], [COLOUR_MAX])[0].false_positive_rate
        per_group[f"distinct: {name}"] = _dup_group(
            len(pairs), 0, round(rate * len(pairs)), 0, rate
        )
    grid = [
        {
            "params": {"phash_max": p.phash_max, "colour_max": p.colour_max},
            "recall": round(p.recall, 4),
            "precision": round(p.precision, 4),
            "false_positive_rate": round(p.false_positive_rate, 4),
        }
        for p in evaluate(data.duplicates, data.distinct, (8, 10, 12, 14, 16, 18), (1, 2, 3))
    ]
    return {
        "cases": len(data.duplicates) + len(data.distinct),
        "positives": len(data.duplicates),
        "tp": flagged,
        "fp": wrong,
        "fn": len(data.duplicates) - flagged,
        "tn": len(data.distinct) - wrong,
        "precision": round(chosen.precision, 4),
        "recall": round(chosen.recall, 4),
        "false_positive_rate": round(chosen.false_positive_rate, 4),
        "threshold": f"pHash ≤ {PHASH_MAX} and colour ≤ {COLOUR_MAX} bits",
        "grid": grid,
        "groups": per_group,
        "table": dedup_eval.table(
            evaluate(data.duplicates, data.distinct, (8, 10, 12, 14, 16, 18), (1, 2, 3))
        ),
    }


def _dup_group(cases: int, positives: int, fp: int, fn: int, merged: float) -> dict[str, Any]:
    share = round(merged, 3)
    return {
        "cases": cases,
        "positives": positives,
        "fp": fp,
        "fn": fn,
        "failed": share,
        "flagged": share,
    }


# --- the report -----------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "contrast": eval_contrast,
    "brand_colour": eval_brand_colour,
    "technical": eval_technical,
    "legibility": eval_legibility,
    "logo": eval_logo,
    "safe_area": eval_safe_area,
    "duplicate": eval_duplicates,
}


def rows(results: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(row name, section) for the summary table, technical and brand colour split up."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name, res in results.items():
        if name == "technical":
            out += [(f"technical: {k}", res[k]) for k in ("sharpness", "noise", "banding")]
        elif name == "brand_colour":
            out += [("brand_colour: backdrop", res), ("brand_colour: local", res["local"])]
        elif name != "meta":
            out.append((name, res))
    return out


def table(results: Mapping[str, Any]) -> str:
    """The summary as Markdown: scores when ``fail`` counts as flagged, and when ``warn``
    counts too (what reaches a reviewer)."""
    lines = [
        "| check | cases | positives | precision | recall | P (warn+fail) | R (warn+fail) "
        "| threshold |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, res in rows(results):
        flagged = res.get("flagged", res)
        lines.append(
            f"| {name} | {res['cases']} | {res['positives']} | {res['precision']:.3f} "
            f"| {res['recall']:.3f} | {flagged['precision']:.3f} | {flagged['recall']:.3f} "
            f"| {res['threshold']} |"
        )
    return "\n".join(lines)


def group_table(res: Mapping[str, Any]) -> str:
    lines = [
        "| group | cases | positives | FP | FN | failed | warn+fail |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, g in res["groups"].items():
        lines.append(
            f"| {name} | {g['cases']} | {g['positives']} | {g['fp']} | {g['fn']} "
            f"| {g['failed']:.2f} | {g['flagged']:.2f} |"
        )
    return "\n".join(lines)


def grid_table(res: Mapping[str, Any]) -> str:
    lines = ["| params | precision | recall |", "|---|---:|---:|"]
    for row in res.get("grid", []):
        params = ", ".join(f"{k}={v}" for k, v in row["params"].items())
        lines.append(f"| {params} | {row['precision']:.3f} | {row['recall']:.3f} |")
    return "\n".join(lines)


def run(quick: bool = False) -> dict[str, Any]:
    """Every section's scores (see the module docstring); ``quick`` is a reduced set."""
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name, evaluate in SECTIONS.items():
        started = time.perf_counter()
        results[name] = evaluate(quick)
        seconds[name] = round(time.perf_counter() - started, 2)
    results["meta"] = {"quick": quick, "seconds": seconds}
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the reduced set the tests run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every number here")
    args = parser.parse_args(argv)
    results = run(args.quick)
    print(table(results))
    for name, res in rows(results):
        print(f"\n## {name}\n\n{group_table(res)}")
        if res.get("grid"):
            print(f"\n{grid_table(res)}" if name != "duplicate" else f"\n{res['table']}")
    print(f"\nseconds per section: {results['meta']['seconds']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
