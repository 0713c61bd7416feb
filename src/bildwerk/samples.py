"""Sample art that ``bildwerk init`` ships: product cutouts and a wordmark logo.

Everything here is drawn by the project itself (no third-party images), so a fresh
workspace can produce real-looking variants before a user adds their own packshots.
Products are modelled as lathed solids (bottles, jars and cans are surfaces of
revolution) seen from slightly above, shaded with a soft studio key light, and drawn
supersampled for anti-aliasing. Output bytes are deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from bildwerk.config.brand import hex_to_rgb

F32 = npt.NDArray[np.float32]
RGB = tuple[float, float, float]

_SS = 2  # supersampling factor
_TILT = 0.12  # ellipse ratio of a horizontal circle: how far from above we look
_LIGHT = np.array([-0.45, 0.55, 0.70], dtype=np.float32)
_LIGHT /= np.linalg.norm(_LIGHT)
_HALF = _LIGHT + np.array([0.0, 0.0, 1.0], dtype=np.float32)
_HALF /= np.linalg.norm(_HALF)


@dataclass(frozen=True)
class Material:
    """How a surface responds to the studio light; colours are 0..1 sRGB."""

    color: RGB
    ambient: float = 0.42
    diffuse: float = 0.62
    spec: float = 0.25
    shininess: float = 30.0
    strips: tuple[tuple[float, float, float], ...] = ()  # softbox reflections: (nx, width, k)
    rim: float = 0.25  # darkening towards the silhouette
    ribs: int = 0  # vertical ribs (knurled caps)
    floor_ao: float = 0.0  # darkening near the part's base


@dataclass(frozen=True)
class Part:
    """A surface of revolution: radius ``r`` at screen row ``v`` (piecewise linear), in
    final-size pixels; ``label`` is an RGBA texture wrapped around the front half."""

    cx: float
    v: tuple[float, ...]
    r: tuple[float, ...]
    material: Material
    label: Image.Image | None = None


class _Canvas:
    """Premultiplied float RGBA canvas at supersampled resolution."""

    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width * _SS, height * _SS
        self.px = np.zeros((self.h, self.w, 4), dtype=np.float32)

    def over(self, x0: int, y0: int, rgb: F32, alpha: F32) -> None:
        """Composite straight ``rgb`` with coverage ``alpha`` at (x0, y0)."""
        h, w = alpha.shape
        region = self.px[y0 : y0 + h, x0 : x0 + w]
        a = alpha[..., None]
        region[..., :3] = rgb * a + region[..., :3] * (1.0 - a)
        region[..., 3] = alpha + region[..., 3] * (1.0 - alpha)

    def image(self) -> Image.Image:
        """Box-downsample, un-premultiply and crop to the drawn content."""
        h, w = self.h // _SS, self.w // _SS
        small = self.px.reshape(h, _SS, w, _SS, 4).mean(axis=(1, 3))
        alpha = small[..., 3:4]
        rgb = np.where(alpha > 1e-6, small[..., :3] / np.maximum(alpha, 1e-6), 0.0)
        out = np.concatenate([rgb, alpha], axis=2)
        arr = np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
        arr[arr[..., 3] == 0] = 0
        img = Image.fromarray(arr, "RGBA")
        bbox = img.getchannel("A").getbbox()
        if bbox is None:
            return img
        pad = 6
        x0, y0, x1, y1 = bbox
        return img.crop((max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)))


def _shade(normal: F32, albedo: F32, m: Material) -> F32:
    """Soft-wrap diffuse + Blinn specular + vertical softbox strips + rim darkening."""
    nx, ny, nz = normal[..., 0], normal[..., 1], normal[..., 2]
    ndl = nx * _LIGHT[0] + ny * _LIGHT[1] + nz * _LIGHT[2]
    diffuse = np.clip((ndl + 0.35) / 1.35, 0.0, 1.0)
    ndh = np.clip(nx * _HALF[0] + ny * _HALF[1] + nz * _HALF[2], 0.0, 1.0)
    spec = m.spec * ndh**m.shininess
    for centre, width, k in m.strips:
        spec = spec + k * np.exp(-(((nx - centre) / width) ** 2)) * np.clip(nz + 0.2, 0, 1)
    rim = 1.0 - m.rim * (1.0 - np.clip(nz, 0.0, 1.0)) ** 2
    light = (m.ambient + m.diffuse * diffuse) * rim
    out: F32 = (albedo * light[..., None] + spec[..., None]).astype(np.float32)
    return out


def _draw_part(canvas: _Canvas, part: Part) -> None:
    """Rasterise one lathed part: invert the tilted projection per pixel (a few fixed-point
    steps), keep the front surface, shade it and composite it."""
    s = float(_SS)
    vs = np.asarray(part.v, dtype=np.float32) * s
    rs = np.asarray(part.r, dtype=np.float32) * s
    cx = part.cx * s
    rmax = float(rs.max())
    x0 = max(0, int(cx - rmax) - 2)
    x1 = min(canvas.w, int(cx + rmax) + 3)
    y0 = max(0, int(vs.min() - _TILT * rmax) - 2)
    y1 = min(canvas.h, int(vs.max() + _TILT * rmax) + 3)
    xs = np.arange(x0, x1, dtype=np.float32) + 0.5 - cx
    ys = np.arange(y0, y1, dtype=np.float32) + 0.5
    gx, gy = np.meshgrid(xs, ys)
    dense_v = np.linspace(vs.min(), vs.max(), 1024, dtype=np.float32)
    dense_r = np.interp(dense_v, vs, rs).astype(np.float32)
    slope = _smooth(np.gradient(dense_r, dense_v).astype(np.float32), 15)
    v = gy.copy()
    for _ in range(5):
        r = np.interp(v, dense_v, dense_r).astype(np.float32)
        u = np.clip(gx / np.maximum(r, 1e-3), -1.0, 1.0)
        v = gy - _TILT * r * np.sqrt(1.0 - u * u)
    r = np.interp(v, dense_v, dense_r).astype(np.float32)
    inside = (np.abs(gx) <= r) & (v >= vs.min()) & (v <= vs.max()) & (r > 0.5)
    u = np.clip(gx / np.maximum(r, 1e-3), -1.0, 1.0)
    cos_t = np.sqrt(1.0 - u * u)
    dr = np.interp(v, dense_v, slope).astype(np.float32)
    normal = np.stack([u, dr, cos_t], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    albedo, cover = _albedo(part, u, v, vs, inside)
    if part.material.ribs:
        theta = np.arcsin(u)
        albedo = albedo * (0.86 + 0.14 * np.cos(theta * part.material.ribs))[..., None]
    rgb = _shade(normal, albedo, part.material)
    if part.material.floor_ao:
        t = np.clip((vs.max() - v) / (0.08 * (vs.max() - vs.min()) + 1.0), 0.0, 1.0)
        rgb = rgb * (1.0 - part.material.floor_ao * (1.0 - t) ** 2)[..., None]
    canvas.over(x0, y0, np.clip(rgb, 0.0, 1.0), cover.astype(np.float32))


def _smooth(values: F32, width: int) -> F32:
    """Box-smooth a 1-D profile so piecewise-linear outlines do not shade as bands."""
    padded = np.pad(values, width // 2, mode="edge")
    kernel = np.full(width, 1.0 / width, dtype=np.float32)
    return np.convolve(padded, kernel, mode="valid").astype(np.float32)


def _albedo(part: Part, u: F32, v: F32, vs: F32, inside: npt.NDArray[np.bool_]) -> tuple[F32, F32]:
    """Surface colour per pixel: the material colour, or the wrapped label texture."""
    base = np.broadcast_to(np.asarray(part.material.color, dtype=np.float32), (*u.shape, 3))
    if part.label is None:
        return base.copy(), inside.astype(np.float32)
    tex = np.asarray(part.label, dtype=np.float32) / 255.0
    th, tw = tex.shape[:2]
    tx = ((np.arcsin(u) / math.pi + 0.5) * (tw - 1)).astype(np.int32)
    ty = ((v - vs.min()) / (vs.max() - vs.min()) * (th - 1)).astype(np.int32)
    sample = tex[np.clip(ty, 0, th - 1), np.clip(tx, 0, tw - 1)]
    return sample[..., :3], sample[..., 3] * inside


def _draw_ellipse(
    canvas: _Canvas, cx: float, cy: float, rx: float, ry: float, color: Callable[[F32, F32], F32]
) -> None:
    """Fill an ellipse (final-size units); ``color`` maps normalised (x, y) to RGB."""
    s = float(_SS)
    cx, cy, rx, ry = cx * s, cy * s, rx * s, ry * s
    x0, x1 = max(0, int(cx - rx) - 1), min(canvas.w, int(cx + rx) + 2)
    y0, y1 = max(0, int(cy - ry) - 1), min(canvas.h, int(cy + ry) + 2)
    gx, gy = np.meshgrid(
        (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx) / rx,
        (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy) / ry,
    )
    cover = (gx * gx + gy * gy <= 1.0).astype(np.float32)
    canvas.over(x0, y0, np.clip(color(gx, gy), 0.0, 1.0), cover)


def _flat(rgb: RGB, top: float = 1.08, bottom: float = 0.9) -> Callable[[F32, F32], F32]:
    """A top face lit from the upper left: lighter at the back-left edge."""
    base = np.asarray(rgb, dtype=np.float32)

    def paint(gx: F32, gy: F32) -> F32:
        k = bottom + (top - bottom) * np.clip(0.5 - 0.35 * gx - 0.35 * gy, 0.0, 1.0)
        return (base * k[..., None]).astype(np.float32)

    return paint


def _c(hex_colour: str) -> RGB:
    r, g, b = hex_to_rgb(hex_colour)
    return r / 255.0, g / 255.0, b / 255.0


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _label_size(radius: float, band: float) -> tuple[int, int]:
    """Texture size whose texels map isotropically onto the front of a cylinder."""
    return round(math.pi * radius * _SS), round(band * _SS)


def _label(
    size: tuple[int, int], paper: str, ink: str, text: str, mark: str, accent: str | None = None
) -> Image.Image:
    """A flat label texture covering the front half of a cylinder (left→right = θ)."""
    w, h = size
    img = Image.new("RGBA", (w, h), (*hex_to_rgb(paper), 255))
    d = ImageDraw.Draw(img)
    cx = w // 2
    ink_rgb = hex_to_rgb(ink)
    acc_rgb = hex_to_rgb(accent or ink)
    unit = h / 10
    if mark == "ring":
        r = unit * 1.6
        d.ellipse(
            (cx - r, unit * 1.4, cx + r, unit * 1.4 + 2 * r),
            outline=ink_rgb,
            width=max(2, int(unit * 0.28)),
        )
        d.ellipse(
            (cx - r * 0.35, unit * 1.4 + r * 0.65, cx + r * 0.35, unit * 1.4 + r * 1.35),
            fill=acc_rgb,
        )
    elif mark == "leaf":
        r = unit * 1.7
        d.chord((cx - r, unit * 1.2, cx + r, unit * 1.2 + 2 * r), 200, 340, fill=acc_rgb)
        d.chord((cx - r, unit * 0.2, cx + r, unit * 0.2 + 2 * r), 20, 160, fill=acc_rgb)
    elif mark == "wave":
        upper = [(x, unit * 1.8 + unit * 0.5 * math.sin(x / w * 4 * math.pi)) for x in range(w)]
        lower = [(x, y + unit * 0.7) for x, y in reversed(upper)]
        d.polygon(upper + lower, fill=acc_rgb)
        d.ellipse(
            (cx - unit * 1.1, unit * 3.4, cx + unit * 1.1, unit * 3.4 + unit * 2.2), fill=ink_rgb
        )
    font = _font(max(10, int(unit * 1.25)))
    tw = d.textlength(text, font=font)
    d.text((cx - tw / 2, unit * 6.6), text, fill=ink_rgb, font=font)
    d.line(
        (cx - unit * 1.5, unit * 8.5, cx + unit * 1.5, unit * 8.5),
        fill=acc_rgb,
        width=max(2, int(unit * 0.12)),
    )
    return img


def _round_profile(
    top: float,
    bottom: float,
    r: float,
    corner: float,
    neck: float = 0.0,
    shoulder: float = 0.0,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Profile of a bottle or jar: an optional quarter-ellipse shoulder rising into a neck
    of radius ``neck`` at ``top``, a straight wall and a rounded bottom corner."""
    vs: list[float] = [top]
    rs: list[float] = [neck if shoulder else r]
    if shoulder:
        for i in range(1, 25):
            a = i / 24 * math.pi / 2
            vs.append(top + shoulder * (1 - math.cos(a)))
            rs.append(neck + (r - neck) * math.sin(a))
    for i in range(13):
        a = i / 12 * math.pi / 2
        vs.append(bottom - corner + corner * math.sin(a))
        rs.append(r - corner + corner * math.cos(a))
    return tuple(vs), tuple(rs)


