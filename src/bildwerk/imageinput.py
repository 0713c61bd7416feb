"""Input image hygiene: the one door through which every image enters bildwerk.

Imports, product cutouts and logos come from anywhere: phones (EXIF rotation, MPO),
print departments (CMYK, Adobe RGB), scanners (16-bit), the web (palettes, animations,
broken downloads) or attackers (decompression bombs). Downstream stages must not care,
so :func:`load_image` either returns an upright, metadata-free, 8-bit sRGB image ("RGB",
or "RGBA" when the source had transparency) or raises :class:`InputImageError` with a
one-line message naming the file and a hint saying what to do.

Design choices:

* The pixel count is checked from the header, before any pixel is decoded. Pillow's own
  bomb guard stays active as a backstop and raises the same error.
* Fully opaque alpha is dropped ("RGBA" with every alpha 255 becomes "RGB"), so "RGBA"
  always means "this image has real transparency" and opaque cutouts store smaller.
* ``I`` (32-bit integer) images are read as 16-bit data (0..65535), which is what Pillow
  produces for 16-bit TIFF/PNG greyscale; ``F`` images are read as 0..1 when every value
  lies in that range, else as 0..255.
* A broken or mismatched embedded ICC profile is ignored (recorded in ``notes``) rather
  than refused: such files are common and viewers show them as plain sRGB too.
"""

from __future__ import annotations

import io
import re
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import (
    Image,
    ImageCms,
    ImageFile,
    ImageOps,
    PngImagePlugin,
    UnidentifiedImageError,
)

from bildwerk.boundedfile import FileRefused, MiB, read_regular_file
from bildwerk.errors import InputImageError

__all__ = [
    "MAX_IMAGE_FILE_BYTES",
    "SUPPORTED_FORMATS",
    "CleanImage",
    "load_image",
    "load_image_bytes",
]

#: Largest image file read from disk: a 64-megapixel 16-bit RGBA TIFF, uncompressed.
MAX_IMAGE_FILE_BYTES = 512 * MiB

#: Pillow format names bildwerk accepts; other decoders are never run on untrusted input.
SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "MPO", "WEBP", "GIF", "TIFF", "BMP", "AVIF")
_FORMATS_HINT = "supported formats: PNG, JPEG, WebP, GIF, TIFF, BMP, AVIF"
_LIMIT_HINT = "if the image is meant to be this large, raise limits.max_megapixels in bildwerk.yaml"
_CORRUPT_HINT = "re-export or re-download the file, then try again"
_MODE_HINT = "re-export it as an 8-bit RGB PNG or JPEG"

_ORIENTATION_TAG = 0x0112
_SRGB_CHUNK = b"\x00"  # sRGB chunk payload: rendering intent 0 (perceptual)

# Exceptions Pillow's decoders raise on malformed input. The input is untrusted, so all of
# them mean "corrupt file", not "bug in bildwerk".
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
)
_ICC_ERRORS: tuple[type[BaseException], ...] = (ImageCms.PyCMSError, OSError, ValueError)

# Pillow's limits are process-wide; changing them is serialised so concurrent loads see
# consistent settings.
_PILLOW_SETTINGS_LOCK = threading.Lock()


@dataclass(frozen=True)
class CleanImage:
    """A decoded, checked, normalised input image plus what was done to it."""

    image: Image.Image
    source_format: str
    source_mode: str
    width: int
    height: int
    notes: tuple[str, ...]

    def png_bytes(self) -> bytes:
        """Encode deterministically (no time or text chunks) for content-addressed storage.

        Only an sRGB chunk is written, so viewers and later stages agree on the colours.
        Bytes are stable for a given Pillow/zlib build.
        """
        info = PngImagePlugin.PngInfo()
        info.add(b"sRGB", _SRGB_CHUNK)
        buf = io.BytesIO()
        self.image.save(buf, format="PNG", pnginfo=info, optimize=False, compress_level=6)
        return buf.getvalue()


def load_image(
    path: Path | str,
    *,
    max_megapixels: float = 64.0,
    first_frame: bool = False,
    max_bytes: int = MAX_IMAGE_FILE_BYTES,
) -> CleanImage:
    """Load an image file from disk; see :func:`load_image_bytes` for the checks. The file
    must be a regular file of at most ``max_bytes``."""
    path = Path(path)
    return _load(_read_file(path, max_bytes), str(path), max_megapixels, first_frame)


