"""The compose stage: brand overlay (logo, headline, subline, CTA) on a generated scene.

One scene becomes one creative per channel and locale. Sizes follow a type scale derived
from the canvas, so a 300×250 ad and a 1920×1080 hero both get a clear hierarchy; text
colour is chosen from the scene pixels it lands on; right-to-left locales mirror the
alignment and CJK wraps between characters. Nothing here raises on copy that is too long:
it shrinks, then truncates, and reports a ``text_fit`` warning for QA.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from bildwerk.checks.base import CheckResult
from bildwerk.colour import contrast_ratio, relative_luminance
from bildwerk.config.brand import BrandKit, Logo, hex_to_rgb
from bildwerk.config.brief import Copy
from bildwerk.fonts import FontSet, Role
from bildwerk.geometry import Box, Layout
from bildwerk.textlayout import Direction, Shaping, TextFit, fit_text, is_cjk_breakable

Rgb = tuple[int, int, int]
FloatArray = NDArray[np.float64]

MIN_CONTRAST = 4.5  # WCAG AA for body text; headlines get the same bar on busy scenes
MIN_CONTRAST_LARGE = 3.0  # WCAG AA for large text (bold >= 14 pt, i.e. ~19 px at 1x)
_LARGE_BOLD = 19
LEGIBLE_PX = 12  # smallest readable size at 1× display density
_SUPERSAMPLE = 4  # anti-aliasing factor for the CTA plate's rounded corners


@dataclass(frozen=True)
class TextRun:
    """One rendered text block; QA (OCR, contrast) reads these later.

    ``text`` is what was drawn, one line per ``\n`` (CJK lines join without spaces);
    ``box`` is the pixel bbox of the drawn glyphs; ``plate`` the button behind a CTA label.
    """

    role: str
    text: str
    box: Box
    color: str
    background: str | None
    font_size: int
    lines: int
    font: str
    plate: Box | None = None


@dataclass
class Composed:
    image: Image.Image
    texts: list[TextRun]
    logo_box: Box | None
    checks: list[CheckResult]


# --- type scale --------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """Sizes in canvas px for one canvas.

    Sizes grow sub-linearly with the display size (the shorter side in CSS px): a 250 px
    ad needs relatively larger type than a 1080 px hero to stay readable. Very wide or
    tall banners (728×90) use a size closer to their area, not just their 90 px side.
    """

    legible: int
    head_max: int
    head_floor: int
    body: int
    cta: int
    small: bool

    @classmethod
    def of(cls, layout: Layout, density: int = 1) -> Scale:
        short = min(layout.width, layout.height)
        css = max(short, 0.6 * (layout.width * layout.height) ** 0.5) / max(1, density)
        legible = LEGIBLE_PX * density
        head_max = max(legible, round(0.22 * css**0.9 * density))
        body = max(legible, round(0.52 * css**0.6 * density))
        return cls(
            legible=legible,
            head_max=head_max,
            head_floor=max(legible, round(head_max * 0.55)),
            body=body,
            cta=max(legible, round(body * 0.95)),
            small=css < 600,
        )


def _leading(text: str, role: str) -> float:
    """Line spacing: CJK and Arabic need more room than Latin for marks and density."""
    tall = any(is_cjk_breakable(c) or 0x0600 <= ord(c) <= 0x08FF for c in text)
    base = 1.08 if role == "headline" else 1.32
    return base + (0.17 if tall else 0.0)


# --- layout of the copy block ------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """A fitted text block. ``relaxed``: it needed more lines or a smaller size than the
    channel's guidance allows (too long for this channel; QA warns)."""

    role: Role
    fit: TextFit
    ideal: int
    floor: int
    max_lines: int
    relaxed: bool = False


