"""Resize a master to an exact pixel size: cover-crop around a focal point, or letterbox.

Both modes resample the source once, straight from the master, so every rendition gets a
single high-quality Lanczos pass however far it is reduced.
"""

from __future__ import annotations

from typing import Literal

from PIL import Image

FitMode = Literal["crop", "fit"]

# Pillow first shrinks by an integer factor with `Image.reduce` (box filter, very fast) while
# the remaining reduction stays >= this gap, then finishes with Lanczos. At 3.0 the result is
# visually indistinguishable from a pure Lanczos pass; it only kicks in for reductions >= 6x.
REDUCING_GAP = 3.0

Box = tuple[float, float, float, float]


def fit(
    image: Image.Image,
    width: int,
    height: int,
    *,
    mode: FitMode,
    focal: tuple[float, float] = (0.5, 0.5),
    background: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """Return a new ``width`` × ``height`` image made from ``image``.

    ``crop`` scales to cover the target and cuts away what does not fit, keeping the crop
    window centred on ``focal`` (fractions of the source size) as far as the edges allow.
    ``fit`` scales to fit inside and pads with ``background`` (the padded result is RGB;
    alpha, if any, is composited onto the background). When the aspect ratios differ by
    less than a target pixel, both modes are a plain resize.
    """
    if width < 1 or height < 1:
        raise ValueError(f"target size must be positive, got {width}x{height}")
    if not all(0.0 <= f <= 1.0 for f in focal):
        raise ValueError(f"focal point must be normalised to 0..1, got {focal}")
    src_w, src_h = image.size
    if _same_aspect(src_w, src_h, width, height):
        return _resample(image, (width, height))
    if mode == "crop":
        return _resample(image, (width, height), crop_box(src_w, src_h, width, height, focal))
    return _letterbox(image, width, height, background)


def crop_box(src_w: int, src_h: int, width: int, height: int, focal: tuple[float, float]) -> Box:
    """Largest source window with the target's aspect, centred on the focal point and
    shifted back inside the image where the focal point is near an edge."""
    scale = max(width / src_w, height / src_h)
    crop_w, crop_h = min(src_w, width / scale), min(src_h, height / scale)
    left = _clamp(focal[0] * src_w - crop_w / 2, 0.0, src_w - crop_w)
    top = _clamp(focal[1] * src_h - crop_h / 2, 0.0, src_h - crop_h)
    return left, top, left + crop_w, top + crop_h


def _same_aspect(src_w: int, src_h: int, width: int, height: int) -> bool:
    """True when a cover-crop would trim less than one target pixel on either axis:
    rounding a rendition's height must not cost a needless crop."""
    scale = max(width / src_w, height / src_h)
    return src_w * scale - width < 1.0 and src_h * scale - height < 1.0


def _resample(image: Image.Image, size: tuple[int, int], box: Box | None = None) -> Image.Image:
    """Lanczos resample (of ``box`` if given) to ``size``; always a new image."""
    if box is None and image.size == size:
        return image.copy()
    return image.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=REDUCING_GAP)


def _letterbox(
    image: Image.Image, width: int, height: int, background: tuple[int, int, int]
) -> Image.Image:
    """Scale to fit inside, centre on a ``background`` canvas."""
    scale = min(width / image.width, height / image.height)
    inner_w = max(1, min(width, round(image.width * scale)))
    inner_h = max(1, min(height, round(image.height * scale)))
    inner = _resample(image, (inner_w, inner_h))
    canvas = Image.new("RGB", (width, height), background)
    offset = ((width - inner_w) // 2, (height - inner_h) // 2)
    if inner.mode in ("RGBA", "LA"):
        canvas.paste(inner.convert("RGB"), offset, inner.getchannel("A"))
    else:
        canvas.paste(inner.convert("RGB"), offset)
    return canvas


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))
