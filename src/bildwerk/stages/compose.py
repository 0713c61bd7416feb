"""The compose stage: brand overlay (logo, headline, subline, CTA) on a generated scene.

One scene becomes one creative per channel and locale. Sizes follow a type scale derived
from the canvas, so a 300×250 ad and a 1920×1080 hero both get a clear hierarchy; text
colour is chosen from the scene pixels it lands on; right-to-left locales mirror the
alignment and CJK wraps between characters. Nothing here raises on copy that is too long:
it shrinks, then truncates, and reports a ``text_fit`` warning for QA.

Copy fitting lives in :mod:`.compose_fit`, colour and drawing in :mod:`.compose_paint`,
the logo in :mod:`.compose_logo`; this module plans the overlay and runs the checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image

from bildwerk.checks.base import CheckResult
from bildwerk.config.brand import BrandKit, hex_to_rgb
from bildwerk.config.brief import Copy
from bildwerk.fonts import FontSet
from bildwerk.geometry import Box, Layout
from bildwerk.stages.compose_fit import (
    CopyBlock,
    CopyPlan,
    FitContext,
    Scale,
    block_top,
    plan_copy,
    text_area,
)
from bildwerk.stages.compose_logo import logo_box_for, logo_zone, paste_logo
from bildwerk.stages.compose_paint import (
    LARGE_BOLD_PX,
    MIN_CONTRAST,
    TextColour,
    apply_scrim,
    choose_text_colour,
    draw_lines,
    label_offset,
    on_plate_colour,
    paint_mask,
    plate_colour,
    rounded_plate,
)
from bildwerk.textlayout import Direction, TextFit


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


# --- checks ------------------------------------------------------------------------------


def _block_issues(name: str, block: CopyBlock) -> list[str]:
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
    return issues


def _glyph_check(plan: CopyPlan) -> CheckResult:
    """``warn`` when copy has characters no font can draw (an emoji without a colour
    font, say): they are left out of the image, never drawn as tofu boxes."""
    missing = {
        ("subline" if block.role == "body" else block.role): block.fit.font.missing
        for block in (plan.headline, plan.sub, plan.cta)
        if block is not None and block.fit.font.missing
    }
    if not missing:
        return CheckResult("text_glyphs", "pass", 1.0, None, {"missing": {}})
    reason = "; ".join(
        f"{role}: no font has glyphs for {' '.join(f'U+{ord(c):04X}' for c in chars)} "
        f"({chars}), left out"
        for role, chars in missing.items()
    )
    return CheckResult("text_glyphs", "warn", 0.5, reason, {"missing": missing})


def _fit_check(plan: CopyPlan, colour: TextColour) -> CheckResult:
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
    """Every drawn box inside the safe area and no two blocks on top of each other:
    the boxes are the ink actually drawn, so stacked combining marks that climb out of
    their line show here even when the text fitter let them through."""
    boxes: dict[str, list[int]] = {}
    for run in texts:
        boxes[run.role] = list(run.box.as_tuple())
        if run.plate is not None:
            boxes[f"{run.role}_plate"] = list(run.plate.as_tuple())
    if logo_box is not None:
        boxes["logo"] = list(logo_box.as_tuple())
    outside = [k for k, v in boxes.items() if not layout.safe.contains(Box(*v))]
    overlaps = [
        [a, b]
        for i, a in enumerate(boxes)
        for b in list(boxes)[i + 1 :]
        if b.removesuffix("_plate") != a.removesuffix("_plate")
        and _overlap(Box(*boxes[a]), Box(*boxes[b]))
    ]
    spilled = [r.role for r in texts if r.plate is not None and not r.plate.contains(r.box)]
    bad = len(set(outside) | set(spilled) | {k for pair in overlaps for k in pair})
    issues = [f"outside the safe area: {', '.join(outside)}"] if outside else []
    issues += [f"{a} overlaps {b}" for a, b in overlaps]
    issues += [f"{role} spills out of its button" for role in spilled]
    return CheckResult(
        "safe_area",
        "fail" if issues else "pass",
        round(1.0 - bad / max(1, len(boxes)), 3),
        "; ".join(issues) or None,
        {
            "safe": list(layout.safe.as_tuple()),
            "boxes": boxes,
            "outside": outside,
            "overlaps": overlaps,
            "spilled": spilled,
        },
    )


def _overlap(a: Box, b: Box) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


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


def _place(plan: CopyPlan, area: Box, direction: Direction, portrait: bool) -> _Placed:
    """Baseline origins for every line and the CTA plate.

    Stacked: headline, subline, CTA from the block's top. Row: the text block beside a
    CTA plate that is centred vertically at the line's end.
    """
    align: Literal["left", "right"] = "right" if direction == "rtl" else "left"
    top = block_top(area, plan.height, portrait)
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
    label = [(lx, plate.y0 + plate.height // 2 + label_offset(fit))]
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
        logo_box = logo_box_for(
            logo, logo_zone(layout, direction), brand.logo, short, direction, density
        )
    area = text_area(layout, logo_box, brand)
    ctx = FitContext(fonts, locale, direction, Scale.of(layout, density))
    plan = plan_copy(ctx, copy, area)
    placed = _place(plan, area, direction, layout.orientation == "portrait")
    colour = choose_text_colour(image, placed.region, brand)
    if colour.contrast < MIN_CONTRAST and brand.overlay.scrim:
        image, colour = apply_scrim(image, placed.region, layout, colour)
    texts = _draw_copy(image, plan, placed, colour, brand, density)
    if logo is not None and logo_box is not None:
        paste_logo(image, logo, logo_box)
    checks = [_fit_check(plan, colour), _glyph_check(plan), _safe_check(layout, texts, logo_box)]
    return Composed(image, texts, logo_box, checks)


def _draw_copy(
    image: Image.Image,
    plan: CopyPlan,
    placed: _Placed,
    colour: TextColour,
    brand: BrandKit,
    density: int,
) -> list[TextRun]:
    texts: list[TextRun] = []
    blocks = [("headline", plan.headline, placed.head), ("subline", plan.sub, placed.sub)]
    for role, block, origins in blocks:
        if block is None or not block.fit.lines:
            continue
        box = paint_mask(image, draw_lines(image.size, block.fit, origins), colour.hex)
        if box is not None:
            texts.append(_run(role, block.fit, box, colour.hex, None, None))
    if plan.cta and placed.plate is not None:
        fill = plate_colour(image, placed.plate, brand)
        rounded_plate(image, placed.plate, fill)
        label = on_plate_colour(
            hex_to_rgb(fill), brand, plan.cta.fit.size >= LARGE_BOLD_PX * density
        )
        mask = draw_lines(image.size, plan.cta.fit, placed.label)
        box = paint_mask(image, mask, label)
        if box is not None:
            texts.append(_run("cta", plan.cta.fit, box, label, fill, placed.plate))
    return texts


def _run(
    role: str, fit: TextFit, box: Box, colour: str, background: str | None, plate: Box | None
) -> TextRun:
    return TextRun(
        role, fit.text, box, colour, background, fit.size, len(fit.lines), fit.font.name, plate
    )
