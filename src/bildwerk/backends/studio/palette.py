"""Studio colours from the brand palette: OKLab tones at set lightness and chroma, per mood."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from bildwerk.backends.studio.common import RGB
from bildwerk.colour import oklab_to_srgb, srgb_to_oklab
from bildwerk.config.brand import hex_to_rgb

# --------------------------------------------------------------------------- colour


def _tone(hex_colour: str, lightness: float, chroma: float, warmth: float = 0.0) -> RGB:
    """The palette colour's hue at a set OKLab lightness and at most ``chroma``; warmth
    shifts towards amber (+) or blue (-). Returns 0..255 floats."""
    r, g, b = hex_to_rgb(hex_colour)
    _, a, bb = srgb_to_oklab((r / 255, g / 255, b / 255))
    c = math.hypot(a, bb)
    k = min(c, chroma) / c if c > 1e-5 else 0.0
    a, bb = a * k + 0.004 * warmth, bb * k + 0.016 * warmth
    out = oklab_to_srgb((lightness, a, bb))
    return out[0] * 255.0, out[1] * 255.0, out[2] * 255.0


def _hex(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(round(min(max(c, 0.0), 255.0)) for c in rgb))


def _chroma(hex_colour: str) -> float:
    r, g, b = hex_to_rgb(hex_colour)
    _, a, bb = srgb_to_oklab((r / 255, g / 255, b / 255))
    return math.hypot(a, bb)


@dataclass(frozen=True)
class Colours:
    """The scene's colours (0..255 floats), all derived from the brand palette."""

    wall_top: RGB
    wall: RGB
    floor: RGB
    floor_front: RGB
    glow: RGB
    podium: RGB
    marble: RGB
    arch: RGB
    sphere_a: RGB
    sphere_b: RGB
    pattern_dark: RGB
    pattern_light: RGB
    shadow: RGB
    fleck: tuple[RGB, ...]

    def as_hex(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.__dict__.items():
            if name != "fleck":
                out[name] = _hex(value)
        out["fleck"] = ",".join(_hex(c) for c in self.fleck)
        return out


def derive_colours(palette: dict[str, str], mood: str) -> Colours:
    """Tints and shades of the palette: a calm light (or clearly dark) backdrop, props a
    little more saturated, spheres in the accent colour."""
    get = palette.get
    bg, pri = get("background", "#f4f1ec"), get("primary", "#33415c")
    sec, acc = get("secondary", pri), get("accent", pri)
    warmth = {"warm": 1.0, "cool": -0.8}.get(mood, 0.0)
    hue = bg if _chroma(bg) > 0.005 else sec
    if mood == "dark":
        base, step, cwall = 0.27, -0.05, 0.035
        hue = pri
    elif mood == "pastel":
        base, step, cwall = 0.9, 0.03, 0.05
        hue = acc
    else:
        base, step, cwall = 0.93, 0.03, 0.028
    dark = mood == "dark"
    return Colours(
        wall_top=_tone(hue, base - 0.05 if not dark else base - 0.08, cwall, warmth),
        wall=_tone(hue, base, cwall, warmth),
        floor=_tone(hue, base + step * 0.3, cwall, warmth),
        floor_front=_tone(hue, base - step, cwall, warmth),
        glow=_tone(hue, min(0.985, base + (0.06 if not dark else 0.14)), cwall * 0.8, warmth),
        podium=_tone(sec, 0.83 if not dark else 0.4, 0.05, warmth * 0.5),
        marble=_tone(hue, 0.9 if not dark else 0.5, 0.012, warmth * 0.3),
        arch=_tone(
            pri if not dark else sec, base - 0.06 if not dark else base + 0.07, 0.045, warmth
        ),
        sphere_a=_tone(acc, 0.74 if not dark else 0.6, 0.11, warmth * 0.3),
        sphere_b=_tone(pri, 0.8 if not dark else 0.5, 0.06, warmth * 0.3),
        pattern_dark=_tone(hue, base - 0.04, cwall, warmth),
        pattern_light=_tone(hue, min(0.99, base + 0.035), cwall, warmth),
        shadow=_tone(hue, 0.32 if not dark else 0.08, 0.03, warmth),
        fleck=(
            _tone(acc, 0.7, 0.1),
            _tone(pri, 0.55, 0.06),
            _tone(sec, 0.8, 0.05),
            _tone(bg, 0.6, 0.01),
        ),
    )


def backdrop_in(colours: Colours, hex_colour: str) -> Colours:
    """Walls and floor in exactly this colour's hue and chroma (lightness steps only)."""
    r, g, b = hex_to_rgb(hex_colour)
    lum, a, bb = srgb_to_oklab((r / 255, g / 255, b / 255))
    chroma = math.hypot(a, bb)

    def at(dl: float) -> RGB:
        return _tone(hex_colour, min(0.99, max(0.05, lum + dl)), chroma)

    return replace(
        colours,
        wall_top=at(-0.04),
        wall=at(0.0),
        floor=at(0.01),
        floor_front=at(-0.03),
        glow=at(0.05),
        pattern_dark=at(-0.02),
        pattern_light=at(0.02),
        marble=at(0.03),
    )