@dataclass(frozen=True)
class _Plan:
    """Sizes of headline, subline and CTA; ``unit`` (the body size) sets the rhythm."""

    head: _Block | None
    sub: _Block | None
    cta: _Block | None
    unit: int
    row: bool = False  # CTA beside the text (wide, short zones such as 728×90)
    dropped: tuple[str, ...] = ()

    @property
    def headline(self) -> _Block:
        assert self.head is not None, "headline not planned yet"
        return self.head

    def gap_sub(self, head_size: int) -> int:
        return max(round(self.unit * 0.9), round(head_size * 0.38))

    @property
    def gap_cta(self) -> int:
        return round(self.unit * 1.25)

    @property
    def pad(self) -> tuple[int, int]:
        """CTA plate padding (x, y), proportional to the label."""
        size = self.cta.fit.size if self.cta else 0
        return round(size * 1.05), round(size * 0.68)

    @property
    def cta_height(self) -> int:
        return self.cta.fit.size + 2 * self.pad[1] if self.cta else 0

    def rest_height(self, head_size: int) -> int:
        """Height of everything below the headline, for a headline of ``head_size``."""
        h = self.gap_sub(head_size) + self.sub.fit.height if self.sub else 0
        return h + (self.gap_cta + self.cta_height if self.cta else 0)

    @property
    def text_height(self) -> int:
        """Headline plus subline."""
        head = self.head.fit if self.head else None
        h = head.height if head else 0
        return h + (self.gap_sub(head.size if head else 0) + self.sub.fit.height if self.sub else 0)

    @property
    def height(self) -> int:
        if self.row:
            return max(self.text_height, self.cta_height)
        return self.text_height + (self.gap_cta + self.cta_height if self.cta else 0)


@dataclass(frozen=True)
class _Ctx:
    fonts: FontSet
    locale: str
    direction: Direction
    scale: Scale

    @property
    def language(self) -> str:
        return self.locale.replace("_", "-").split("-")[0].lower()

    def fit(
        self,
        text: str,
        role: Role,
        width: int,
        height: int,
        lo: int,
        hi: int,
        lines: int,
        balance: bool = False,
    ) -> TextFit:
        font = self.fonts.for_text(text, role, self.locale)
        return fit_text(
            text,
            width,
            height,
            font,
            min_size=lo,
            max_size=hi,
            max_lines=lines,
            direction=self.direction,
            language=self.language,
            leading=_leading(text, "headline" if role != "body" else "body"),
            balance=balance,
        )


def _secondary(ctx: _Ctx, copy: Copy, area: Box, shrink: float) -> _Plan:
    """Subline and CTA at ``shrink`` × their ideal size; the headline is still open."""
    s = ctx.scale
    unit = max(s.legible, round(s.body * shrink))
    sub = cta = None
    if copy.subline:
        lines = 2 if s.small else 3
        fit = ctx.fit(
            copy.subline, "body", area.width, round(area.height * 0.4), s.legible, unit, lines
        )
        sub = _Block("body", fit, s.body, s.legible, lines)
    if copy.cta:
        size = max(s.legible, round(s.cta * shrink))
        width = area.width - 2 * round(size * 1.05)
        fit = ctx.fit(copy.cta, "cta", width, size * 2, s.legible, size, 1)
        cta = _Block("cta", fit, s.cta, s.legible, 1)
    return _Plan(None, sub, cta, unit)


def _headline(
    ctx: _Ctx, text: str, area: Box, plan: _Plan, lines: int, guidance: int
) -> _Block | None:
    """The headline in at most ``lines`` lines at or above its design floor, or None.

    Its room is the area minus the blocks below, whose gap grows with the headline, so a
    fit that overshoots is redone in the room it actually leaves. One line fewer wins
    when it costs under 20 % of the size (no orphan lines).
    """
    s = ctx.scale

    def attempt(n: int) -> TextFit | None:
        room = area.height - plan.rest_height(s.head_floor)
        for _ in range(4):
            fit = ctx.fit(text, "headline", area.width, room, s.head_floor, s.head_max, n, True)
            if fit.truncated or fit.broken:
                return None
            over = fit.height + plan.rest_height(fit.size) - area.height
            if over <= 0:
                return fit
            room -= over
        return None

    fit = attempt(lines)
    if fit is None:
        return None
    while len(fit.lines) > 1:
        fewer = attempt(len(fit.lines) - 1)
        if fewer is None or fewer.size < fit.size * 0.8:
            break
        fit = fewer
    return _Block("headline", fit, s.head_max, s.head_floor, guidance, lines > guidance)


