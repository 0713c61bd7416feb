"""Invisible watermark readable by the ``invisible-watermark`` package's ``dwtDct`` decoder,
and a visible "PREVIEW" mark.

Format (what that decoder reads): the image's U plane (BT.601 YUV as OpenCV computes it)
cropped to a multiple of 4 px, one level of Haar DWT, and the LL band cut into 4×4 blocks
in raster order; block ``i`` carries bit ``i mod n``. A block's bit is read from its
largest non-DC coefficient ``v``: 1 when ``v mod scale > scale / 2``. Bits are majority
votes over all their blocks. (The decoder reads the LL coefficients themselves; despite
the method's name no DCT is involved.)

Embedding, our own: each 8×8 px block's U is shifted by one amount ``d`` chosen so its
largest coefficient lands at least :data:`MARGIN` inside the right half of the lattice.
A uniform shift keeps which coefficient is largest and survives 4:2:0 chroma subsampling,
which erases single-coefficient changes (and with them the reference encoder's marks).
The shifts are error-diffused over the blocks so every neighbourhood's mean stays near
zero: fine chroma texture instead of visible tint. Shifts that would push blue or green
out of 0..255 are avoided; luma and V never change. ``docs/watermark.md`` has the measured
robustness and cost.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from bildwerk.errors import UserError

F64 = npt.NDArray[np.float64]
F32 = np.float32
Floats = npt.NDArray[np.floating[Any]]

DEFAULT_SCALE = 36.0
"""Lattice step of the LL coefficients; the reference decoder's default for U."""
MARGIN = 3.0
"""Distance (LL units) a coefficient is kept from the decision boundaries: robustness
against visibility. 3 survives JPEG q50; 4.5 measured no better on WebP, only more visible."""
MIN_REPEATS = 64
"""Blocks per payload bit below which votes become unreliable (see :func:`capacity`)."""
MIN_PIXELS = 256 * 256
"""The reference decoder refuses smaller images."""

# BT.601 as OpenCV's BGR2YUV: U = 0.492 (B - Y) + 128. Moving U with Y and V fixed means
# B += dU / 0.492 and G -= (0.114 / 0.587) dB; R stays.
_KU = 0.492
_KG = 0.114 / 0.587
_BLOCK_PX = 8  # a 4×4 LL block covers 8×8 pixels
_ASSET_HEX = re.compile(r"^(?:[a-z]{2}_)?([0-9a-f]+)$")


