"""Render stage: turn one master into the responsive renditions a channel delivers.

Every width is resampled once from the master and shared by all formats. Each rendition
is encoded at the format's default quality and, only when that breaks the channel's byte
budget, re-encoded at a quality predicted from the measured sizes by a per-format model of
bytes against quality (at most ``max_encodes`` guided tries, then ``min_quality``). Most
renditions therefore cost exactly one encode, and a smaller width starts from what the
larger one settled on.

Outputs are deterministic: single-threaded AV1 encoding, a fixed codec, and an sRGB ICC
profile whose creation date is pinned, so the same master and settings give the same
bytes in any process on the same encoder versions (see :func:`encoder_versions`).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from functools import cache

import PIL
from PIL import AvifImagePlugin, Image, ImageCms, features

from bildwerk import watermark as wm
from bildwerk.config.channels import Channel, Format
from bildwerk.imagefit import fit

PAYLOAD_BITS = 32  # asset id prefix: enough to look an asset up, within small renditions

# Bump when the search, the encoder options or the stamping of frames change output bytes.
# 2: invisible watermark in every frame large enough; visible mark on preview channels;
#    JPEG in 4:4:4 at every quality.
_ALGORITHM_VERSION = 2

# Model of output size against quality: ln(bytes) at qualities 5, 10, ..., 100, relative
# to the default, averaged over six varied synthetic creatives (smooth to heavy grain,
# 320 to 1920 px) with these encoder settings. Per image, ln(bytes) ~ a + b * curve(q):
# one measured size fixes a, two fix b as well. The curves carry what a constant slope
# misses: libwebp's step above 75, JPEG's switch to 4:4:4 at 90, flattening at low q.
_CURVE_STEP = 5
# fmt: off
_CURVES: dict[str, tuple[float, ...]] = {
    "avif": (-2.06, -1.85, -1.73, -1.53, -1.41, -1.20, -1.01, -0.81, -0.58, -0.36,
             -0.18, 0.00, 0.11, 0.34, 0.52, 0.75, 0.93, 1.28, 1.67, 2.26),
    "webp": (-1.58, -1.41, -1.24, -1.11, -0.99, -0.89, -0.79, -0.70, -0.62, -0.55,
             -0.48, -0.41, -0.34, -0.28, -0.21, 0.00, 0.28, 0.70, 1.26, 1.57),
    "jpeg": (-2.07, -1.74, -1.48, -1.27, -1.11, -0.98, -0.87, -0.78, -0.69, -0.62,
             -0.55, -0.47, -0.37, -0.27, -0.16, 0.00, 0.19, 0.79, 1.30, 2.39),
}
# fmt: on
# The last guided guess aims this much lower again: missing it means min_quality.
_LAST_GUESS_MARGIN = 0.95
# Bytes grow a little slower than pixel count (smaller images carry more detail per pixel).
_AREA_EXPONENT = 0.8
# ICC header date of the sRGB profile; LittleCMS stamps "now", which would break caching.
_ICC_DATE = struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
# CICP code points for sRGB: BT.709 primaries, IEC 61966-2-1 transfer.
_CICP_BT709, _CICP_SRGB = 1, 13
# aom options that make the AV1 sequence header carry the same code points.
_AOM_SRGB = {"color-primaries": "bt709", "transfer-characteristics": "srgb"}

Encoder = Callable[[int], bytes]


@dataclass(frozen=True)
class RenderSettings:
    """Encoder settings; everything here changes output bytes, hence :meth:`fingerprint`.

    Qualities are the targets for good visual quality; byte budgets can only lower them,
    never below ``min_quality``.
    """

    avif_quality: int = 60
    webp_quality: int = 80
    jpeg_quality: int = 82
    min_quality: int = 30
    # libaom speed: 6 compresses ~3 % better than 8 at equal quality for ~3.5x the time;
    # the hero image drives LCP, so bytes win.
    avif_speed: int = 6
    # libwebp method: 4 is ~4 % larger than 6 at ~70 % of the time.
    webp_method: int = 4
    # JPEG keeps 4:4:4 chroma from this quality up, 4:2:0 below. 4:2:0 at q82 erases the
    # invisible watermark (7-11 of 32 bits wrong on demo creatives; 0 with 4:4:4 down to
    # q60), and coloured brand type stays crisper, so every quality we use keeps 4:4:4.
    jpeg_full_chroma_from: int = 30
    png_compress_level: int = 6
    # Guided encodes per rendition when a budget binds, the first one included; if none
    # fits, one more at min_quality.
    max_encodes: int = 3
    # Predictions aim this far below the budget so the first guess usually fits.
    budget_margin: float = 0.97
    # Bytes publishing adds to every file (XMP/IPTC ~3.4 kB, signed C2PA manifest with the
    # master's ~11 kB; benchmarks/bench_stamp.py), kept free so published files fit too.
    stamp_reserve: int = 15_000

    def __post_init__(self) -> None:
        for name in ("avif_quality", "webp_quality", "jpeg_quality"):
            if not self.min_quality <= getattr(self, name) <= 100:
                raise ValueError(f"{name} must lie in min_quality..100")
        if not 1 <= self.min_quality <= 100:
            raise ValueError("min_quality must lie in 1..100")
        if not 0 <= self.avif_speed <= 10 or not 0 <= self.webp_method <= 6:
            raise ValueError("avif_speed must lie in 0..10 and webp_method in 0..6")
        if self.stamp_reserve < 0:
            raise ValueError("stamp_reserve must be >= 0")
        if self.max_encodes < 1 or not 0.5 <= self.budget_margin <= 1.0:
            raise ValueError("max_encodes must be >= 1 and budget_margin in 0.5..1")

    def quality(self, fmt: str) -> int:
        """Default (maximum) quality for ``fmt``; PNG is lossless and reports 100."""
        if fmt == "png":
            return 100
        if fmt not in ("avif", "webp", "jpeg"):
            raise ValueError(f"unsupported format {fmt!r}")
        return int(getattr(self, f"{fmt}_quality"))

    def fingerprint(self) -> str:
        """Stable identifier of these settings and the render algorithm, for cache keys."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return f"render-v{_ALGORITHM_VERSION}-{hashlib.sha256(blob).hexdigest()[:16]}"