def _plan(ctx: _Ctx, copy: Copy, area: Box) -> _Plan:
    """Sizes for the three blocks. The headline gets the most room: the subline and the
    CTA shrink first; then the headline may take one line more than the channel's
    guidance, and only then go below its design floor (QA reports both)."""
    s = ctx.scale
    guidance = 2 if s.small else 3
    plan = _Plan(None, None, None, s.body)
    for lines in (guidance, guidance + 1):
        for shrink in (1.0, 0.88, 0.76):
            plan = _secondary(ctx, copy, area, shrink)
            head = _headline(ctx, copy.headline, area, plan, lines, guidance)
            if head is not None:
                return _keep_hierarchy(ctx, copy, area, replace(plan, head=head))
    room = area.height - plan.rest_height(s.head_floor)
    fit = ctx.fit(
        copy.headline,
        "headline",
        area.width,
        room,
        s.legible,
        s.head_floor,
        guidance + 1,
        balance=True,
    )
    head = _Block("headline", fit, s.head_max, s.head_floor, guidance, relaxed=True)
    return _keep_hierarchy(ctx, copy, area, replace(plan, head=head))


_PLATE_RATIO = 1 + 2 * 0.68  # CTA plate height per px of label size


def _plan_row(ctx: _Ctx, copy: Copy, area: Box) -> _Plan | None:
    """CTA at the end of a wide, short zone, text beside it; None if the CTA cannot fit."""
    s = ctx.scale
    size = min(s.cta, int(area.height / _PLATE_RATIO))
    if size < s.legible:
        return None
    fit = ctx.fit(copy.cta, "cta", area.width // 3, size * 2, s.legible, size, 1)
    cta = _Block("cta", fit, s.cta, s.legible, 1)
    plate = fit.width + 2 * round(fit.size * 1.05) + round(s.body * 1.25)
    rest = _row_text_area(area, plate, ctx.direction)
    inner = _plan(ctx, copy.model_copy(update={"cta": ""}), rest)
    return replace(inner, cta=cta, row=True)


def _row_text_area(area: Box, plate_and_gap: int, direction: Direction) -> Box:
    if direction == "rtl":
        return Box(area.x0 + plate_and_gap, area.y0, area.x1, area.y1)
    return Box(area.x0, area.y0, area.x1 - plate_and_gap, area.y1)


def _plan_copy(ctx: _Ctx, copy: Copy, area: Box) -> _Plan:
    """The plan for the copy zone. When the blocks leave no room for a whole headline,
    the subline is left out, then the CTA (QA reports what was dropped)."""
    variants: list[tuple[Copy, tuple[str, ...]]] = [(copy, ())]
    if copy.subline:
        variants.append((copy.model_copy(update={"subline": ""}), ("subline",)))
    if copy.cta:
        variants.append(
            (
                copy.model_copy(update={"subline": "", "cta": ""}),
                tuple(r for r in ("subline", "cta") if getattr(copy, r)),
            )
        )
    fallback: _Plan | None = None
    for variant, dropped in variants:
        plan = _plan_row(ctx, variant, area) if _is_row(variant, area) else None
        plan = replace(plan or _plan(ctx, variant, area), dropped=dropped)
        fits = plan.height <= area.height
        if fits and not plan.headline.fit.truncated:
            return plan
        if fallback is None or (fits and fallback.height > area.height):
            fallback = plan
    assert fallback is not None
    return fallback


def _is_row(copy: Copy, area: Box) -> bool:
    return bool(copy.cta) and area.width > 3.5 * area.height


def _keep_hierarchy(ctx: _Ctx, copy: Copy, area: Box, plan: _Plan) -> _Plan:
    """A shrunken headline must still outrank the subline: cap the subline at 60 %."""
    cap = max(ctx.scale.legible, round(plan.headline.fit.size * 0.6))
    if plan.sub is None or plan.sub.fit.size <= cap:
        return plan
    fit = ctx.fit(
        copy.subline,
        "body",
        area.width,
        plan.sub.fit.height,
        ctx.scale.legible,
        cap,
        plan.sub.max_lines,
    )
    return replace(plan, sub=replace(plan.sub, fit=fit), unit=min(plan.unit, cap))


def _text_area(layout: Layout, logo_box: Box | None, brand: BrandKit) -> Box:
    """The copy zone, pushed down to honour the logo's clear space when they stack."""
    area = layout.copy
    if logo_box is None or logo_box.x1 <= area.x0 or logo_box.x0 >= area.x1:
        return area
    clear = round(brand.safe_area.logo_clear_space * logo_box.height)
    top = max(area.y0, logo_box.y1 + clear)
    if area.y1 - top < area.height * 0.75:
        return area
    return Box(area.x0, top, area.x1, area.y1)


def _block_top(area: Box, height: int, portrait: bool) -> int:
    """Portrait copy hangs from the top (under the logo); columns sit a little above the
    optical centre, where a reader's eye lands first."""
    free = max(0, area.height - height)
    return area.y0 + (0 if portrait else round(free * 0.42))


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
    box = _clip(box, image.width, image.height)
    arr = np.asarray(image.crop(box.as_tuple()), dtype=np.float64).reshape(-1, 3)
    step = max(1, len(arr) // 20000)
    out: FloatArray = arr[::step]
    return out


@dataclass(frozen=True)
class _Colour:
    hex: str
    source: str
    contrast: float
    scrim: float


def _text_colour(image: Image.Image, region: Box, brand: BrandKit) -> _Colour:
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
            return _Colour(value, name, round(score, 2), 0.0)
    name, value, score = max(scored, key=lambda t: t[2])
    return _Colour(value, name, round(score, 2), 0.0)


def _on_plate(fill: Rgb, brand: BrandKit, large: bool) -> str:
    """Label colour for a CTA plate: the first brand-ish option that reaches AA (3:1 for
    large bold labels, as WCAG allows), else the one with the most contrast."""
    pal = brand.palette
    options = [pal.background, "#ffffff", pal.text, "#111111"]
    need = MIN_CONTRAST_LARGE if large else MIN_CONTRAST
    for value in options:
        if contrast(hex_to_rgb(value), fill) >= need:
            return value
    return max(options, key=lambda v: contrast(hex_to_rgb(v), fill))


def _plate_colour(image: Image.Image, region: Box, brand: BrandKit) -> str:
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


def _apply_scrim(
    image: Image.Image, region: Box, layout: Layout, colour: _Colour
) -> tuple[Image.Image, _Colour]:
    """Darken behind the copy just enough for light text to reach AA. Dark scrims read as
    natural shade on photos, so dark text is swapped for white first."""
    if float(luminance(np.array(hex_to_rgb(colour.hex), dtype=np.float64))) < 0.4:
        colour = _Colour("#ffffff", "white", colour.contrast, 0.0)
    vertical = layout.orientation == "portrait"
    tint = Image.new("RGB", image.size, (0, 0, 0))
    out, score, alpha = image, colour.contrast, 0.0
    for alpha in (0.3, 0.45, 0.6, 0.75):
        mask = _scrim_mask(image.size, region, layout.product, vertical, alpha)
        out = Image.composite(tint, image, mask)
        score = _contrast_p10(hex_to_rgb(colour.hex), _sample(out, region))
        if score >= MIN_CONTRAST:
            break
    return out, _Colour(colour.hex, colour.source, round(score, 2), alpha)


# --- drawing -----------------------------------------------------------------------------


def _draw_lines(size: tuple[int, int], fit: TextFit, origins: list[tuple[int, int]]) -> Image.Image:
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


def _paint(image: Image.Image, mask: Image.Image, colour: str) -> Box | None:
    """Fill ``colour`` through ``mask``; returns the box of the pixels actually drawn."""
    bbox = mask.getbbox()
    if bbox is None:
        return None
    box = Box(*bbox)
    solid = Image.new("RGB", (box.width, box.height), hex_to_rgb(colour))
    image.paste(solid, (box.x0, box.y0), mask.crop(bbox))
    return box


def _rounded_plate(image: Image.Image, box: Box, colour: str) -> None:
    """An anti-aliased pill: drawn 4× larger and reduced, since Pillow's shapes are not
    anti-aliased."""
    k = _SUPERSAMPLE
    big = Image.new("L", (box.width * k, box.height * k), 0)
    ImageDraw.Draw(big).rounded_rectangle(
        (0, 0, box.width * k - 1, box.height * k - 1), radius=box.height * k // 2, fill=255
    )
    mask = big.resize((box.width, box.height), Image.Resampling.BOX)
    image.paste(Image.new("RGB", mask.size, hex_to_rgb(colour)), (box.x0, box.y0), mask)


def _label_offset(fit: TextFit) -> int:
    """Baseline offset that centres a CTA label in its plate: cap height for Latin-like
    scripts (descenders hang below), the ink box for Arabic and CJK."""
    _, top, _, bottom = fit.extents[0]
    if any(is_cjk_breakable(c) or 0x0590 <= ord(c) <= 0x08FF for c in fit.lines[0]):
        return -(top + bottom) // 2
    cap = fit.load().getbbox("H", anchor="ls")[1]
    return int(-cap) // 2


# --- logo --------------------------------------------------------------------------------


def logo_zone(layout: Layout, direction: Direction) -> Box:
    """Where the logo may go. Right-to-left creatives mirror the zone to the right end of
    the copy column, above the right-aligned text, when that spot is free."""
    zone = layout.logo
    if direction == "ltr":
        return zone
    mirrored = Box(layout.copy.x1 - zone.width, zone.y0, layout.copy.x1, zone.y1)
    blocked = mirrored.intersects(layout.product) or mirrored.intersects(layout.copy)
    return zone if blocked or not layout.safe.contains(mirrored) else mirrored


def _logo_box(
    logo: Image.Image,
    zone: Box,
    spec: Logo | None,
    short: int,
    direction: Direction,
    density: int = 1,
) -> Box:
    """Brand-specified height (at least its minimum, in CSS px, when the zone allows),
    aspect kept."""
    height_frac = spec.height if spec else 0.06
    min_h = (spec.min_height if spec else 24) * density
    h = min(zone.height, max(min_h, round(height_frac * short)))
    w = max(1, round(logo.width * h / max(1, logo.height)))
    if w > zone.width:
        w = zone.width
        h = max(1, round(logo.height * w / max(1, logo.width)))
    y0 = zone.y0 + (zone.height - h) // 2
    x0 = zone.x0 if direction == "ltr" else zone.x1 - w
    return Box(x0, y0, x0 + w, y0 + h)


def _paste_logo(image: Image.Image, logo: Image.Image, box: Box) -> None:
    """Resize in premultiplied alpha so transparent edges do not pick up dark fringes."""
    sized = (
        logo.convert("RGBA")
        .convert("RGBa")
        .resize((box.width, box.height), Image.Resampling.LANCZOS)
        .convert("RGBA")
    )
    image.paste(sized.convert("RGB"), (box.x0, box.y0), sized.getchannel("A"))


# --- checks ------------------------------------------------------------------------------


def _block_issues(name: str, block: _Block) -> list[str]:
    fit = block.fit
    issues: list[str] = []
    if fit.truncated:
        issues.append(f"{name} truncated to fit")
    elif block.relaxed and (len(fit.lines) > block.max_lines or fit.size < block.floor):
        n = len(fit.lines)
        issues.append(
            f"{name} too long for this channel: {n} line{'s' * (n != 1)} at "
            f"{fit.size}px (aim for at most {block.max_lines} lines at "
            f"{block.floor}px or more)"
        )
    elif fit.size < block.floor:
        issues.append(f"{name} shrunk to {fit.size}px, below its {block.floor}px minimum")
    if fit.broken:
        issues.append(f"{name} has a word too long for its box, broken mid-word")
    if fit.font.missing:
        issues.append(f"{name}: no font has glyphs for {fit.font.missing!r}")
    return issues


def _fit_check(plan: _Plan, colour: _Colour) -> CheckResult:
    """``warn`` when copy was truncated, shrunk below its floor, broken mid-word, needed
    more lines than the channel allows, or has characters no font can draw."""
    issues: list[str] = []
    runs: list[dict[str, Any]] = []
    for block in (plan.headline, plan.sub, plan.cta):
        if block is None or not block.fit.lines:
            continue
        fit = block.fit
        name = "subline" if block.role == "body" else block.role
        runs.append(
            {
                "role": name,
                "size": fit.size,
                "ideal": block.ideal,
                "floor": block.floor,
                "lines": len(fit.lines),
                "max_lines": block.max_lines,
                "truncated": fit.truncated,
                "broken_words": fit.broken,
                "font": fit.font.name,
                "missing_glyphs": fit.font.missing,
            }
        )
        issues.extend(_block_issues(name, block))
    issues.extend(f"{role} left out: no room for it in this channel" for role in plan.dropped)
    score = 1.0
    if issues:
        worst = min((min(1.0, r["size"] / max(1, r["floor"])) for r in runs), default=1.0)
        score = round(min(0.9, worst) * (0.5 if any(r["truncated"] for r in runs) else 1.0), 3)
    evidence = {
        "runs": runs,
        "dropped": list(plan.dropped),
        "colour": {
            "source": colour.source,
            "hex": colour.hex,
            "contrast_p10": colour.contrast,
            "scrim": colour.scrim,
        },
    }
    return CheckResult(
        "text_fit", "warn" if issues else "pass", score, "; ".join(issues) or None, evidence
    )


def _safe_check(layout: Layout, texts: list[TextRun], logo_box: Box | None) -> CheckResult:
    boxes: dict[str, list[int]] = {}
    for run in texts:
        boxes[run.role] = list(run.box.as_tuple())
        if run.plate is not None:
            boxes[f"{run.role}_plate"] = list(run.plate.as_tuple())
    if logo_box is not None:
        boxes["logo"] = list(logo_box.as_tuple())
    outside = [k for k, v in boxes.items() if not layout.safe.contains(Box(*v))]
    score = 1.0 - len(outside) / max(1, len(boxes))
    return CheckResult(
        "safe_area",
        "fail" if outside else "pass",
        round(score, 3),
        f"outside the safe area: {', '.join(outside)}" if outside else None,
        {"safe": list(layout.safe.as_tuple()), "boxes": boxes, "outside": outside},
    )


# --- the stage ---------------------------------------------------------------------------


def _clip(box: Box, w: int, h: int) -> Box:
    x0, y0 = min(max(0, box.x0), w - 1), min(max(0, box.y0), h - 1)
    return Box(x0, y0, max(x0 + 1, min(w, box.x1)), max(y0 + 1, min(h, box.y1)))


@dataclass(frozen=True)
class _Placed:
    head: list[tuple[int, int]]
    sub: list[tuple[int, int]]
    plate: Box | None
    label: list[tuple[int, int]]
    region: Box


def _extent(blocks: list[tuple[TextFit, list[tuple[int, int]]]], default: Box) -> Box:
    """Union of the line boxes of placed blocks: where the text will actually be."""
    boxes = [
        (x + x0, y + y0, x + x1, y + y1)
        for fit, origins in blocks
        for (x0, y0, x1, y1), (x, y) in zip(fit.extents, origins, strict=True)
    ]
    if not boxes:
        return default
    return Box(
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _place(plan: _Plan, area: Box, direction: Direction, portrait: bool) -> _Placed:
    """Baseline origins for every line and the CTA plate.

    Stacked: headline, subline, CTA from the block's top. Row: the text block beside a
    CTA plate that is centred vertically at the line's end.
    """
    align: Literal["left", "right"] = "right" if direction == "rtl" else "left"
    top = _block_top(area, plan.height, portrait)
    head = plan.headline.fit
    head_origins = head.origins(area.x0, area.x1, top, align)
    y = top + head.height
    sub: list[tuple[int, int]] = []
    if plan.sub:
        y += plan.gap_sub(head.size)
        sub = plan.sub.fit.origins(area.x0, area.x1, y, align)
        y += plan.sub.fit.height
    blocks = [(head, head_origins), *([(plan.sub.fit, sub)] if plan.sub else [])]
    region = _extent(blocks, Box(area.x0, top, area.x1, max(y, top + 1)))
    if not plan.cta:
        return _Placed(head_origins, sub, None, [], region)
    fit = plan.cta.fit
    pad = plan.pad[0]
    width = fit.width + 2 * pad
    if plan.row:  # right after the text block, in reading order
        x0 = region.x1 + plan.gap_cta if align == "left" else region.x0 - plan.gap_cta - width
        x0 = min(max(x0, area.x0), area.x1 - width)
    else:  # under the text, on the same edge
        x0 = area.x0 if align == "left" else area.x1 - width
    y0 = top + (plan.height - plan.cta_height) // 2 if plan.row else y + plan.gap_cta
    plate = Box(x0, y0, x0 + width, y0 + plan.cta_height)
    left, _, right, _ = fit.extents[0]
    lx = x0 + pad - min(left, 0) if align == "left" else plate.x1 - pad - right
    label = [(lx, plate.y0 + plate.height // 2 + _label_offset(fit))]
    return _Placed(head_origins, sub, plate, label, region)


def compose(
    scene: Image.Image,
    layout: Layout,
    copy: Copy,
    *,
    brand: BrandKit,
    locale: str,
    direction: Literal["ltr", "rtl"],
    logo: Image.Image | None,
    fonts: FontSet,
    density: int = 1,
) -> Composed:
    """Overlay logo, headline, subline and CTA on ``scene`` inside ``layout``.

    ``density`` is the channel's display density (2 for a 300×250 ad mastered at
    600×500); it sets the legibility floor (12 px at 1×) and the type scale. The result is
    byte-identical for identical inputs.
    """
    image = scene.convert("RGB")
    if image.size != (layout.width, layout.height):
        image = image.resize((layout.width, layout.height), Image.Resampling.LANCZOS)
    short = min(layout.width, layout.height)
    logo_box = None
    if logo is not None:
        logo_box = _logo_box(
            logo, logo_zone(layout, direction), brand.logo, short, direction, density
        )
    area = _text_area(layout, logo_box, brand)
    ctx = _Ctx(fonts, locale, direction, Scale.of(layout, density))
    plan = _plan_copy(ctx, copy, area)
    placed = _place(plan, area, direction, layout.orientation == "portrait")
    colour = _text_colour(image, placed.region, brand)
    if colour.contrast < MIN_CONTRAST and brand.overlay.scrim:
        image, colour = _apply_scrim(image, placed.region, layout, colour)
    texts = _draw_copy(image, plan, placed, colour, brand, density)
    if logo is not None and logo_box is not None:
        _paste_logo(image, logo, logo_box)
    checks = [_fit_check(plan, colour), _safe_check(layout, texts, logo_box)]
    return Composed(image, texts, logo_box, checks)


def _draw_copy(
    image: Image.Image, plan: _Plan, placed: _Placed, colour: _Colour, brand: BrandKit, density: int
) -> list[TextRun]:
    texts: list[TextRun] = []
    blocks = [("headline", plan.headline, placed.head), ("subline", plan.sub, placed.sub)]
    for role, block, origins in blocks:
        if block is None or not block.fit.lines:
            continue
        box = _paint(image, _draw_lines(image.size, block.fit, origins), colour.hex)
        if box is not None:
            texts.append(_run(role, block.fit, box, colour.hex, None, None))
    if plan.cta and placed.plate is not None:
        fill = _plate_colour(image, placed.plate, brand)
        _rounded_plate(image, placed.plate, fill)
        label = _on_plate(hex_to_rgb(fill), brand, plan.cta.fit.size >= _LARGE_BOLD * density)
        mask = _draw_lines(image.size, plan.cta.fit, placed.label)
        box = _paint(image, mask, label)
        if box is not None:
            texts.append(_run("cta", plan.cta.fit, box, label, fill, placed.plate))
    return texts


def _run(
    role: str, fit: TextFit, box: Box, colour: str, background: str | None, plate: Box | None
) -> TextRun:
    return TextRun(
        role, fit.text, box, colour, background, fit.size, len(fit.lines), fit.font.name, plate
    )