def _dome(top: float, radius: float, steps: int = 24) -> tuple[list[float], list[float]]:
    """Profile of a hemispherical cap whose apex is at ``top``."""
    vs, rs = [], []
    for i in range(steps, -1, -1):
        a = i / steps * math.pi / 2
        vs.append(top + radius * (1 - math.sin(a)))
        rs.append(radius * math.cos(a))
    return vs, rs


def draw_serum() -> Image.Image:
    """Amber glass dropper bottle: black bulb, gold collar, cream label band."""
    canvas = _Canvas(340, 920)
    cx = 170.0
    glass = Material(
        _c("#8a4a14"),
        ambient=0.5,
        diffuse=0.55,
        spec=0.9,
        shininess=60,
        strips=((-0.62, 0.09, 0.85), (0.55, 0.05, 0.35), (0.05, 0.03, 0.12)),
        rim=0.55,
        floor_ao=0.25,
    )
    body_v, body_r = _round_profile(345, 905, 150, 14, neck=50, shoulder=80)
    label = _label(_label_size(151.5, 230), "#f3ece1", "#2b2420", "SERUM", "ring", "#b8864b")
    paper = Material((1, 1, 1), ambient=0.5, diffuse=0.55, spec=0.12, shininess=12, rim=0.3)
    gold = Material(
        _c("#c9a25e"),
        ambient=0.3,
        diffuse=0.6,
        spec=1.0,
        shininess=50,
        strips=((-0.6, 0.12, 0.7), (0.5, 0.08, 0.4)),
        rim=0.5,
        ribs=90,
    )
    rubber = Material(
        _c("#1d1b1a"),
        ambient=0.55,
        diffuse=0.5,
        spec=0.35,
        shininess=18,
        strips=((-0.55, 0.16, 0.22),),
        rim=0.3,
    )
    _draw_part(canvas, Part(cx, body_v, body_r, glass))
    _draw_part(canvas, Part(cx, (560.0, 790.0), (151.5, 151.5), paper, label))
    _draw_part(canvas, Part(cx, (255.0, 262.0, 330.0, 338.0), (58.0, 62.0, 62.0, 58.0), gold))
    _draw_ellipse(canvas, cx, 255.0, 58.0, 58.0 * _TILT, _flat(_c("#b08a4c"), 1.25, 0.8))
    bv, br = _dome(40.0, 44.0)
    _draw_part(canvas, Part(cx, (*bv, 246.0, 255.0), (*br, 44.0, 47.0), rubber))
    return canvas.image()