DEFAULT_SETTINGS = RenderSettings()


@dataclass(frozen=True)
class Rendition:
    """One encoded file of a channel."""

    format: str  # "avif" | "webp" | "jpeg" | "png"
    width: int
    height: int
    data: bytes
    quality: int  # encoder quality used (PNG: 100)
    budget: int | None  # byte budget that applied, if any
    within_budget: bool
    watermark: str | None = None  # hex payload embedded invisibly; None if too small


@dataclass(frozen=True)
class _Trial:
    """Where a budget search ended at one width: the starting point for the next one."""

    quality: int
    size: int
    pixels: int


def render(
    master: Image.Image,
    channel: Channel,
    *,
    focal: tuple[float, float] = (0.5, 0.5),
    settings: RenderSettings = DEFAULT_SETTINGS,
    watermark: str | None = None,
) -> list[Rendition]:
    """Encode ``master`` at every responsive width and format of ``channel``.

    Widths that would enlarge the master are skipped; an over-budget rendition at
    ``min_quality`` is returned with ``within_budget=False`` instead of raising. The list
    is ordered by ``channel.formats``, then by width ascending.

    ``watermark`` (an asset id) is embedded invisibly into every frame that can carry its
    32-bit payload, before encoding, so the byte budget search sees the final pixels and
    the mark goes through one lossy encode only. Preview channels get a visible mark.
    """
    base = master if master.mode == "RGB" else master.convert("RGB")
    bits = wm.payload_for(watermark, PAYLOAD_BITS) if watermark else None
    hints: dict[Format, _Trial] = {}
    out: list[Rendition] = []
    for width, height in _sizes(channel, base.size):
        frame = fit(base, width, height, mode=channel.fit, focal=focal)
        frame.info.clear()  # no EXIF, XMP or comments from the master
        if channel.preview:
            frame = wm.preview_mark(frame)
        mark = None
        if bits is not None and wm.capacity(width, height) >= len(bits):
            frame = wm.embed(frame, bits)
            mark = wm.bits_hex(bits)
        for fmt in channel.formats:
            budget = channel.byte_budget.get(fmt)
            pixels_budget = max(1, budget - settings.stamp_reserve) if budget else None
            rendition, hint = _render_one(frame, fmt, pixels_budget, settings, hints.get(fmt))
            out.append(replace(rendition, budget=budget, watermark=mark))
            if hint is not None:
                hints[fmt] = hint
    order: dict[str, int] = {fmt: i for i, fmt in enumerate(channel.formats)}
    return sorted(out, key=lambda r: (order[r.format], r.width))


