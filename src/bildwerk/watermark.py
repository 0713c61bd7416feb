"""Invisible watermark readable by the ``invisible-watermark`` package's ``dwtDct`` decoder,
and a visible "PREVIEW" mark.

A capability of its own, not of publishing: the render stage marks every frame in the
pixel domain before encoding (marking an encoded file would mean a second lossy encode
and a second byte-budget search), and ``verify``/the publisher only read marks back.

Format (what that decoder reads): the image's U plane (BT.601 YUV, OpenCV's 8-bit maths)
cropped to a multiple of 4 px, one level of Haar DWT, and the LL band cut into 4×4 blocks
in raster order; block ``i`` carries bit ``i mod n``. A block's bit is read from its
largest non-DC coefficient ``v``: 1 when ``v mod scale > scale / 2``. Bits are majority
votes over all their blocks. (The decoder reads the LL coefficients themselves; despite
the method's name no DCT is involved.)

Embedding, our own: each 8×8 px block's U is shifted by one amount ``d`` chosen so its
largest coefficient lands well inside the right half of the lattice (see the margins).
A uniform shift keeps which coefficient is largest and survives 4:2:0 chroma subsampling,
which erases single-coefficient changes (and with them the reference encoder's marks).
Bits are majority votes, so only the cheapest 60 % of each bit's blocks are constrained
(at the default strength), and the shifts are smoothed between neighbours with every
~64 px window's mean held near 0: encoders pay for block-to-block contrast, which is what
made the earlier error-diffused mark cost +157 % on AVIF, and a local mean is a visible
tint. Shifts that would push blue or green out of 0..255 are avoided; luma and V never
change. ``docs/watermark.md`` has the measured
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
MARGIN_BELOW = 3.0
MARGIN_ABOVE = 8.0
"""How far (LL units) a marked block's largest coefficient is kept inside its half-period,
from the lower and the upper boundary, at strength 1. Below covers uint8 rounding (up to
~1.8) and the blur of a raised block's edges; above is wider because lossy re-encoding
lifts that coefficient (the decoder takes a maximum, which picks up compression noise and
the bleed of brighter neighbours). Wider margins buy robustness with bytes."""
DEFAULT_STRENGTH = 1.0
"""Margins as above, 60 % of each bit's blocks marked (see :func:`embed`). AVIF q60 and
JPEG 4:2:0 renditions of studio scenes then lose 4 or 5 of 32 bits (match() stays > 0.3);
1.5 recovers them all but costs about as many bytes as the old error-diffused mark."""
MIN_REPEATS = 32
"""Blocks (votes) each payload bit needs at least: with fewer, one damaged region flips
bits. 32 lets a 32-bit payload fit a 300×250 ad (35 votes a bit)."""
MIN_PIXELS = 256 * 256
"""The reference decoder refuses smaller images."""

# BT.601 as OpenCV's BGR2YUV: U = 0.492 (B - Y) + 128. Moving U with Y and V fixed means
# B += dU / 0.492 and G -= (0.114 / 0.587) dB; R stays.
_KU = 0.492
_KG = 0.114 / 0.587
_BLOCK_PX = 8  # a 4×4 LL block covers 8×8 pixels
_HAAR = math.sqrt(0.5)
_MAX_MARGIN_GROWTH = 1.5  # beyond this the two margins would close up the half-period
_SWEEPS = 30  # smoothing sweeps; the shifts change by < 0.1 LL after ~30 on our creatives
_PULL_TO_ZERO = 0.5  # against 4 neighbours: keeps free blocks near 0
_TINT_BLOCKS = 9  # the window (blocks) whose mean shift is held near 0: ~ a 64 px tile
_TINT_WEIGHT = 128.0  # against 4 neighbours: the window mean dominates, smoothness next
_SPARE_EVERY = 5  # in crowded windows, one block in this many is left free
_CROWDED = 0.75  # share of a window's blocks kept above which it is crowded
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


def bits_hex(bits: Sequence[int]) -> str:
    """The payload as hex, MSB first (``cr_3f9a…`` gives ``3f9a…``): how it is stored and
    shown, and what an asset id starts with."""
    return f"{int(''.join(map(str, bits)), 2):0{math.ceil(len(bits) / 4)}x}"


def embed(
    image: Image.Image,
    payload_bits: Sequence[int] | bytes,
    *,
    scale: float | None = None,
    strength: float | None = None,
) -> Image.Image:
    """Return a copy of ``image`` carrying ``payload_bits`` (bytes: MSB first, as
    ``imwatermark`` packs them). RGBA keeps its alpha; other modes come back RGB.

    ``strength`` (0 < s <= 4, default :data:`DEFAULT_STRENGTH` = 1) trades bytes for
    robustness: it scales the margins (up to 1.5×) and sets the share of each bit's
    blocks that are made to read right (0.5 + 0.1 s, all of them from s = 5). 1 survives
    JPEG q82 4:4:4 from 1080 px up, 1.5 AVIF q60 and JPEG q82 4:2:0 too; WebP q80 wants more
    (docs/watermark.md has the measurements).

    Deterministic: the same image, payload and settings give the same pixels. Raises
    :class:`UserError` when the image is too small for the payload.
    """
    bits = _bits(payload_bits)
    step = _scale(scale)
    level = _strength(strength)
    width, height = image.size
    _check_size(width, height, len(bits))
    pixels = np.asarray(image.convert("RGB"))
    nby, nbx = height // _BLOCK_PX, width // _BLOCK_PX
    rows = pixels[: nby * _BLOCK_PX, : nbx * _BLOCK_PX].reshape(nby, _BLOCK_PX, -1)
    low_rgb = rows.min(axis=1).reshape(nby, nbx, _BLOCK_PX, 3).min(axis=2).astype(F32)
    high_rgb = rows.max(axis=1).reshape(nby, nbx, _BLOCK_PX, 3).max(axis=2).astype(F32)
    rgb = pixels.astype(F32)
    region = rgb[: nby * _BLOCK_PX, : nbx * _BLOCK_PX]

    peak = _blocks(_ll_u(region)).max(axis=2).astype(np.float64)  # what each block reads
    bit = np.resize(np.asarray(bits, dtype=np.float64), nby * nbx).reshape(nby, nbx)
    grow = min(level, _MAX_MARGIN_GROWTH, 0.46 * step / (MARGIN_BELOW + MARGIN_ABOVE))
    base = np.floor(peak / step) * step
    low = base + bit * step / 2 + MARGIN_BELOW * grow - peak  # into the wanted half-period
    high = base + (bit + 1) * step / 2 - MARGIN_ABOVE * grow - peak
    # Gamut: the LL shifts (2 × the U shift) that keep every B and G of the block in 0..255.
    lo_gamut = 2 * _KU * np.maximum(-low_rgb[..., 2], (high_rgb[..., 1] - 255) / _KG)
    hi_gamut = 2 * _KU * np.minimum(255 - high_rgb[..., 2], low_rgb[..., 1] / _KG)
    allowed = _Allowed(low, high, lo_gamut.astype(np.float64), hi_gamut.astype(np.float64), step)
    needed = allowed.nearest(np.zeros_like(low))
    keep = _cheapest(needed, len(bits), min(1.0, 0.5 + 0.1 * level))
    shift = _smooth(allowed, keep, np.where(keep, np.nan_to_num(needed), 0.0))

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
    """Per bit, the vote of its blocks from +1 (all read 0) to -1 (all read 1). Flat
    areas push every bit the same way, so large scores alone do not prove a watermark
    (see :func:`match`). ``size`` is the size the watermark was embedded at: an image
    resized since is resampled back first, as the block grid has to line up.
    """
    ones, total = _votes(image, n_bits, scale, size)
    return [float(1 - 2 * o / t) for o, t in zip(ones, total, strict=True)]


def decode(
    image: Image.Image,
    n_bits: int,
    *,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
) -> list[int]:
    """Read ``n_bits`` payload bits: a bit is 1 when more than 127/255 of its blocks read
    1, as the reference decoder rounds (see :func:`decode_scores` for ``size``)."""
    ones, total = _votes(image, n_bits, scale, size)
    return [int(o * 255 > 127 * t) for o, t in zip(ones, total, strict=True)]


def match(
    image: Image.Image,
    payload_bits: Sequence[int] | bytes,
    *,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
) -> float:
    """How strongly ``image`` carries ``payload_bits``: the slope of the bits' votes
    against the payload (+1 for a 0 bit, -1 for a 1), with the bias every bit shares
    removed (flat areas bias every bit alike). At strength 1, on studio scenes at 1080
    and 1920 px: 0.35 to 0.42 after AVIF q60, 0.56 to 0.62 after JPEG q82 4:4:4, 0.19 to
    0.33 after 4:2:0, only 0.07 to 0.14 after WebP q80; within ±0.02 for unmarked images;
    0 when the payload is all zeros or all ones, which cannot be told from that bias.
    """
    signs = 1.0 - 2.0 * np.asarray(_bits(payload_bits), dtype=np.float64)
    scores = np.asarray(decode_scores(image, signs.size, scale=scale, size=size))
    spread = float(np.var(signs))
    if spread == 0.0:
        return 0.0
    return float(np.mean((scores - scores.mean()) * (signs - signs.mean())) / spread)


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


def _votes(
    image: Image.Image, n_bits: int, scale: float | None, size: tuple[int, int] | None
) -> tuple[list[int], list[int]]:
    """Per bit: how many of its blocks read 1 (largest coefficient in the upper half of
    its period, the reference decoder's rule), and how many blocks it has."""
    if n_bits < 1:
        raise ValueError("n_bits must be positive")
    step = _scale(scale)
    if size is not None and image.size != size:
        image = image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    width, height = image.size
    _check_size(width, height, n_bits)
    rgb = np.asarray(image.convert("RGB"))
    nby, nbx = height // _BLOCK_PX, width // _BLOCK_PX
    peak = _blocks(_ll_u8(rgb[: nby * _BLOCK_PX, : nbx * _BLOCK_PX])).max(axis=2).ravel()
    index = np.arange(peak.size) % n_bits
    ones = np.bincount(index[np.mod(peak, step) > step / 2], minlength=n_bits)
    return [int(o) for o in ones], [int(t) for t in np.bincount(index, minlength=n_bits)]


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
    lowest = 2 * (MARGIN_BELOW + MARGIN_ABOVE)
    if not lowest < step <= 128:
        raise ValueError(f"scale must lie above {lowest:g}, up to 128 (default {DEFAULT_SCALE:g})")
    return step


def _strength(strength: float | None) -> float:
    level = DEFAULT_STRENGTH if strength is None else float(strength)
    if not 0 < level <= 4:
        raise ValueError(
            f"strength must lie in (0, 4], got {strength} (default {DEFAULT_STRENGTH:g})"
        )
    return level


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
    """Haar LL band of the U plane (float model): about each 2×2 group's U summed, halved."""
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return _ll(_KU * (blue - (0.299 * red + 0.587 * green + 0.114 * blue)) + 128.0)


def _ll_u8(rgb: npt.NDArray[np.uint8]) -> Floats:
    """Haar LL band of the U plane exactly as the reference decoder sees it: OpenCV's
    8-bit BGR→YUV, fixed point with 14 fractional bits and a rounded integer Y."""
    red, green, blue = (rgb[..., i].astype(np.int32) for i in range(3))
    luma = (red * 4899 + green * 9617 + blue * 1868 + 8192) >> 14
    u = np.clip(((blue - luma) * 8061 + (128 << 14) + 8192) >> 14, 0, 255)
    return _ll(u.astype(F32))


def _ll(u: Floats) -> Floats:
    """Haar LL band, computed as PyWavelets does (rows, then columns, each pair times
    1/√2) so that coefficients exactly on a decision boundary round the same way."""
    u64 = u.astype(np.float64)
    rows = _HAAR * u64[0::2] + _HAAR * u64[1::2]
    ll: Floats = _HAAR * rows[:, 0::2] + _HAAR * rows[:, 1::2]
    return ll


def _blocks(ll: Floats) -> Floats:
    """The 15 non-DC coefficients of every 4×4 LL block: shape (rows, cols, 15)."""
    h, w = ll.shape
    flat = ll.reshape(h // 4, 4, w // 4, 4).transpose(0, 2, 1, 3).reshape(h // 4, w // 4, 16)
    return flat[..., 1:]


class _Allowed:
    """Per block, the LL shifts that make it read its bit: ``low..high`` plus whole
    periods, cut to what the gamut allows (possibly nothing)."""

    def __init__(self, low: F64, high: F64, lo_gamut: F64, hi_gamut: F64, step: float) -> None:
        periods = np.array([-step, 0.0, step])
        self.lo = np.maximum(low[..., None] + periods, lo_gamut[..., None])
        self.hi = np.minimum(high[..., None] + periods, hi_gamut[..., None])
        self.ok = self.lo <= self.hi
        self.lo_gamut, self.hi_gamut = lo_gamut, hi_gamut

    def nearest(self, want: F64) -> F64:
        """The allowed shift nearest to ``want`` per block; NaN where none is allowed."""
        pick = np.clip(want[..., None], self.lo, self.hi)
        gap = np.where(self.ok, np.abs(pick - want[..., None]), np.inf)
        k = gap.argmin(axis=-1)[..., None]
        best = np.take_along_axis(pick, k, axis=-1)[..., 0]
        found = np.isfinite(np.take_along_axis(gap, k, axis=-1)[..., 0])
        out: F64 = np.where(found, best, np.nan)
        return out


def _cheapest(needed: F64, n_bits: int, share: float) -> npt.NDArray[np.bool_]:
    """Per payload bit, the ``share`` of its blocks that need the smallest shift to read
    right (0 for those that already do): the majority vote only needs a safe majority,
    and every block left alone is a block the encoder doesn't pay for.

    Where nearly every block of a window would be kept (flat areas: all of them cheap),
    one in :data:`_SPARE_EVERY` is left free, as the kept blocks' shifts rarely average
    out and something has to pay their mean back (see :func:`_smooth`)."""
    cost = np.where(np.isnan(needed), np.inf, np.abs(needed))
    keep = _cheapest_of(cost, n_bits, share)
    rows, cols = needed.shape
    pattern = np.add.outer(np.arange(rows), 2 * np.arange(cols)) % _SPARE_EVERY == 0
    spare = pattern & (_box(keep.astype(F32)) > _CROWDED)
    return _cheapest_of(np.where(spare, np.inf, cost), n_bits, share) if spare.any() else keep


def _cheapest_of(cost: F64, n_bits: int, share: float) -> npt.NDArray[np.bool_]:
    """The ``share`` of each bit's blocks with the lowest finite ``cost`` (ties in
    raster order, so the choice is deterministic)."""
    flat = cost.ravel()
    owner = np.arange(flat.size) % n_bits
    order = np.lexsort((np.arange(flat.size), flat, owner))  # by bit, then cost; stable
    counts = np.bincount(owner, minlength=n_bits)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(flat.size) - starts[owner[order]]
    keep = np.zeros(flat.size, dtype=bool)
    keep[order] = (rank < np.ceil(share * counts[owner[order]])) & np.isfinite(flat[order])
    return keep.reshape(cost.shape)


def _smooth(allowed: _Allowed, keep: npt.NDArray[np.bool_], start: F64) -> F64:
    """Shifts as smooth as the constraints allow and with no local mean: red-black
    Gauss–Seidel sweeps, each block towards its neighbours' mean less the mean of the
    :data:`_TINT_BLOCKS`-square window around it; kept blocks projected onto their
    allowed shifts, free blocks only onto the gamut.

    Encoders pay for contrast between neighbouring blocks, not for the shift itself, so
    a kept block takes the allowed value nearest its neighbours and a free block bridges
    between them. A window's mean shift, though, is a visible colour cast: the mean term
    (semi-implicit, so any weight is stable) makes free blocks, and the kept blocks'
    place within their allowed range, pay it back, which costs little as it is smooth.
    Updates run on the blocks of one colour and kind at a time, in float32.
    """
    rows, cols = start.shape
    shift = start.astype(F32).ravel()
    index = np.arange(shift.size).reshape(rows, cols)
    pad = np.pad(index, 1, mode="edge")
    around = np.stack([pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]])
    around = around.reshape(4, -1)
    colour = (np.add.outer(np.arange(rows), np.arange(cols)) % 2).ravel()
    kept_all, lo_all, hi_all = keep.ravel(), allowed.lo.reshape(-1, 3), allowed.hi.reshape(-1, 3)
    denominator = F32(4 + _PULL_TO_ZERO + _TINT_WEIGHT)
    groups = []
    for c in (0, 1):
        kept = np.flatnonzero((colour == c) & kept_all)
        free = np.flatnonzero((colour == c) & ~kept_all)
        groups.append(
            (
                kept,
                around[:, kept],
                lo_all[kept].astype(F32),
                hi_all[kept].astype(F32),
                np.where(allowed.ok.reshape(-1, 3)[kept], F32(0), F32(np.inf)),
                free,
                around[:, free],
                allowed.lo_gamut.ravel()[free].astype(F32),
                allowed.hi_gamut.ravel()[free].astype(F32),
            )
        )
    for _ in range(_SWEEPS):
        for kept, k_near, k_lo, k_hi, k_bad, free, f_near, f_lo, f_hi in groups:
            tint = _box(_box(shift.reshape(rows, cols))).ravel() * F32(_TINT_WEIGHT)
            if kept.size:
                want = (shift[k_near].sum(axis=0) - tint[kept]) / denominator
                want += shift[kept] * F32(_TINT_WEIGHT / denominator)
                pick = np.clip(want[:, None], k_lo, k_hi)
                gap = np.abs(pick - want[:, None]) + k_bad
                shift[kept] = np.take_along_axis(pick, gap.argmin(axis=1)[:, None], 1)[:, 0]
            if free.size:
                want = (shift[f_near].sum(axis=0) - tint[free]) / denominator
                want += shift[free] * F32(_TINT_WEIGHT / denominator)
                shift[free] = np.clip(want, f_lo, f_hi)  # the gamut always holds 0
    out: F64 = shift.reshape(rows, cols).astype(np.float64)
    return out


def _box(values: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Mean over the :data:`_TINT_BLOCKS`-square window around each block (edges
    replicated), from running sums."""
    n = _TINT_BLOCKS
    out = np.pad(values, n // 2, mode="edge")
    for axis in (0, 1):
        total = np.cumsum(out, axis=axis, dtype=F32)
        total = np.concatenate([np.zeros_like(total.take([0], axis=axis)), total], axis=axis)
        size = total.shape[axis]
        out = total.take(range(n, size), axis=axis) - total.take(range(size - n), axis=axis)
    result: npt.NDArray[np.float32] = out / F32(n * n)
    return result