def draw_candle() -> Image.Image:
    """Matte ceramic candle jar with a wax top, wick and kraft label."""
    canvas = _Canvas(580, 930)
    cx, top, r = 290.0, 62.0, 265.0
    ceramic = Material(
        _c("#8fa58e"),
        ambient=0.5,
        diffuse=0.58,
        spec=0.18,
        shininess=10,
        strips=((-0.6, 0.2, 0.08),),
        rim=0.35,
        floor_ao=0.3,
    )
    jar_v, jar_r = _round_profile(top, 920, r, 26)
    _draw_part(canvas, Part(cx, jar_v, jar_r, ceramic))
    label = _label(_label_size(r + 1.5, 270), "#e9dcc6", "#3a3129", "CANDLE", "leaf", "#6f7f5a")
    paper = Material((1, 1, 1), ambient=0.5, diffuse=0.55, spec=0.08, shininess=8, rim=0.3)
    _draw_part(canvas, Part(cx, (370.0, 640.0), (r + 1.5, r + 1.5), paper, label))
    _draw_ellipse(canvas, cx, top, r, r * _TILT, _flat(_c("#abc1a9")))
    inner = r - 16
    wall = np.asarray(_c("#6b7f6a"), dtype=np.float32)

    def inner_wall(gx: F32, gy: F32) -> F32:
        k = 0.7 + 0.3 * np.clip(gy + 0.5 + 0.3 * gx, 0, 1)
        return (wall * k[..., None]).astype(np.float32)

    _draw_ellipse(canvas, cx, top, inner, inner * _TILT, inner_wall)
    wax_r = inner - 4
    wax = _flat(_c("#efe6d6"), 1.04, 0.88)
    _draw_ellipse(canvas, cx, top + 14, wax_r, wax_r * _TILT * 0.92, wax)
    _draw_wick(canvas, cx, top + 14)
    return canvas.image()


