"""Boxes and the channel layout shared by scene generation and the brand overlay.

The layout is decided before the scene is generated so that the product lands where the
copy is not: the studio backend reads ``Layout.product`` and the compose stage writes
text into ``Layout.copy``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bildwerk.config.channels import Insets


@dataclass(frozen=True)
class Box:
    """Axis-aligned pixel rectangle, ``x1``/``y1`` exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.x0, self.y0, self.x1, self.y1

    def inset(self, dx: int, dy: int | None = None) -> Box:
        dy = dx if dy is None else dy
        return Box(self.x0 + dx, self.y0 + dy, self.x1 - dx, self.y1 - dy)

    def contains(self, other: Box) -> bool:
        return (
            self.x0 <= other.x0
            and self.y0 <= other.y0
            and other.x1 <= self.x1
            and other.y1 <= self.y1
        )

    def intersects(self, other: Box) -> bool:
        return not (
            other.x1 <= self.x0 or other.x0 >= self.x1 or other.y1 <= self.y0 or other.y0 >= self.y1
        )


@dataclass(frozen=True)
class Layout:
    """Where things go on a canvas of ``width`` × ``height``.

    ``safe`` is the canvas minus platform UI zones and brand margins; ``logo``, ``copy``
    (headline, subline and CTA) and ``product`` lie inside it and do not overlap.
    ``orientation`` is 'portrait', 'square' or 'landscape'.
    """

    width: int
    height: int
    safe: Box
    logo: Box
    copy: Box
    product: Box
    orientation: str


def plan_layout(width: int, height: int, unsafe: Insets, margin: float) -> Layout:
    """Split a canvas into logo, copy and product zones by aspect ratio.

    Portrait: logo and copy on top, product below. Landscape: logo and copy in the left
    column, product on the right. Near-square: copy on top-left, product bottom-right.
    ``margin`` is the brand's safe margin as a fraction of the shorter side.
    """
    m = round(min(width, height) * margin)
    safe = Box(
        unsafe.left + m, unsafe.top + m, width - unsafe.right - m, height - unsafe.bottom - m
    )
    gap = max(4, round(min(safe.width, safe.height) * 0.03))
    aspect = width / height
    if aspect < 0.9:
        logo_h = max(16, round(safe.height * 0.05))
        logo = Box(safe.x0, safe.y0, safe.x0 + round(safe.width * 0.4), safe.y0 + logo_h)
        copy_bottom = safe.y0 + round(safe.height * 0.40)
        copy = Box(safe.x0, logo.y1 + gap, safe.x1, copy_bottom)
        product = Box(safe.x0, copy_bottom + gap, safe.x1, safe.y1)
        orientation = "portrait"
    elif aspect > 1.3:
        col = safe.x0 + round(safe.width * 0.46)
        logo_h = max(16, round(safe.height * 0.08))
        logo = Box(safe.x0, safe.y0, safe.x0 + round(safe.width * 0.25), safe.y0 + logo_h)
        copy = Box(safe.x0, logo.y1 + gap, col, safe.y1)
        product = Box(col + gap, safe.y0, safe.x1, safe.y1)
        orientation = "landscape"
    else:
        logo_h = max(12, round(safe.height * 0.09))
        logo = Box(safe.x0, safe.y0, safe.x0 + round(safe.width * 0.5), safe.y0 + logo_h)
        split = safe.x0 + round(safe.width * 0.55)
        copy = Box(safe.x0, logo.y1 + gap, split, safe.y1)
        product = Box(split + gap, safe.y0 + round(safe.height * 0.15), safe.x1, safe.y1)
        orientation = "square"
    return Layout(width, height, safe, logo, copy, product, orientation)