def load_image_bytes(
    data: bytes, *, name: str, max_megapixels: float = 64.0, first_frame: bool = False
) -> CleanImage:
    """Load an image held in memory; ``name`` stands for the file in error messages.

    Raises :class:`InputImageError` for anything that is not a usable still image of at
    most ``max_megapixels``. Animated/multi-page images need ``first_frame=True``.
    """
    return _load(data, name, max_megapixels, first_frame)


# --- reading -------------------------------------------------------------------------------


def _read_file(path: Path, max_bytes: int) -> bytes:
    """Read all bytes of a regular file of at most ``max_bytes``: devices (``/dev/zero``),
    FIFOs and oversized files are refused before they can exhaust memory or hang."""
    try:
        return read_regular_file(path, limit=max_bytes, what="image file")
    except FileRefused as exc:
        raise InputImageError(path, exc.reason, hint=exc.hint) from None


# --- decoding ------------------------------------------------------------------------------


def _load(data: bytes, name: str, max_megapixels: float, first_frame: bool) -> CleanImage:
    if not max_megapixels > 0:
        raise ValueError(f"max_megapixels must be positive, got {max_megapixels!r}")
    limit = int(max_megapixels * 1_000_000)
    notes: list[str] = []
    with _pillow_settings(limit):
        source = _decode(data, name, limit, first_frame, notes)
    try:
        image = _normalise(source, name, notes)
    except (OSError, ValueError) as exc:  # odd metadata (palette, tRNS, ICC) Pillow rejects
        raise InputImageError(
            name, f"image cannot be converted to sRGB ({_one_line(exc)})", hint=_MODE_HINT
        ) from None
    finally:
        source.close()
    return CleanImage(
        image=image,
        source_format=source.format or "unknown",
        source_mode=source.mode,
        width=image.width,
        height=image.height,
        notes=tuple(notes),
    )


@contextmanager
def _pillow_settings(limit_pixels: int) -> Iterator[None]:
    """Never load truncated data, and let Pillow's bomb guard allow what the user allowed.

    Pillow's limit is only ever raised (to the caller's limit), never lowered or disabled,
    and is restored afterwards.
    """
    with _PILLOW_SETTINGS_LOCK:
        saved_limit = Image.MAX_IMAGE_PIXELS
        saved_truncated = ImageFile.LOAD_TRUNCATED_IMAGES
        if saved_limit is not None and limit_pixels > saved_limit:
            Image.MAX_IMAGE_PIXELS = limit_pixels
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved_limit
            ImageFile.LOAD_TRUNCATED_IMAGES = saved_truncated


def _decode(data: bytes, name: str, limit: int, first_frame: bool, notes: list[str]) -> Image.Image:
    """Identify, size-check, frame-check and fully decode; never return partial pixels."""
    try:
        image = Image.open(io.BytesIO(data), formats=_available_formats())
        _check_size(image.size, name, limit)
        _select_frame(image, name, first_frame, notes)
        image.load()
        return image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        pixels = _pixels_from_pillow_message(str(exc))
        raise _too_large(name, limit, pixels=pixels) from None
    except UnidentifiedImageError:
        raise InputImageError(
            name, f"not an image ({_describe_unknown(data)})", hint=_FORMATS_HINT
        ) from None
    except _DECODE_ERRORS as exc:
        raise InputImageError(
            name, f"image data is truncated or corrupt ({_one_line(exc)})", hint=_CORRUPT_HINT
        ) from None


def _available_formats() -> tuple[str, ...]:
    """Supported formats this Pillow build can decode (AVIF depends on libavif)."""
    Image.init()
    return tuple(fmt for fmt in SUPPORTED_FORMATS if fmt in Image.OPEN)


def _check_size(size: tuple[int, int], name: str, limit: int) -> None:
    if size[0] * size[1] > limit:
        raise _too_large(name, limit, size=size)