def capacity(width: int, height: int) -> int:
    """Payload bits an image of this size can carry with :data:`MIN_REPEATS` blocks a bit
    (0 below the reference decoder's 256×256 minimum)."""
    if width * height < MIN_PIXELS:
        return 0
    return (width // _BLOCK_PX) * (height // _BLOCK_PX) // MIN_REPEATS


def payload_for(asset_id: str, bits: int = 32) -> list[int]:
    """Payload for an asset: the first ``bits`` bits of its hex id (``cr_3f9a…`` → 0x3f9a…),
    so ``bildwerk verify`` can look the asset up by id prefix; other ids are hashed first."""
    if bits < 1:
        raise ValueError("bits must be positive")
    match = _ASSET_HEX.match(asset_id)
    digits = match.group(1) if match else ""
    if len(digits) * 4 < bits:
        digits = hashlib.shake_256(asset_id.encode()).hexdigest(math.ceil(bits / 8))
    value = int(digits[: math.ceil(bits / 4)], 16) >> (-bits % 4)
    return [(value >> (bits - 1 - i)) & 1 for i in range(bits)]


def embed(
    image: Image.Image, payload_bits: Sequence[int] | bytes, *, scale: float | None = None
) -> Image.Image:
    """Return a copy of ``image`` carrying ``payload_bits`` (bytes: MSB first, as
    ``imwatermark`` packs them). RGBA keeps its alpha; other modes come back RGB.

    Deterministic: the same image and payload give the same pixels. Raises
    :class:`UserError` when the image is too small for the payload.
    """
    bits = _bits(payload_bits)
    step = _scale(scale)
    width, height = image.size
    _check_size(width, height, len(bits))
    pixels = np.asarray(image.convert("RGB"))
    nby, nbx = height // _BLOCK_PX, width // _BLOCK_PX
    tiles = pixels[: nby * _BLOCK_PX, : nbx * _BLOCK_PX].reshape(nby, 8, nbx, 8, 3)
    low_rgb, high_rgb = tiles.min(axis=(1, 3)).astype(F32), tiles.max(axis=(1, 3)).astype(F32)
    rgb = pixels.astype(F32)
    region = rgb[: nby * _BLOCK_PX, : nbx * _BLOCK_PX]

    peak = _blocks(_ll_u(region)).max(axis=2).astype(np.float64)  # largest non-DC coefficient
    bit = np.resize(np.asarray(bits, dtype=np.float64), nby * nbx).reshape(nby, nbx)
    base = np.floor(peak / step) * step
    low = base + bit * step / 2 + MARGIN - peak  # shifts into the wanted half-period
    high = base + (bit + 1) * step / 2 - MARGIN - peak
    # Gamut: the LL shifts (2 × the U shift) that keep every B and G of the block in 0..255.
    lo_gamut = 2 * _KU * np.maximum(-low_rgb[..., 2], (high_rgb[..., 1] - 255) / _KG)
    hi_gamut = 2 * _KU * np.minimum(255 - high_rgb[..., 2], low_rgb[..., 1] / _KG)
    shift = _diffuse(low, high, lo_gamut.astype(np.float64), hi_gamut.astype(np.float64), step)

    du = np.kron((shift / (2 * _KU)).astype(F32), np.ones((_BLOCK_PX, _BLOCK_PX), F32))
    region[..., 2] += du
    region[..., 1] -= _KG * du
    out = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")
    if image.mode == "RGBA":
        out.putalpha(image.getchannel("A"))
    out.info = dict(image.info)
    return out


def decode_scores(
    image: Image.Image,
    n_bits: int,
    *,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
) -> list[float]:
    """Soft votes per bit in -1..1: positive means 0, negative 1; near 0, no watermark.

    Each block votes ``sin(2π v / scale)`` for its bit (+1 at the centre of the 0 half,
    -1 at the 1 half), so confident blocks count more than ones near a boundary. ``size``
    is the size the watermark was embedded at: an image resized since is resampled back
    first, as the block grid has to line up.
    """
    if n_bits < 1:
        raise ValueError("n_bits must be positive")
    step = _scale(scale)
    if size is not None and image.size != size:
        image = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    width, height = image.size
    _check_size(width, height, n_bits)
    rgb = np.asarray(image.convert("RGB"), dtype=F32)
    nby, nbx = height // _BLOCK_PX, width // _BLOCK_PX
    peak = _blocks(_ll_u(rgb[: nby * _BLOCK_PX, : nbx * _BLOCK_PX])).max(axis=2)
    votes = np.sin(2 * np.pi * peak.ravel().astype(np.float64) / step)
    index = np.arange(votes.size) % n_bits
    sums = np.bincount(index, weights=votes, minlength=n_bits)
    counts = np.bincount(index, minlength=n_bits)
    return [float(s) for s in sums / counts]


def decode(
    image: Image.Image,
    n_bits: int,
    *,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
) -> list[int]:
    """Read ``n_bits`` payload bits (see :func:`decode_scores`)."""
    return [int(s < 0) for s in decode_scores(image, n_bits, scale=scale, size=size)]


def preview_mark(
    image: Image.Image,
    text: str = "PREVIEW",
    *,
    opacity: float = 0.28,
    font: ImageFont.FreeTypeFont | None = None,
) -> Image.Image:
    """Tile ``text`` diagonally over ``image``, light with a dark outline so it reads on
    any background: for preview and internal channels, never for published renditions.

    Pillow's built-in font covers Latin; pass a font (e.g. from the brand's FontSet) for
    other scripts. Returns RGBA for RGBA input, else RGB.
    """
    width, height = image.size
    size = max(12, min(width, height) // 9)
    face = font or ImageFont.load_default(size=size)
    side = math.ceil(math.hypot(width, height))
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    step_x, step_y = math.ceil(right - left) + size, math.ceil(bottom - top) + 2 * size
    alpha = round(255 * max(0.0, min(1.0, opacity)))
    stroke = max(1, size // 24)
    for row, y in enumerate(range(-step_y, side + step_y, step_y)):
        offset = (row % 2) * step_x // 2  # brick pattern: no straight columns of text
        for x in range(-step_x - offset, side + step_x, step_x):
            draw.text(
                (x, y),
                text,
                font=face,
                fill=(255, 255, 255, alpha),
                stroke_width=stroke,
                stroke_fill=(0, 0, 0, alpha // 2),
            )
    angle = math.degrees(math.atan2(height, width))  # along the diagonal
    layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC)
    x0, y0 = (side - width) // 2, (side - height) // 2
    layer = layer.crop((x0, y0, x0 + width, y0 + height))
    out = Image.alpha_composite(image.convert("RGBA"), layer)
    return out if image.mode == "RGBA" else out.convert("RGB")


def _bits(payload: Sequence[int] | bytes) -> list[int]:
    """Validated payload bits; bytes are unpacked MSB first."""
    if isinstance(payload, bytes | bytearray):
        bits = [(byte >> (7 - i)) & 1 for byte in payload for i in range(8)]
    else:
        bits = [int(b) for b in payload]
        if any(b not in (0, 1) for b in bits):
            raise ValueError("payload bits must be 0 or 1")
    if not bits:
        raise ValueError("the payload is empty")
    return bits


def _scale(scale: float | None) -> float:
    step = DEFAULT_SCALE if scale is None else float(scale)
    if not 4 * MARGIN < step <= 128:
        raise ValueError(f"scale must lie in {4 * MARGIN:g}..128 (default {DEFAULT_SCALE:g})")
    return step


def _check_size(width: int, height: int, n_bits: int) -> None:
    if n_bits <= capacity(width, height):
        return
    side = max(256, _BLOCK_PX * math.ceil(math.sqrt(n_bits * MIN_REPEATS)))
    raise UserError(
        f"image {width}×{height} is too small for a {n_bits}-bit watermark: it needs at "
        f"least {n_bits * MIN_REPEATS} blocks of 8×8 px and {MIN_PIXELS} px in all, "
        f"e.g. {side}×{side}",
        hint="watermark a larger rendition, or use a shorter payload",
    )


def _ll_u(rgb: Floats) -> Floats:
    """Haar LL band of the U plane: each 2×2 pixel group's U summed and halved."""
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    u = _KU * (blue - (0.299 * red + 0.587 * green + 0.114 * blue)) + 128.0
    h, w = u.shape
    ll: Floats = u.reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3)) / 2
    return ll


def _blocks(ll: Floats) -> Floats:
    """The 15 non-DC coefficients of every 4×4 LL block: shape (rows, cols, 15)."""
    h, w = ll.shape
    flat = ll.reshape(h // 4, 4, w // 4, 4).transpose(0, 2, 1, 3).reshape(h // 4, w // 4, 16)
    return flat[..., 1:]


def _diffuse(low: F64, high: F64, lo_gamut: F64, hi_gamut: F64, step: float) -> F64:
    """Per block, the allowed shift (``low..high`` plus whole periods, within gamut)
    nearest to what Floyd–Steinberg error diffusion asks for; 0 where gamut allows none.

    Diffusing the difference keeps every neighbourhood's mean shift near zero: the
    watermark becomes fine chroma texture instead of patches of tint. Block (i, j) only
    depends on blocks with smaller ``2i + j``, so each such anti-diagonal is one step.
    """
    rows, cols = low.shape
    periods = np.array([-step, 0.0, step])
    lo3 = np.maximum(low[..., None] + periods, lo_gamut[..., None])
    hi3 = np.minimum(high[..., None] + periods, hi_gamut[..., None])
    ok3 = lo3 <= hi3
    out = np.zeros((rows, cols))
    err = np.zeros((rows + 1, cols + 2))  # error owed to each block, padded by one column
    for t in range(2 * rows + cols - 2):
        i = np.arange(max(0, (t - cols + 2) // 2), min(rows - 1, t // 2) + 1)
        j = t - 2 * i
        want = -err[i, j + 1]
        pick = np.minimum(np.maximum(want[:, None], lo3[i, j]), hi3[i, j])
        gap = np.where(ok3[i, j], np.abs(pick - want[:, None]), np.inf)
        k = gap.argmin(axis=1)
        rows_i = np.arange(i.size)
        best = np.where(np.isfinite(gap[rows_i, k]), pick[rows_i, k], 0.0)
        out[i, j] = best
        owed = best - want
        err[i, j + 2] += owed * 7 / 16
        err[i + 1, j] += owed * 3 / 16
        err[i + 1, j + 1] += owed * 5 / 16
        err[i + 1, j + 2] += owed * 1 / 16
    return out