def encode(frame: Image.Image, fmt: str, quality: int, settings: RenderSettings) -> bytes:
    """Encode ``frame`` once at ``quality``, exactly as :func:`render` does (sRGB ICC
    profile, no other metadata; AVIF single-threaded with sRGB colour signalling)."""
    buf = io.BytesIO()
    icc = srgb_profile()
    if fmt == "avif":
        frame.save(
            buf,
            "AVIF",
            quality=quality,
            speed=settings.avif_speed,
            max_threads=1,
            codec="aom",
            subsampling="4:2:0",
            range="full",
            icc_profile=icc,
            advanced=_AOM_SRGB,
        )
        return _signal_srgb(buf.getvalue())
    if fmt == "webp":
        frame.save(buf, "WEBP", quality=quality, method=settings.webp_method, icc_profile=icc)
    elif fmt == "jpeg":
        chroma = "4:4:4" if quality >= settings.jpeg_full_chroma_from else "4:2:0"
        frame.save(
            buf,
            "JPEG",
            quality=quality,
            optimize=True,
            progressive=True,
            subsampling=chroma,
            icc_profile=icc,
        )
    elif fmt == "png":
        frame.save(buf, "PNG", compress_level=settings.png_compress_level, icc_profile=icc)
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


def _sizes(channel: Channel, master_size: tuple[int, int]) -> list[tuple[int, int]]:
    """Rendition sizes, largest first, leaving out any that would upscale the master."""
    sizes = [(w, round(w / channel.aspect)) for w in channel.rendition_widths()]
    kept = [(w, h) for w, h in sizes if w <= master_size[0] and h <= master_size[1]]
    if not kept:
        raise ValueError(
            f"master {master_size} is smaller than every rendition of {channel.name!r}"
        )
    return kept[::-1]


def _render_one(
    frame: Image.Image,
    fmt: Format,
    budget: int | None,
    settings: RenderSettings,
    hint: _Trial | None,
) -> tuple[Rendition, _Trial | None]:
    """Encode one rendition; returns it and, if a budget search lowered the quality,
    the result as a hint for the next smaller width."""
    default = settings.quality(fmt)

    def run(quality: int) -> bytes:
        return encode(frame, fmt, quality, settings)

    width, height = frame.size
    if budget is None or fmt == "png":
        data = run(default)
        return Rendition(
            fmt, width, height, data, default, budget, budget is None or len(data) <= budget
        ), None
    start = _start_quality(fmt, default, budget, width * height, settings, hint)
    quality, data = _fit_budget(run, start, budget, fmt, settings)
    searched = quality < default
    trial = _Trial(quality, len(data), width * height) if searched else None
    return Rendition(fmt, width, height, data, quality, budget, len(data) <= budget), trial


def _start_quality(
    fmt: Format,
    default: int,
    budget: int,
    pixels: int,
    settings: RenderSettings,
    hint: _Trial | None,
) -> int:
    """Default quality, or, after a larger width had to search, the quality its result
    predicts for this pixel count (never below what the larger width settled on)."""
    if hint is None:
        return default
    expected = round(hint.size * (pixels / hint.pixels) ** _AREA_EXPONENT)
    predicted = _predict(fmt, [(hint.quality, expected)], budget * settings.budget_margin)
    return max(hint.quality, min(default, math.floor(predicted)))


def _fit_budget(
    run: Encoder, start: int, budget: int, fmt: Format, settings: RenderSettings
) -> tuple[int, bytes]:
    """Highest quality <= ``start`` found to fit; ``min_quality`` (maybe still over
    budget) when none of the guided encodes did."""
    trials: dict[int, bytes] = {}
    quality: int | None = start
    while quality is not None:
        trials[quality] = run(quality)
        quality = _next_quality({q: len(d) for q, d in trials.items()}, budget, fmt, settings)
    fitting = [q for q, data in trials.items() if len(data) <= budget]
    best = max(fitting) if fitting else min(trials)
    return best, trials[best]