def _draw_wick(canvas: _Canvas, cx: float, base: float) -> None:
    """A short, slightly bent cotton wick with a charred tip."""
    img = Image.new("L", (canvas.w, canvas.h), 0)
    d = ImageDraw.Draw(img)
    s = _SS
    pts = [((cx + 0.8 * math.sin(t / 6)) * s, (base - t) * s) for t in range(0, 34)]
    d.line(pts, fill=255, width=3 * s)
    mask = np.asarray(img, dtype=np.float32)[: int((base + 2) * s)] / 255.0
    ys = np.linspace(0.0, 1.0, mask.shape[0], dtype=np.float32)[:, None]
    rgb = np.empty((*mask.shape, 3), dtype=np.float32)
    rgb[...] = np.asarray(_c("#3b332c"), dtype=np.float32)
    rgb *= (0.6 + 0.4 * ys)[..., None]
    canvas.over(0, 0, rgb, mask)


def draw_can() -> Image.Image:
    """Aluminium drink can with a printed wrap, tapered neck and lid."""
    canvas = _Canvas(320, 920)
    cx, r = 160.0, 150.0
    chrome = ((-0.7, 0.08, 0.9), (-0.35, 0.05, 0.35), (0.45, 0.06, 0.55), (0.8, 0.05, 0.3))
    print_ = Material(
        (1, 1, 1),
        ambient=0.5,
        diffuse=0.55,
        spec=0.8,
        shininess=70,
        strips=chrome,
        rim=0.45,
        floor_ao=0.15,
    )
    alu = Material(
        _c("#b9bcbf"), ambient=0.45, diffuse=0.55, spec=1.0, shininess=80, strips=chrome, rim=0.55
    )
    top = 40.0
    neck_v = tuple(top + 62 * i / 24 for i in range(25))
    neck_r = tuple(128 + 22 * math.sin(i / 24 * math.pi / 2) for i in range(25))
    _draw_part(canvas, Part(cx, (*neck_v, 104.0), (*neck_r, r), alu))
    base_v = (830.0, 850.0, 870.0, 884.0, 890.0)
    base_r = (r, 146.0, 134.0, 124.0, 118.0)
    _draw_part(canvas, Part(cx, base_v, base_r, alu))
    wrap = _label(_label_size(r, 730), "#e5533d", "#fff6ea", "FIZZ", "wave", "#ffd29a")
    _draw_part(canvas, Part(cx, (102.0, 832.0), (r, r), print_, wrap))
    _draw_ellipse(canvas, cx, top, 128, 128 * _TILT, _flat(_c("#d4d7da"), 1.1, 0.8))
    _draw_ellipse(canvas, cx, top + 2, 118, 118 * _TILT, _flat(_c("#a9adb1"), 1.05, 0.85))
    _draw_ellipse(canvas, cx - 10, top + 1, 40, 40 * _TILT * 1.4, _flat(_c("#c8cbce"), 1.1, 0.85))
    _draw_ellipse(canvas, cx - 10, top + 1, 16, 16 * _TILT * 1.6, _flat(_c("#8e9296"), 1.0, 0.9))
    return canvas.image()


