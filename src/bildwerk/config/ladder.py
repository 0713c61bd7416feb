"""Responsive width ladders derived from the layout, not from a fixed list.

A ``srcset`` ladder is only as good as its fit to the boxes the image is really shown in:
the browser takes the narrowest candidate at least as wide as the slot (CSS px times the
screen's pixel ratio), and everything above that is downloaded for nothing. So the ladder
is computed from the ``sizes`` strings the pages use, evaluated on the viewports of common
devices at their pixel ratios, and a width is added until every such need is met by a
candidate less than ``max_waste`` wider than it (10 % of the width, at most 19 % of the
pixels). Needs wider than the master are served by the master itself: never upscale.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

_PHONES = (360, 375, 390, 412, 414, 430)  # CSS px; 412 at 1.75 is Lighthouse mobile
_TABLETS = (768, 820, 1024)
_DESKTOPS = (1280, 1350, 1366, 1440, 1536, 1920)  # 1350 at 1 is Lighthouse desktop
#: (CSS viewport width, device pixel ratio) pairs the ladder serves well: phones at 1.75
#: (Android, Lighthouse), 2 and 3 (iPhones); tablets at 1 and 2; desktops at 1, 1.5
#: (Windows scaling) and 2 (Retina).
DEVICES: tuple[tuple[int, float], ...] = (
    *((v, d) for v in _PHONES for d in (1.75, 2.0, 3.0)),
    *((v, d) for v in _TABLETS for d in (1.0, 2.0)),
    *((v, d) for v in _DESKTOPS for d in (1.0, 1.5, 2.0)),
)
MAX_WASTE = 0.10

#: The landing page's grid cell (templates/landing.html): ``<main>`` is at most 1200 px
#: with 24 px padding, columns of at least 280 px with 24 px gaps, so 1 to 3 columns.
LANDING_GRID_SIZES = (
    "(min-width: 1200px) 368px, (min-width: 936px) calc((100vw - 96px) / 3), "
    "(min-width: 632px) calc((100vw - 72px) / 2), calc(100vw - 48px)"
)

_MEDIA = re.compile(r"^\(\s*(min|max)-width\s*:\s*([\d.]+)px\s*\)\s*(.+)$", re.IGNORECASE)
_TOKEN = re.compile(r"\s*(?:([\d.]+)(px|vw)?|([-+*/()]))")


def _length(text: str, viewport: float) -> float:
    """A ``sizes`` length in CSS px: ``Npx``, ``Nvw`` or ``calc()`` of them (+ - * /)."""
    text = text.strip()
    if text.lower().startswith("calc(") and text.endswith(")"):
        text = text[4:]
    tokens: list[str | float] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos:].strip() == "":
                break
            raise ValueError(f"unsupported length in sizes: {text!r}")
        if m[1] is not None:
            value = float(m[1])
            tokens.append(value * viewport / 100 if m[2] == "vw" else value)
        else:
            tokens.append(m[3])
        pos = m.end()
    value, rest = _sum(tokens)
    if rest:
        raise ValueError(f"unsupported length in sizes: {text!r}")
    return value


def _sum(tokens: list[str | float]) -> tuple[float, list[str | float]]:
    value, tokens = _product(tokens)
    while tokens and tokens[0] in ("+", "-"):
        op, (rhs, tokens) = tokens[0], _product(tokens[1:])
        value = value + rhs if op == "+" else value - rhs
    return value, tokens


def _product(tokens: list[str | float]) -> tuple[float, list[str | float]]:
    value, tokens = _atom(tokens)
    while tokens and tokens[0] in ("*", "/"):
        op, (rhs, tokens) = tokens[0], _atom(tokens[1:])
        value = value * rhs if op == "*" else value / rhs
    return value, tokens


def _atom(tokens: list[str | float]) -> tuple[float, list[str | float]]:
    if not tokens:
        raise ValueError("unexpected end of calc()")
    head, rest = tokens[0], tokens[1:]
    if head == "(":
        value, rest = _sum(rest)
        if not rest or rest[0] != ")":
            raise ValueError("unbalanced parentheses in calc()")
        return value, rest[1:]
    if isinstance(head, float):
        return head, rest
    raise ValueError(f"unexpected {head!r} in calc()")


def slot_width(sizes: str, viewport: float) -> float:
    """The CSS width ``sizes`` gives an image at ``viewport`` CSS px, as a browser reads
    it: the first entry whose ``(min-width)``/``(max-width)`` condition holds, else the
    last (unconditional) one. Raises ``ValueError`` on syntax it does not support."""
    entries = [e.strip() for e in re.split(r",(?![^()]*\))", sizes) if e.strip()]
    if not entries:
        raise ValueError("empty sizes")
    for entry in entries:
        m = _MEDIA.match(entry)
        if m is None:
            return _length(entry, viewport)
        limit = float(m[2])
        if (viewport >= limit) if m[1].lower() == "min" else (viewport <= limit):
            return _length(m[3], viewport)
    return _length("100vw", viewport)  # no default entry: the spec's fallback


def needs(sizes: Iterable[str], devices: Sequence[tuple[int, float]] = DEVICES) -> list[int]:
    """Device pixels the image needs in each slot the ``sizes`` strings give on each
    device (CSS width times pixel ratio, rounded up), distinct and sorted."""
    return sorted({math.ceil(slot_width(s, v) * d - 1e-9) for s in sizes for v, d in devices})


def pick(need: int, ladder: Sequence[int]) -> int:
    """The candidate a browser takes for ``need`` device px: the narrowest at least as
    wide, else the widest (a need beyond the master gets the master)."""
    return next((w for w in sorted(ladder) if w >= need), max(ladder))


def waste(need: int, ladder: Sequence[int]) -> float:
    """Share of the picked candidate's width above what the slot needs (0 when even the
    widest candidate is narrower than the need)."""
    return max(0.0, 1 - need / pick(need, ladder))


def ladder(
    pixel_needs: Iterable[int],
    max_width: int,
    *,
    min_width: int = 1,
    required: Iterable[int] = (),
    max_waste: float = MAX_WASTE,
) -> list[int]:
    """The fewest widths (at most ``max_width``, which is always included, as are the
    ``required`` ones, e.g. a fixed ad slot's exact size) such that every need's pick is
    less than ``max_waste`` wider than the need.

    Greedy from the widest need down: a need the current ladder does not serve well
    becomes a width itself, which then serves every need down to ``width * (1 -
    max_waste)`` (optimal for covering points on a line with a fixed ratio). Needs below
    ``min_width`` (the narrowest file worth making, e.g. the smallest that carries the
    watermark) are served by a ``min_width`` file.
    """
    if not 0 < max_waste < 1:
        raise ValueError("max_waste must be between 0 and 1")
    if max_width < 1:
        raise ValueError("max_width must be positive")
    floor = min(min_width, max_width)
    widths = {max_width} | {w for w in required if floor <= w < max_width}
    wanted = {max(n, floor) for n in pixel_needs if n > 0}
    for n in sorted({n for n in wanted if n < max_width}, reverse=True):
        if waste(n, sorted(widths)) >= max_waste:
            widths.add(n)
    return sorted(widths)