def _next_quality(
    sizes: dict[int, int], budget: int, fmt: Format, settings: RenderSettings
) -> int | None:
    """Next quality to encode, or None when done.

    Done when the first encode fits (the search never goes above it), when no integer
    quality is left between the best fit and the lowest failure, or when the model says
    no higher quality would fit. Up to ``max_encodes`` guided encodes; if none fits, one
    more at ``min_quality``.
    """
    over = min((q for q, n in sizes.items() if n > budget), default=None)
    if over is None:
        return None
    fit_q = max((q for q, n in sizes.items() if n <= budget), default=None)
    if fit_q is None and over <= settings.min_quality:
        return None
    if fit_q is None and len(sizes) >= settings.max_encodes:
        return settings.min_quality
    if fit_q is not None and (over - fit_q <= 1 or len(sizes) >= settings.max_encodes):
        return None
    target = budget * settings.budget_margin
    if fit_q is None and len(sizes) == settings.max_encodes - 1:
        target *= _LAST_GUESS_MARGIN  # better a little low than falling to the floor
    guess = math.floor(_predict(fmt, _anchors(sizes, over, fit_q), target))
    if fit_q is not None:
        return guess if fit_q < guess < over else None
    return max(settings.min_quality, min(over - 1, guess))


def _anchors(sizes: dict[int, int], over: int, fit_q: int | None) -> list[tuple[int, int]]:
    """Measurements nearest the budget: the lowest failure with the best fit, else with
    the next failure above it, else alone."""
    above = sorted(q for q in sizes if q > over)
    partner = fit_q if fit_q is not None else (above[0] if above else None)
    points = [(over, sizes[over])]
    return points if partner is None else [*points, (partner, sizes[partner])]


def _predict(fmt: str, points: list[tuple[int, int]], target: float) -> float:
    """Quality at which the size model through ``points`` reaches ``target`` bytes."""
    (q0, n0), b = points[0], 1.0
    if len(points) == 2:
        (q1, n1) = points[1]
        span = _curve(fmt, q1) - _curve(fmt, q0)
        if abs(span) > 1e-3:
            b = max(0.25, min(4.0, math.log(n1 / n0) / span))
    return _inverse_curve(fmt, _curve(fmt, q0) + math.log(target / n0) / b)


def _curve(fmt: str, quality: float) -> float:
    """Piecewise-linear model curve, extended linearly beyond its ends."""
    values = _CURVES[fmt]
    i = max(0, min(len(values) - 2, int(quality // _CURVE_STEP) - 1))
    q0 = (i + 1) * _CURVE_STEP
    return values[i] + (quality - q0) * (values[i + 1] - values[i]) / _CURVE_STEP


def _inverse_curve(fmt: str, value: float) -> float:
    """Quality at which the (strictly increasing) model curve equals ``value``."""
    values = _CURVES[fmt]
    i = 0
    while i < len(values) - 2 and values[i + 1] < value:
        i += 1
    q0 = (i + 1) * _CURVE_STEP
    return q0 + (value - values[i]) * _CURVE_STEP / (values[i + 1] - values[i])


def _signal_srgb(avif: bytes) -> bytes:
    """Set the container's nclx colour box to BT.709 primaries and sRGB transfer.

    libavif writes "unspecified" there as soon as an ICC profile is attached, while the
    AV1 sequence header already says sRGB (see ``_AOM_SRGB``); decoders that ignore ICC
    would otherwise guess. The box has a fixed layout, so it is patched in place.
    """
    for body in _colr_payloads(avif):
        if avif[body : body + 4] == b"nclx":
            patched = bytearray(avif)
            struct.pack_into(">HH", patched, body + 4, _CICP_BT709, _CICP_SRGB)
            return bytes(patched)
    raise RuntimeError("AVIF encoder wrote no nclx colour box; unsupported libavif build")


def _colr_payloads(data: bytes) -> Iterator[int]:
    """Payload offset of every ``colr`` box in meta/iprp/ipco."""
    for meta, meta_end in _boxes(data, 0, len(data), b"meta"):
        for iprp, iprp_end in _boxes(data, meta + 4, meta_end, b"iprp"):  # meta: full box
            for ipco, ipco_end in _boxes(data, iprp, iprp_end, b"ipco"):
                for colr, _ in _boxes(data, ipco, ipco_end, b"colr"):
                    yield colr


def _boxes(data: bytes, pos: int, end: int, kind: bytes) -> Iterator[tuple[int, int]]:
    """ISO-BMFF boxes of type ``kind`` between ``pos`` and ``end``: (payload, box end)."""
    while pos + 8 <= end:
        size, box = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            return
        if box == kind:
            yield pos + header, pos + size
        pos += size
