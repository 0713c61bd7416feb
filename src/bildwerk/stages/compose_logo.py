"""Logo placement: the logo zone (mirrored for right-to-left locales), its box, pasting."""

from __future__ import annotations

from PIL import Image

from bildwerk.config.brand import Logo
from bildwerk.geometry import Box, Layout
from bildwerk.textlayout import Direction

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


def logo_box_for(
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


def paste_logo(image: Image.Image, logo: Image.Image, box: Box) -> None:
    """Resize in premultiplied alpha so transparent edges do not pick up dark fringes."""
    sized = (
        logo.convert("RGBA")
        .convert("RGBa")
        .resize((box.width, box.height), Image.Resampling.LANCZOS)
        .convert("RGBA")
    )
    image.paste(sized.convert("RGB"), (box.x0, box.y0), sized.getchannel("A"))
