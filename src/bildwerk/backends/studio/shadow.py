"""Light on the floor: contact and cast shadows, and the product's reflection."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from bildwerk.backends.studio.common import RGB, SHADOW_SCALE, int3
from bildwerk.backends.studio.palette import Colours
from bildwerk.backends.studio.stage import Stage

# --------------------------------------------------------------------------- shadows


def draw_shadows(
    img: Image.Image, colours: Colours, stage: Stage, product: Image.Image | None
) -> None:
    """Contact shadows (tight and dark right under each base), wide soft ambient
    occlusion, and a faint cast shadow away from the key light; drawn at 1/4 size."""
    w, h = img.size
    lw, lh = -(-w // SHADOW_SCALE), -(-h // SHADOW_SCALE)
    dens = Image.new("L", (lw, lh), 0)
    if stage.podium:
        cx, _, bottom, rx, ry = stage.podium
        shadow_blob(dens, cx, bottom + ry * 0.15, rx * 1.02, ry * 1.05, 150, ry * 0.25)
        shadow_blob(dens, cx + rx * 0.15, bottom + ry * 0.3, rx * 1.5, ry * 1.8, 70, ry * 1.2)
    for sx, sy, r, i in stage.spheres:
        if i:
            shadow_blob(dens, sx, sy + r * 0.97, r * 0.55, r * 0.09, 170, r * 0.05)
            shadow_blob(dens, sx + r * 0.25, sy + r, r * 1.1, r * 0.22, 70, r * 0.25)
    if stage.podium is None:
        bx = stage.product.center[0]
        bw = stage.base_w
        shadow_blob(dens, bx, stage.base_y - bw * 0.03, bw * 0.53, bw * 0.075, 215, bw * 0.025)
        shadow_blob(dens, bx + bw * 0.06, stage.base_y, bw * 0.7, bw * 0.09, 60, bw * 0.07)
        if product is not None and stage.podium is None:
            _cast(dens, product, stage)
    apply_shadow(img, dens, colours.shadow)


def apply_shadow(img: Image.Image, dens: Image.Image, colour: RGB) -> None:
    """Multiply the shadow colour into ``img`` by the 1/4-size density map, touching only
    the map's non-empty box."""
    bbox = dens.getbbox()
    if bbox is None:
        return
    s = SHADOW_SCALE
    x0, y0 = max(0, bbox[0] - 1), max(0, bbox[1] - 1)
    x1, y1 = min(dens.width, bbox[2] + 1), min(dens.height, bbox[3] + 1)
    small = dens.crop((x0, y0, x1, y1))
    shade = Image.new("RGB", small.size, int3(colour))
    tint = Image.composite(shade, Image.new("RGB", small.size, (255, 255, 255)), small)
    bx0, by0 = x0 * s, y0 * s
    bx1, by1 = min(img.width, x1 * s), min(img.height, y1 * s)
    tint = tint.resize(
        (bx1 - bx0, by1 - by0),
        Image.Resampling.BILINEAR,
        box=(0, 0, (bx1 - bx0) / s, (by1 - by0) / s),
    )
    region = img.crop((bx0, by0, bx1, by1))
    img.paste(ImageChops.multiply(region, tint), (bx0, by0))


def shadow_blob(
    dens: Image.Image, cx: float, cy: float, rx: float, ry: float, level: int, blur: float
) -> None:
    """Add a blurred ellipse (canvas coordinates) to the shadow density map."""
    s = SHADOW_SCALE
    pad = int(blur / s * 3) + 2
    x0, y0 = int((cx - rx) / s) - pad, int((cy - ry) / s) - pad
    x1, y1 = int((cx + rx) / s) + pad + 1, int((cy + ry) / s) + pad + 1
    if x1 <= x0 or y1 <= y0:
        return
    blob = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(blob).ellipse(
        ((cx - rx) / s - x0, (cy - ry) / s - y0, (cx + rx) / s - x0, (cy + ry) / s - y0), fill=level
    )
    blob = blob.filter(ImageFilter.GaussianBlur(max(0.6, blur / s)))
    region = dens.crop((x0, y0, x1, y1))
    dens.paste(ImageChops.lighter(region, _screen(region, blob)), (x0, y0))


def _screen(a: Image.Image, b: Image.Image) -> Image.Image:
    return ImageChops.screen(a, b)


def _cast(dens: Image.Image, product: Image.Image, stage: Stage) -> None:
    """The product silhouette laid on the floor behind it, away from the front-left key
    light: squashed, sheared to the right, fading and blurring with distance."""
    s = SHADOW_SCALE
    pw, ph = product.size
    sw = max(1, pw // s)
    flat_h = max(2, round(ph / s * 0.28))
    flat = product.getchannel("A").resize((sw, flat_h), Image.Resampling.BILINEAR)
    lean = round(sw * 0.3)
    out_w = sw + lean + 2
    # output pixel (x, y) samples input (x - lean * (1 - y / flat_h), y): the top leans right
    sheared = flat.transform(
        (out_w, flat_h),
        Image.Transform.AFFINE,
        (1, lean / flat_h, -lean, 0, 1, 0),
        resample=Image.Resampling.BILINEAR,
    )
    fade = np.linspace(0.0, 1.0, flat_h, dtype=np.float32)[:, None] ** 1.5 * 0.26
    arr = np.asarray(sheared, dtype=np.float32) * fade
    near = Image.fromarray(arr.astype(np.uint8), "L").filter(
        ImageFilter.GaussianBlur(max(1.0, flat_h * 0.05))
    )
    far = near.filter(ImageFilter.GaussianBlur(max(2.0, flat_h * 0.3)))
    ramp = Image.fromarray(
        np.repeat(np.linspace(255, 0, flat_h, dtype=np.uint8)[:, None], out_w, axis=1), "L"
    )
    cast = Image.composite(far, near, ramp)
    x0 = int(stage.product.x0 / s)
    y0 = int(stage.base_y / s) - flat_h
    region = dens.crop((x0, y0, x0 + out_w, y0 + flat_h))
    dens.paste(ImageChops.lighter(region, cast), (x0, y0))


def draw_reflection(img: Image.Image, product: Image.Image, stage: Stage) -> None:
    """A faint mirrored product fading out quickly, as on a glossy surface."""
    pw, ph = product.size
    depth = max(2, round(ph * 0.3))
    part = product.crop((0, ph - depth, pw, ph)).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    alpha = np.asarray(part.getchannel("A"), dtype=np.float32)
    fade = np.linspace(0.2, 0.0, depth, dtype=np.float32)[:, None] ** 1.3 / 0.2**0.3
    part.putalpha(Image.fromarray((alpha * fade).astype(np.uint8), "L"))
    part = part.filter(ImageFilter.GaussianBlur(1.0))
    img.paste(part.convert("RGB"), (stage.product.x0, stage.base_y - 2), part.getchannel("A"))