PRODUCTS: dict[str, Callable[[], Image.Image]] = {
    "serum": draw_serum,
    "candle": draw_candle,
    "can": draw_can,
}


def _save(img: Image.Image, path: Path) -> Path:
    """Write a PNG with deterministic bytes (no timestamps or metadata)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG", optimize=False, compress_level=6)
    return path


def write_sample_products(directory: Path) -> dict[str, Path]:
    """Write the sample product cutouts (RGBA, transparent background) into ``directory``;
    returns slug → path."""
    return {slug: _save(draw(), directory / f"{slug}.png") for slug, draw in PRODUCTS.items()}


def write_sample_logo(path: Path, brand_name: str, primary: str, accent: str) -> Path:
    """Write a wordmark logo: a geometric symbol (disc with an accent quarter) and the
    brand name, on transparency, so a new workspace has a logo the overlay can place."""
    s = _SS
    height = 160
    font = _font(int(height * 0.5 * s))
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), brand_name, font=font)
    sym = int(height * 0.72 * s)
    gap = int(height * 0.16 * s)
    pad = int(height * 0.1 * s)
    w = pad + sym + gap + math.ceil(right - left) + pad
    h = height * s
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    p, a = hex_to_rgb(primary), hex_to_rgb(accent)
    y0 = (h - sym) // 2
    box = (pad, y0, pad + sym, y0 + sym)
    d.ellipse(box, fill=(*p, 255))
    d.pieslice(box, 270, 360, fill=(*a, 255))
    inner = sym * 0.2
    d.ellipse(
        (pad + sym / 2 - inner, y0 + sym / 2 - inner, pad + sym / 2 + inner, y0 + sym / 2 + inner),
        fill=(0, 0, 0, 0),
    )
    text_y = (h - (bottom - top)) / 2 - top
    d.text((pad + sym + gap - left, text_y), brand_name, font=font, fill=(*p, 255))
    small = img.resize((w // s, h // s), Image.Resampling.BOX)
    return _save(small, path)