def _too_large(
    name: str, limit: int, *, size: tuple[int, int] | None = None, pixels: int | None = None
) -> InputImageError:
    if size is not None:
        what = f"{size[0]}×{size[1]} pixels ({size[0] * size[1] / 1e6:.1f} megapixels)"
    elif pixels is not None:
        what = f"{pixels / 1e6:.1f} megapixels"
    else:
        what = "more pixels than Pillow allows"
    return InputImageError(
        name,
        f"image is too large: {what}, over the limit of {limit / 1e6:g} megapixels",
        hint=_LIMIT_HINT,
    )


def _pixels_from_pillow_message(message: str) -> int | None:
    """Pillow reports bombs as 'Image size (N pixels) exceeds limit ...'; keep N if present."""
    match = re.search(r"\((\d+) pixels\)", message)
    return int(match.group(1)) if match else None


def _select_frame(image: Image.Image, name: str, first_frame: bool, notes: list[str]) -> None:
    """Refuse multi-frame images unless the caller asked for the first frame."""
    frames = int(getattr(image, "n_frames", 1))
    if frames <= 1:
        return
    if image.format == "MPO":
        # Phone/camera JPEGs: frame 0 is the photo, the rest are previews or depth maps.
        notes.append(f"MPO with {frames} images: used the primary image")
    elif first_frame:
        notes.append(f"{image.format} with {frames} frames: used the first frame")
    else:
        raise InputImageError(
            name,
            f"{image.format} image has {frames} frames (animated or multi-page); "
            "bildwerk needs a still image",
            hint="to use its first frame, pass first_frame=True "
            "(CLI: bildwerk assets import --first-frame)",
        )
    image.seek(0)


def _describe_unknown(data: bytes) -> str:
    """Say what the bytes look like, so 'not an image' is actionable."""
    if not data:
        return "the file is empty"
    head = data[:512].decode("utf-8", errors="replace")
    if "\x00" not in head and head.count("\ufffd") <= 3:
        return "the content is text"
    return "content not recognised as any supported format"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


# --- normalising ---------------------------------------------------------------------------


def _normalise(image: Image.Image, name: str, notes: list[str]) -> Image.Image:
    """Upright, 8-bit, sRGB, RGB/RGBA, without metadata."""
    icc = image.info.get("icc_profile")
    image = _apply_orientation(image, notes)
    image = _to_eight_bit(image, name, notes)
    image = _to_srgb(image, icc if isinstance(icc, bytes) and icc else None, notes)
    image = _drop_opaque_alpha(image, notes)
    if isinstance(image, ImageFile.ImageFile):
        image = image.copy()  # detach from the decoder and its file object
    image.info = {}
    return image


def _apply_orientation(image: Image.Image, notes: list[str]) -> Image.Image:
    """Rotate/flip per EXIF so the pixels are upright and the tag no longer matters."""
    try:
        orientation = image.getexif().get(_ORIENTATION_TAG, 1)
        if not isinstance(orientation, int) or orientation not in range(2, 9):
            return image
        transposed = ImageOps.exif_transpose(image)
    except _DECODE_ERRORS:
        notes.append("ignored unreadable EXIF data")
        return image
    notes.append(f"applied EXIF orientation {orientation}")
    return transposed if transposed is not None else image


