"""Copy fitting for the compose stage: a type scale derived from the canvas, and the copy
block (headline, subline, CTA) planned to fit its area, shrinking then truncating."""

from __future__ import annotations

from dataclasses import dataclass, replace

from bildwerk.config.brand import BrandKit
from bildwerk.config.brief import Copy
from bildwerk.fonts import FontSet, Role
from bildwerk.geometry import Box, Layout
from bildwerk.textlayout import Direction, TextFit, fit_text, is_cjk_breakable

LEGIBLE_PX = 12  # smallest readable size at 1× display density


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
class CopyBlock:
    """A fitted text block. ``relaxed``: it needed more lines or a smaller size than the
    channel's guidance allows (too long for this channel; QA warns)."""

    role: Role
    fit: TextFit
    ideal: int
    floor: int
    max_lines: int
    relaxed: bool = False


@dataclass(frozen=True)
class CopyPlan:
    """Sizes of headline, subline and CTA; ``unit`` (the body size) sets the rhythm."""

    head: CopyBlock | None
    sub: CopyBlock | None
    cta: CopyBlock | None
    unit: int
    row: bool = False  # CTA beside the text (wide, short zones such as 728×90)
    dropped: tuple[str, ...] = ()

    @property
    def headline(self) -> CopyBlock:
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
class FitContext:
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


def _secondary(ctx: FitContext, copy: Copy, area: Box, shrink: float) -> CopyPlan:
    """Subline and CTA at ``shrink`` × their ideal size; the headline is still open."""
    s = ctx.scale
    unit = max(s.legible, round(s.body * shrink))
    sub = cta = None
    if copy.subline:
        lines = 2 if s.small else 3
        fit = ctx.fit(
            copy.subline, "body", area.width, round(area.height * 0.4), s.legible, unit, lines
        )
        sub = CopyBlock("body", fit, s.body, s.legible, lines)
    if copy.cta:
        size = max(s.legible, round(s.cta * shrink))
        width = area.width - 2 * round(size * 1.05)
        fit = ctx.fit(copy.cta, "cta", width, size * 2, s.legible, size, 1)
        cta = CopyBlock("cta", fit, s.cta, s.legible, 1)
    return CopyPlan(None, sub, cta, unit)


def _headline(
    ctx: FitContext, text: str, area: Box, plan: CopyPlan, lines: int, guidance: int
) -> CopyBlock | None:
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
    return CopyBlock("headline", fit, s.head_max, s.head_floor, guidance, lines > guidance)


def _plan(ctx: FitContext, copy: Copy, area: Box) -> CopyPlan:
    """Sizes for the three blocks. The headline gets the most room: the subline and the
    CTA shrink first; then the headline may take one line more than the channel's
    guidance, and only then go below its design floor (QA reports both)."""
    s = ctx.scale
    guidance = 2 if s.small else 3
    plan = CopyPlan(None, None, None, s.body)
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
    head = CopyBlock("headline", fit, s.head_max, s.head_floor, guidance, relaxed=True)
    return _keep_hierarchy(ctx, copy, area, replace(plan, head=head))


_PLATE_RATIO = 1 + 2 * 0.68  # CTA plate height per px of label size


def _plan_row(ctx: FitContext, copy: Copy, area: Box) -> CopyPlan | None:
    """CTA at the end of a wide, short zone, text beside it; None if the CTA cannot fit."""
    s = ctx.scale
    size = min(s.cta, int(area.height / _PLATE_RATIO))
    if size < s.legible:
        return None
    fit = ctx.fit(copy.cta, "cta", area.width // 3, size * 2, s.legible, size, 1)
    cta = CopyBlock("cta", fit, s.cta, s.legible, 1)
    plate = fit.width + 2 * round(fit.size * 1.05) + round(s.body * 1.25)
    rest = _row_text_area(area, plate, ctx.direction)
    inner = _plan(ctx, copy.model_copy(update={"cta": ""}), rest)
    return replace(inner, cta=cta, row=True)


def _row_text_area(area: Box, plate_and_gap: int, direction: Direction) -> Box:
    if direction == "rtl":
        return Box(area.x0 + plate_and_gap, area.y0, area.x1, area.y1)
    return Box(area.x0, area.y0, area.x1 - plate_and_gap, area.y1)


def plan_copy(ctx: FitContext, copy: Copy, area: Box) -> CopyPlan:
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
    fallback: CopyPlan | None = None
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


def _keep_hierarchy(ctx: FitContext, copy: Copy, area: Box, plan: CopyPlan) -> CopyPlan:
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


def text_area(layout: Layout, logo_box: Box | None, brand: BrandKit) -> Box:
    """The copy zone, pushed down to honour the logo's clear space when they stack."""
    area = layout.copy
    if logo_box is None or logo_box.x1 <= area.x0 or logo_box.x0 >= area.x1:
        return area
    clear = round(brand.safe_area.logo_clear_space * logo_box.height)
    top = max(area.y0, logo_box.y1 + clear)
    if area.y1 - top < area.height * 0.75:
        return area
    return Box(area.x0, top, area.x1, area.y1)


def block_top(area: Box, height: int, portrait: bool) -> int:
    """Portrait copy hangs from the top (under the logo); columns sit a little above the
    optical centre, where a reader's eye lands first."""
    free = max(0, area.height - height)
    return area.y0 + (0 if portrait else round(free * 0.42))
