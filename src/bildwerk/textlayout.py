"""Word-wrap and auto-fit text into a box, measured with the real shaping engine.

Widths are measured on shaped strings (HarfBuzz via raqm) rather than summed per
character: Arabic joins, ligatures and kerning change a line's width considerably.
Space-separated scripts wrap at spaces; Chinese and Japanese wrap between characters,
keeping closing punctuation off the start of a line and opening punctuation off its end.
"""

from __future__ import annotations

import itertools
import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from PIL import ImageFont

from bildwerk.fonts import FontChoice, layout_engine, without_missing

Direction = Literal["ltr", "rtl"]
Align = Literal["left", "right"]
Measure = Callable[[str], int]

# Kinsoku shori: characters that must not start a line / must not end one.
NO_START = frozenset(
    "、。，．・：；？！ー）」』】〕〉》｝］〙〗〟’”｠»ゝゞヽヾ々〻‐゠–〜～…‥"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ"
    "!),.:;?]}%"
)
NO_END = frozenset("（「『【〔〈《｛［〘〖〝‘“｟«([{")
_NO_BREAK_SPACES = frozenset("\u00a0\u202f\u2007")
ELLIPSIS = "…"


def is_cjk_breakable(ch: str) -> bool:
    """Han, kana, CJK punctuation and full-width forms: a line may break around them."""
    cp = ord(ch)
    return (
        0x3000 <= cp <= 0x30FF
        or 0x3400 <= cp <= 0x4DBF
        or 0x4E00 <= cp <= 0x9FFF
        or 0x31F0 <= cp <= 0x31FF
        or 0xF900 <= cp <= 0xFAFF
        or 0xFF00 <= cp <= 0xFFEF
        or 0x20000 <= cp <= 0x2FFFF
    )


@dataclass(frozen=True)
class Shaping:
    """Direction and language for Pillow text calls; both None under the BASIC engine,
    which rejects them (and cannot shape Arabic anyway)."""

    direction: str | None
    language: str | None

    @classmethod
    def of(cls, direction: Direction, language: str | None) -> Shaping:
        if layout_engine() != ImageFont.Layout.RAQM:
            return cls(None, None)
        return cls(direction, language or None)

    def length(self, font: ImageFont.FreeTypeFont, text: str) -> float:
        """Shaped advance width of ``text``."""
        return font.getlength(text, direction=self.direction, language=self.language)

    def bbox(self, font: ImageFont.FreeTypeFont, text: str) -> tuple[int, int, int, int]:
        """Box of ``text`` relative to its baseline origin (anchor 'ls')."""
        left, top, right, bottom = font.getbbox(
            text, anchor="ls", direction=self.direction, language=self.language
        )
        return int(left), int(top), int(right), int(bottom)


@dataclass(frozen=True)
class Unit:
    """An unbreakable piece of text; ``space`` says whether a space separates it from the
    previous unit on the same line."""

    text: str
    space: bool


def _is_space(ch: str) -> bool:
    return ch.isspace() and ch not in _NO_BREAK_SPACES


def segment(paragraph: str) -> list[Unit]:
    """Split one paragraph into units at the places a line may break."""
    units: list[Unit] = []
    buf, buf_space, space, prev = "", False, False, ""
    for ch in paragraph:
        if _is_space(ch):
            space = bool(buf)
            continue
        may_break = (
            bool(buf)
            and prev not in NO_END
            and ch not in NO_START
            and (space or is_cjk_breakable(ch) or is_cjk_breakable(prev))
        )
        if may_break:
            units.append(Unit(buf, buf_space))
            buf, buf_space = ch, space
        elif buf:
            buf += (" " if space else "") + ch
        else:
            buf, buf_space = ch, False
        space, prev = False, ch
    if buf:
        units.append(Unit(buf, buf_space))
    return units


