"""One encode of one frame, as every published rendition is made, and what its bytes are.

Encoder settings are chosen by measurement against the reference encoders at equal luma
SSIM (tests/stages/test_encoder_parity.py, benchmarks/bench_delivery.py):

* AVIF: libaom through Pillow with ``tune=ssim`` (libaom's default tunes for PSNR: +4 % at
  480 px, +13 % at 1920 px against ``avifenc -s 6 -a tune=ssim``), one thread and one tile
  (autotiling only pays with threads and costs ~0.5 % at 1920 px), 4:2:0; speed 6, and 5
  for the delivered encode of frames under ~0.5 MP.
* WebP: libwebp at ``method`` 4, as ``cwebp``'s default.
* JPEG: progressive with optimised Huffman tables; 4:2:0 chroma unless the frame carries
  the invisible watermark, which lives in chroma and does not survive 4:2:0 (see
  :func:`encode`).

Outputs are deterministic: single-threaded AV1 encoding, a fixed codec, and an sRGB ICC
profile whose creation date is pinned, so the same frame and settings give the same
bytes in any process on the same encoder versions (see :func:`encoder_versions`).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING

import PIL
from PIL import AvifImagePlugin, Image, ImageCms, features

from bildwerk.bmff import coded_extents, find

if TYPE_CHECKING:
    from bildwerk.stages.render import RenderSettings

# ICC header date of the sRGB profile; LittleCMS stamps "now", which would break caching.
_ICC_DATE = struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
# CICP code points for sRGB: BT.709 primaries, IEC 61966-2-1 transfer.
_CICP_BT709, _CICP_SRGB = 1, 13
# aom options: the AV1 sequence header carries the same code points as the container, and
# rate-distortion decisions are tuned for SSIM, the metric renditions are encoded to.
AOM_OPTIONS = {"color-primaries": "bt709", "transfer-characteristics": "srgb", "tune": "ssim"}


def encode(
    frame: Image.Image,
    fmt: str,
    quality: int,
    settings: RenderSettings,
    *,
    subsample_chroma: bool = False,
    icc: bool = True,
    draft: bool = False,
) -> bytes:
    """Encode ``frame`` once at ``quality``, exactly as :func:`render` does (an sRGB ICC
    profile unless ``icc`` is false, no other metadata; AVIF single-threaded with sRGB
    colour signalling in its nclx box either way).

    ``subsample_chroma`` makes JPEG 4:2:0 (about a quarter smaller at equal luma SSIM);
    the default 4:4:4 keeps the invisible watermark, which 4:2:0 at q82 erases (7-11 of 32
    bits wrong on demo creatives). AVIF and WebP are always 4:2:0. ``draft`` encodes AVIF
    at the search speed (see ``RenderSettings.avif_speed_for``).
    """
    buf = io.BytesIO()
    profile = srgb_profile() if icc else None
    if fmt == "avif":
        frame.save(
            buf,
            "AVIF",
            quality=quality,
            speed=settings.avif_speed_for(frame.width * frame.height, draft=draft),
            max_threads=1,
            codec="aom",
            subsampling="4:2:0",
            range="full",
            autotiling=False,
            icc_profile=profile,
            advanced=AOM_OPTIONS,
        )
        return _signal_srgb(buf.getvalue())
    if fmt == "webp":
        frame.save(buf, "WEBP", quality=quality, method=settings.webp_method, icc_profile=profile)
    elif fmt == "jpeg":
        frame.save(
            buf,
            "JPEG",
            quality=quality,
            optimize=True,
            progressive=True,
            subsampling="4:2:0" if subsample_chroma else "4:4:4",
            icc_profile=profile,
        )
    elif fmt == "png":
        frame.save(buf, "PNG", compress_level=settings.png_compress_level, icc_profile=profile)
    else:
        raise ValueError(f"unsupported format {fmt!r}")
    return buf.getvalue()


@cache
def srgb_profile() -> bytes:
    """Compact (~600 byte) sRGB v4 ICC profile with a pinned creation date."""
    raw = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    if raw[84:100] != bytes(16):
        raise RuntimeError("LittleCMS wrote a profile ID; pinning the date would void it")
    return raw[:24] + _ICC_DATE + raw[36:]


def encoder_versions() -> dict[str, str]:
    """Library versions that determine output bytes, to go into cache keys."""
    versions = {
        "pillow": PIL.__version__,
        "libavif": features.version("avif"),
        "aom": AvifImagePlugin.get_codec_version("aom") if features.check("avif") else None,
        "libwebp": features.version("webp"),
        "libjpeg_turbo": features.version("libjpeg_turbo") or features.version("jpg"),
        "zlib": features.version("zlib"),
        "littlecms2": features.version("littlecms2"),
    }
    return {name: v or "unavailable" for name, v in versions.items()}


def payload_size(data: bytes, fmt: str) -> int:
    """Bytes of coded image data in a file, without its metadata: what encoders are
    compared by. AVIF: the ``av01`` items' data (not XMP or Exif items); WebP: the
    ``VP8``/``VP8L``/``ALPH`` chunk payloads; JPEG: the file without its APPn (JFIF, ICC,
    EXIF, XMP) and COM segments. Container structure (boxes, RIFF and segment headers)
    stays out of it as well."""
    if fmt == "avif":
        return sum(length for _, length in coded_extents(data))
    if fmt == "webp":
        return sum(size for kind, size in _riff_chunks(data) if kind in _WEBP_IMAGE)
    if fmt == "jpeg":
        return len(data) - sum(size for kind, size in _jpeg_segments(data) if _is_meta(kind))
    raise ValueError(f"payload_size supports avif, webp and jpeg, not {fmt!r}")


_WEBP_IMAGE = (b"VP8 ", b"VP8L", b"ALPH")


def _riff_chunks(data: bytes) -> Iterator[tuple[bytes, int]]:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP file")
    pos = 12
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        yield kind, size
        pos += 8 + size + (size & 1)


def _is_meta(marker: int) -> bool:
    return 0xE0 <= marker <= 0xEF or marker == 0xFE


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int]]:
    """(marker, whole segment size) of each segment before the first scan."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file")
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        (length,) = struct.unpack_from(">H", data, pos + 2)
        yield marker, 2 + length
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return
        pos += 2 + length


def _signal_srgb(avif: bytes) -> bytes:
    """Set the container's nclx colour box to BT.709 primaries and sRGB transfer.

    Without an ICC profile libavif writes exactly that; it writes "unspecified" there as
    soon as one is attached, while the
    AV1 sequence header already says sRGB (see :data:`AOM_OPTIONS`); decoders that ignore
    ICC would otherwise guess. The box has a fixed layout, so it is patched in place.
    """
    for body in _colr_payloads(avif):
        if avif[body : body + 4] == b"nclx":
            patched = bytearray(avif)
            struct.pack_into(">HH", patched, body + 4, _CICP_BT709, _CICP_SRGB)
            return bytes(patched)
    raise RuntimeError("AVIF encoder wrote no nclx colour box; unsupported libavif build")


def _colr_payloads(data: bytes) -> Iterator[int]:
    """Payload offset of every ``colr`` box in meta/iprp/ipco."""
    for meta, meta_end in find(data, 0, len(data), b"meta"):
        for iprp, iprp_end in find(data, meta + 4, meta_end, b"iprp"):  # meta: full box
            for ipco, ipco_end in find(data, iprp, iprp_end, b"ipco"):
                yield from (colr for colr, _ in find(data, ipco, ipco_end, b"colr"))