def _to_eight_bit(image: Image.Image, name: str, notes: list[str]) -> Image.Image:
    """Bring any Pillow mode to one of L, LA, RGB, RGBA or CMYK (8 bits per channel)."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return _with_colour_key(image) if mode in ("L", "RGB") else image
    if mode == "1":
        return image.convert("L")
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if mode in ("PA", "RGBa"):
        return image.convert("RGBA")
    if mode == "La":
        return image.convert("LA")
    if mode in ("RGBX", "YCbCr", "HSV"):
        return image.convert("RGB")
    if mode == "LAB":
        converted = _lab_to_srgb(image)
        if converted is not None:
            notes.append("CIELAB → sRGB via ImageCms")
            return converted
    elif mode.startswith("I") or mode == "F":
        return _scale_deep(image, notes)
    raise InputImageError(name, f"unsupported colour mode {mode!r}", hint=_MODE_HINT)


def _lab_to_srgb(image: Image.Image) -> Image.Image | None:
    lab, srgb = ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB")
    try:
        return ImageCms.profileToProfile(image, lab, srgb, outputMode="RGB")
    except _ICC_ERRORS:
        return None


def _with_colour_key(image: Image.Image) -> Image.Image:
    """PNG tRNS on L/RGB marks one colour as transparent: turn that into a real alpha."""
    if "transparency" not in image.info:
        return image
    return image.convert("LA" if image.mode == "L" else "RGBA")


def _scale_deep(image: Image.Image, notes: list[str]) -> Image.Image:
    """Scale 16/32-bit integer and float greyscale to 8 bits (65535 → 255, 32896 → 128)."""
    values: npt.NDArray[np.float64] = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        values = np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=0.0)
        full_scale = 1.0 if values.size and values.min() >= 0.0 and values.max() <= 1.0 else 255.0
        notes.append(f"float greyscale (0..{full_scale:g}) scaled to 8-bit")
    else:
        full_scale = 65535.0
        notes.append(f"{image.mode} greyscale (0..65535) scaled to 8-bit")
    scaled = np.clip(np.floor(values * (255.0 / full_scale) + 0.5), 0, 255).astype(np.uint8)
    grey = Image.fromarray(scaled, mode="L")
    key = image.info.get("transparency")
    if isinstance(key, int) and image.mode != "F":
        alpha = np.where(np.asarray(image) == key, 0, 255).astype(np.uint8)
        return Image.merge("LA", (grey, Image.fromarray(alpha, mode="L")))
    return grey


def _to_srgb(image: Image.Image, icc: bytes | None, notes: list[str]) -> Image.Image:
    """Honour an embedded ICC profile, then end in RGB or RGBA."""
    profile = _read_profile(icc, image.mode, notes) if icc else None
    if profile is not None:
        converted = _convert_with_profile(image, profile, notes)
        if converted is not None:
            return converted
    if image.mode == "CMYK":
        notes.append("CMYK → RGB by plain conversion (no usable ICC profile embedded)")
        return image.convert("RGB")
    if image.mode == "L":
        return image.convert("RGB")
    if image.mode == "LA":
        return image.convert("RGBA")
    return image


_PROFILE_SPACES = {"L": "GRAY", "LA": "GRAY", "RGB": "RGB", "RGBA": "RGB", "CMYK": "CMYK"}


def _read_profile(icc: bytes, mode: str, notes: list[str]) -> ImageCms.ImageCmsProfile | None:
    """Parse the profile; return None when it is sRGB already, unreadable or mismatched."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space.strip()
        description = (profile.profile.profile_description or "").strip()
    except _ICC_ERRORS:
        notes.append("ignored unreadable embedded ICC profile")
        return None
    if space != _PROFILE_SPACES.get(mode):
        notes.append(f"ignored embedded {space} ICC profile on a {mode} image")
        return None
    if space == "RGB" and "srgb" in description.lower():
        return None  # already sRGB: pass the pixels through untouched
    return profile


def _convert_with_profile(
    image: Image.Image, profile: ImageCms.ImageCmsProfile, notes: list[str]
) -> Image.Image | None:
    """Transform to sRGB with LittleCMS, keeping any alpha channel exactly."""
    alpha = image.getchannel("A") if image.mode in ("LA", "RGBA") else None
    colour = image.convert("L" if image.mode == "LA" else "RGB") if alpha is not None else image
    name = (profile.profile.profile_description or "").strip() or "unnamed"
    try:
        converted = ImageCms.profileToProfile(
            colour,
            profile,
            ImageCms.createProfile("sRGB"),
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            outputMode="RGB",
        )
    except _ICC_ERRORS:
        notes.append(f"ignored embedded ICC profile {name!r} (cannot build a transform)")
        return None
    if converted is None:
        return None
    notes.append(f"{image.mode} → sRGB via embedded ICC profile {name!r}")
    if alpha is not None:
        converted.putalpha(alpha)
    return converted


def _drop_opaque_alpha(image: Image.Image, notes: list[str]) -> Image.Image:
    """RGBA means real transparency; an alpha channel that is 255 everywhere is dropped."""
    if image.mode != "RGBA":
        return image
    low, _high = image.getchannel("A").getextrema()
    if isinstance(low, (int, float)) and low >= 255:
        notes.append("dropped fully opaque alpha channel")
        return image.convert("RGB")
    return image