def _clusters(text: str) -> list[str]:
    """Characters with their combining marks attached, so a break never splits them."""
    out: list[str] = []
    for ch in text:
        if out and (unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf")):
            out[-1] += ch
        else:
            out.append(ch)
    return out


def _break_unit(text: str, measure: Measure, width: int) -> list[str]:
    """Emergency break of a unit wider than the box, between clusters."""
    pieces: list[str] = []
    cur = ""
    for cl in _clusters(text):
        if cur and measure(cur + cl) > width:
            pieces.append(cur)
            cur = cl
        else:
            cur += cl
    return [*pieces, cur] if cur else pieces


def wrap(
    units: list[Unit], measure: Measure, width: int, force: bool = False, limit: int | None = None
) -> tuple[list[str], bool]:
    """Greedy line filling. Returns the lines and whether some unit alone was too wide
    (with ``force`` such units are broken between characters instead). Stops early once
    there are more than ``limit`` lines: the caller only needs to know it failed."""
    lines: list[str] = []
    cur = ""
    overflow = False
    for unit in units:
        if limit is not None and len(lines) > limit:
            return lines, overflow
        cand = cur + (" " if unit.space else "") + unit.text if cur else unit.text
        if measure(cand) <= width:
            cur = cand
            continue
        if cur:
            lines.append(cur)
        cur = unit.text
        if measure(cur) > width:
            if force:
                *done, cur = _break_unit(cur, measure, width)
                lines.extend(done)
            else:
                overflow = True
    if cur:
        lines.append(cur)
    return lines, overflow


@dataclass(frozen=True)
class TextFit:
    """Wrapped text at the size chosen for it, with its geometry.

    ``extents`` are per-line boxes relative to each line's baseline origin, as Pillow's
    ``getbbox(anchor='ls')`` reports them; ``top`` is the distance from the block's top to
    the first baseline. ``fits`` is False only when even truncated text overflows.
    """

    lines: tuple[str, ...]
    size: int
    font: FontChoice
    direction: Direction
    language: str | None
    line_height: int
    extents: tuple[tuple[int, int, int, int], ...]
    width: int
    height: int
    top: int
    truncated: bool
    fits: bool
    broken: bool = False

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def load(self) -> ImageFont.FreeTypeFont:
        return self.font.load(self.size)

    def origins(self, x0: int, x1: int, top: int, align: Align) -> list[tuple[int, int]]:
        """Baseline origin of every line for a block whose top edge is at ``top``,
        flush against ``x0`` (left) or ``x1`` (right)."""
        out: list[tuple[int, int]] = []
        for i, (left, _, right, _) in enumerate(self.extents):
            x = x0 - left if align == "left" else x1 - right
            out.append((x, top + self.top + i * self.line_height))
        return out


@dataclass(frozen=True)
class _Spec:
    paragraphs: tuple[list[Unit], ...]
    font: FontChoice
    width: int
    height: int
    max_lines: int
    direction: Direction
    language: str | None
    leading: float


def _measurer(font: ImageFont.FreeTypeFont, shaping: Shaping, exact: bool = False) -> Measure:
    """Shaped advance width (fast: no glyph outlines are loaded), or with ``exact`` the
    ink-inclusive width. Wrapping uses advances; ``_build`` then checks the real boxes."""

    def advance(text: str) -> int:
        return math.ceil(shaping.length(font, text))

    def ink(text: str) -> int:
        left, _, right, _ = shaping.bbox(font, text)
        return right - min(left, 0)

    return ink if exact else advance


def _build(
    spec: _Spec, size: int, lines: list[str], truncated: bool, broken: bool = False
) -> TextFit:
    font = spec.font.load(size)
    shaping = Shaping.of(spec.direction, spec.language)
    lh = max(1, round(size * spec.leading))
    extents = tuple(shaping.bbox(font, line) for line in lines)
    tops = [t + i * lh for i, (_, t, _, _) in enumerate(extents)] or [0]
    bottoms = [b + i * lh for i, (_, _, _, b) in enumerate(extents)] or [0]
    width = max((r - min(left, 0) for left, _, r, _ in extents), default=0)
    height = max(bottoms) - min(tops)
    fits = width <= spec.width and height <= spec.height and len(lines) <= spec.max_lines
    return TextFit(
        tuple(lines),
        size,
        spec.font,
        spec.direction,
        spec.language,
        lh,
        extents,
        width,
        height,
        -min(tops),
        truncated,
        fits,
        broken,
    )


def _wrap_all(
    spec: _Spec, size: int, width: int, force: bool, limit: int | None = None
) -> tuple[list[str], bool]:
    measure = _measurer(spec.font.load(size), Shaping.of(spec.direction, spec.language))
    lines: list[str] = []
    overflow = False
    for units in spec.paragraphs:
        got, over = wrap(
            units, measure, width, force, None if limit is None else limit - len(lines)
        )
        lines.extend(got)
        overflow = overflow or over
    return lines, overflow


def _attempt(spec: _Spec, size: int) -> TextFit | None:
    lines, overflow = _wrap_all(spec, size, spec.width, force=False, limit=spec.max_lines)
    if overflow or len(lines) > spec.max_lines:
        return None
    fit = _build(spec, size, lines, truncated=False)
    return fit if fit.fits else None


_BALANCE_BUDGET = 20000  # break combinations tried before settling for greedy lines


def _join(units: list[Unit]) -> str:
    return "".join((" " if u.space and i else "") + u.text for i, u in enumerate(units))


def balanced_lines(units: list[Unit], measure: Measure, width: int, count: int) -> list[str] | None:
    """Break ``units`` into exactly ``count`` lines no wider than ``width``, as even as
    possible: least squared shortfall against the longest line, then the narrowest.

    Greedy filling leaves orphans ("Run further than ever / before"); headlines read
    better balanced. Headlines are short, so trying the break combinations is cheap
    (widths are memoised); None when there are too many or none fits.
    """
    n = len(units)
    if count < 2 or n < count:
        return None
    widths: dict[tuple[int, int], int] = {}

    def w(i: int, j: int) -> int:
        if (i, j) not in widths:
            widths[(i, j)] = measure(_join(units[i:j]))
        return widths[(i, j)]

    best: tuple[float, int, list[int]] | None = None
    tried = 0
    stack: list[tuple[int, list[int]]] = [(0, [])]
    while stack:
        start, cuts = stack.pop()
        left = count - len(cuts) - 1
        if left == 0:
            if w(start, n) > width:
                continue
            tried += 1
            if tried > _BALANCE_BUDGET:
                return None
            bounds = [0, *cuts, n]
            lens = [w(a, b) for a, b in itertools.pairwise(bounds)]
            top = max(lens)
            key = (float(sum((top - x) ** 2 for x in lens)), top, cuts)
            if best is None or key[:2] < best[:2]:
                best = key
            continue
        for j in range(start + 1, n - left + 1):
            if w(start, j) > width:
                break
            stack.append((j, [*cuts, j]))
    if best is None:
        return None
    bounds = [0, *best[2], n]
    return [_join(units[a:b]) for a, b in itertools.pairwise(bounds)]


def _balance(spec: _Spec, fit: TextFit) -> TextFit:
    """Even out a single-paragraph block's lines at its chosen size."""
    if len(fit.lines) < 2 or len(spec.paragraphs) != 1:
        return fit
    measure = _measurer(spec.font.load(fit.size), Shaping.of(spec.direction, spec.language))
    lines = balanced_lines(spec.paragraphs[0], measure, spec.width, len(fit.lines))
    if lines is None:
        return fit
    balanced = _build(spec, fit.size, lines, truncated=False)
    return balanced if balanced.fits else fit


def _ellipsize(line: str, measure: Measure, width: int, ellipsis: str) -> str:
    """Shorten ``line`` until it plus an ellipsis fits; prefer cutting at a space."""
    clusters = _clusters(line.rstrip())
    while clusters:
        text = "".join(clusters).rstrip(" ,.;:-–—、，。")
        if measure(text + ellipsis) <= width:
            return text + ellipsis
        cut = "".join(clusters).rfind(" ")
        if cut > len("".join(clusters)) * 0.6:
            clusters = _clusters("".join(clusters)[:cut])
        else:
            clusters.pop()
    return ellipsis


def _truncate(spec: _Spec, size: int) -> TextFit:
    """At the smallest size: break overlong words, keep the lines that fit, mark the cut."""
    _, broken = _wrap_all(spec, size, spec.width, force=False)
    lines, _ = _wrap_all(spec, size, spec.width, force=True)
    keep = min(len(lines), spec.max_lines)
    while keep > 1 and _build(spec, size, lines[:keep], False).height > spec.height:
        keep -= 1
    if keep >= len(lines):
        return _build(spec, size, lines, truncated=False, broken=broken)
    font = spec.font.load(size)
    measure = _measurer(font, Shaping.of(spec.direction, spec.language), exact=True)
    ellipsis = ELLIPSIS if spec.font.covers(ELLIPSIS) else "..."
    kept = [*lines[: keep - 1], _ellipsize(lines[keep - 1], measure, spec.width, ellipsis)]
    return _build(spec, size, kept, truncated=True, broken=broken)


def fit_text(
    text: str,
    width: int,
    height: int,
    font: FontChoice,
    *,
    min_size: int,
    max_size: int,
    max_lines: int,
    direction: Direction = "ltr",
    language: str | None = None,
    leading: float = 1.2,
    balance: bool = False,
) -> TextFit:
    """Largest size in [min_size, max_size] at which ``text`` wraps into ``width`` ×
    ``height`` within ``max_lines`` lines.

    Sizes are binary-searched (a fit is monotone in size but for rare wrap jumps). When
    nothing fits at ``min_size`` the text is truncated with an ellipsis and the result says
    ``truncated=True``; this never raises, so a too-long headline becomes a QA warning.
    """
    min_size = max(1, min(min_size, max_size))
    text = without_missing(text, font.missing)  # never tofu; QA text_glyphs warns
    paragraphs = tuple(segment(p) for p in text.splitlines() if p.strip()) or ([],)
    spec = _Spec(
        paragraphs,
        font,
        max(1, width),
        max(1, height),
        max(1, max_lines),
        direction,
        language,
        leading,
    )
    best: TextFit | None = None
    lo, hi = min_size, max_size
    while lo <= hi:
        mid = (lo + hi) // 2
        got = _attempt(spec, mid)
        if got is not None:
            best, lo = got, mid + 1
        else:
            hi = mid - 1
    if best is None:
        return _truncate(spec, min_size)
    return _balance(spec, best) if balance else best
