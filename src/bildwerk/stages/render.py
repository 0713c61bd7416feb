"""Render stage: turn one master into the responsive renditions a channel delivers.

Every width is resampled once from the master and shared by all formats. What happens to
a frame follows the channel's delivery profile (:mod:`bildwerk.config.delivery`):

* the invisible watermark goes only into the renditions the profile marks (enabled, one
  of its formats, at least ``min_width`` wide) and that can carry the payload; a width's
  marked frame is made once and shared by the formats that carry it;
* each rendition is encoded at the lowest quality whose decoded luma SSIM reaches the
  profile's ``ssim_target`` (:func:`bildwerk.stages.search.search_ssim`, 2-4 encodes), a
  smaller width starting from where the larger one settled; without a target, at the
  format's fixed default quality;
* the channel's byte budget, less room for what publishing adds under that profile, is a
  ceiling: only when the chosen encode breaks it is the quality lowered further
  (:func:`bildwerk.stages.search.fit_budget`).

Encoding itself (formats, colour signalling, determinism) is :mod:`bildwerk.stages.encode`;
the metric is :mod:`bildwerk.stages.quality`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace

from PIL import Image

from bildwerk import watermark as wm
from bildwerk.config.channels import Channel, Format
from bildwerk.config.delivery import DeliveryProfile
from bildwerk.imagefit import fit
from bildwerk.stages.encode import encode, encoder_versions, payload_size, srgb_profile
from bildwerk.stages.quality import SsimReference
from bildwerk.stages.search import Trial, fit_budget, predict, search_ssim

__all__ = [
    "DEFAULT_SETTINGS",
    "PAYLOAD_BITS",
    "RenderSettings",
    "Rendition",
    "encode",
    "encoder_versions",
    "payload_size",
    "render",
    "srgb_profile",
]

PAYLOAD_BITS = 32  # asset id prefix: enough to look an asset up, within small renditions

# Bump when the search, the encoder options or the stamping of frames change output bytes.
# 2: invisible watermark in every frame large enough; visible mark on preview channels;
#    JPEG in 4:4:4 at every quality.
# 3: delivery profiles: SSIM-targeted qualities, watermark per profile and format, JPEG 4:2:0 on
#    unmarked frames, AVIF tune=ssim without autotiling, stamp reserve per profile.
# 4: small AVIF frames delivered at speed 5 after a speed-6 search; the ICC profile follows
#    the delivery profile.
_ALGORITHM_VERSION = 4

# Bytes grow a little slower than pixel count (smaller images carry more detail per pixel).
_AREA_EXPONENT = 0.8


@dataclass(frozen=True)
class RenderSettings:
    """Encoder settings; everything here changes output bytes, hence :meth:`fingerprint`.

    The fixed qualities apply where a delivery profile sets no SSIM target; byte budgets
    can only lower a quality, never below ``min_quality``.
    """

    avif_quality: int = 60
    webp_quality: int = 80
    jpeg_quality: int = 82
    min_quality: int = 30
    # The SSIM search stays between a per-format floor and target_max_quality: above ~95
    # bytes grow steeply for little SSIM (and the byte budget would cut it back). The
    # floors guard what luma SSIM does not see: studio backdrops reach 0.97 at q20, where
    # AVIF and JPEG shift flat colours (chroma) and AVIF smears small logos; at these
    # floors the demo's heroes show neither (side by side at 100 %, 2026-12-07).
    avif_floor: int = 35
    webp_floor: int = 30
    jpeg_floor: int = 40
    target_max_quality: int = 95
    # Encodes per rendition for the SSIM search: the first at the larger width's result
    # (or the default quality), then secants (search.py); most renditions need 2-4.
    # Frames under small_frame_pixels (~800x600) encode in milliseconds and get two more,
    # which they need most: a small width's quality is furthest from the larger one's.
    ssim_max_encodes: int = 5
    small_frame_pixels: int = 500_000
    # libaom speed: 6 compresses ~25 % better than 8 at equal SSIM for ~3x the time; 5
    # another 4-13 % on small frames for ~3x again. Frames under avif_small_pixels
    # (phone-sized rungs, up to ~600x340) search at 6 and encode the chosen quality once
    # more at 5 (+0.07-0.15 s): their metadata is a fixed cost, so payload bytes count
    # double there, and speed 5 reaches a higher SSIM than 6 at every quality measured,
    # so the target still holds. Larger frames gain ~5 % at 768-860 px and ~20 % at 1920
    # px for +0.2-1 s each, which the test suite's and demo's render time cannot afford.
    # Searching on faster drafts (speed 8) and encoding only the result at 6 does not
    # pay: speed 8's SSIM trails by up to 0.005 and its pick costs up to 20 % more bytes.
    avif_speed: int = 6
    avif_speed_small: int = 5
    avif_small_pixels: int = 250_000
    # libwebp method: 4 is ~4 % larger than 6 at ~70 % of the time.
    webp_method: int = 4
    png_compress_level: int = 6
    # Guided encodes per rendition when a budget binds, the first one included; if none
    # fits, one more at min_quality.
    max_encodes: int = 3
    # Predictions aim this far below the budget so the first guess usually fits.
    budget_margin: float = 0.97
    # Bytes kept free in every budget for what publishing adds, by the profile's
    # credentials (benchmarks/bench_stamp.py): embedded C2PA carrying the master's
    # manifest as ingredient plus the full XMP with the generation record is ~14.4 kB
    # (internal previews, and renders without a profile); embedded C2PA with only the
    # master's hash ~4.7 kB plus ~3.4 kB XMP/IIM (ads); remote credentials or none leave
    # the lean rights XMP and the dcterms:provenance link, <= 3 kB (public web).
    stamp_reserve: int = 15_000
    stamp_reserve_hash: int = 9_000
    stamp_reserve_lean: int = 3_000

    def __post_init__(self) -> None:
        for name in ("avif_quality", "webp_quality", "jpeg_quality", "target_max_quality"):
            if not self.min_quality <= getattr(self, name) <= 100:
                raise ValueError(f"{name} must lie in min_quality..100")
        for name in ("avif_floor", "webp_floor", "jpeg_floor"):
            if not 1 <= getattr(self, name) <= self.target_max_quality:
                raise ValueError(f"{name} must lie in 1..target_max_quality")
        if not 1 <= self.min_quality <= 100:
            raise ValueError("min_quality must lie in 1..100")
        speeds = (self.avif_speed, self.avif_speed_small)
        if not all(0 <= speed <= 10 for speed in speeds) or not 0 <= self.webp_method <= 6:
            raise ValueError("AVIF speeds must lie in 0..10 and webp_method in 0..6")
        if min(self.stamp_reserve, self.stamp_reserve_hash, self.stamp_reserve_lean) < 0:
            raise ValueError(
                "stamp_reserve, stamp_reserve_hash and stamp_reserve_lean must be >= 0"
            )
        if self.max_encodes < 1 or not 0.5 <= self.budget_margin <= 1.0:
            raise ValueError("max_encodes must be >= 1 and budget_margin in 0.5..1")
        if self.ssim_max_encodes < 1:
            raise ValueError("ssim_max_encodes must be >= 1")

    def quality(self, fmt: str) -> int:
        """Default (maximum) quality for ``fmt``; PNG is lossless and reports 100."""
        if fmt == "png":
            return 100
        if fmt not in ("avif", "webp", "jpeg"):
            raise ValueError(f"unsupported format {fmt!r}")
        return int(getattr(self, f"{fmt}_quality"))

    def reserve(self, profile: DeliveryProfile | None) -> int:
        """Bytes of each budget kept for publishing under ``profile`` (None: the most a
        stamp adds, embedded credentials with the master's manifest)."""
        if profile is None or (profile.c2pa == "embedded" and profile.ingredient == "manifest"):
            return self.stamp_reserve
        if profile.c2pa == "embedded":
            return self.stamp_reserve_hash
        return self.stamp_reserve_lean

    def avif_speed_for(self, pixels: int, *, draft: bool = False) -> int:
        """libaom speed of an AVIF encode of a ``pixels`` frame (``draft``: a search's)."""
        if draft or pixels >= self.avif_small_pixels:
            return self.avif_speed
        return self.avif_speed_small

    def floor(self, fmt: str) -> int:
        """Lowest quality the SSIM search may choose for ``fmt`` (PNG: lossless)."""
        return 100 if fmt == "png" else int(getattr(self, f"{fmt}_floor"))

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
    watermark: str | None = None  # hex payload embedded invisibly; None if unmarked
    ssim: float | None = None  # luma SSIM against the frame, where a target was set


@dataclass(frozen=True)
class _Trial:
    """Where one width ended: the starting point for the next, smaller one."""

    quality: int  # final quality
    size: int
    pixels: int
    target_quality: int | None = None  # what the SSIM search chose, before any budget


def render(
    master: Image.Image,
    channel: Channel,
    *,
    focal: tuple[float, float] = (0.5, 0.5),
    settings: RenderSettings = DEFAULT_SETTINGS,
    watermark: str | None = None,
    profile: DeliveryProfile | None = None,
) -> list[Rendition]:
    """Encode ``master`` at every responsive width and format of ``channel``.

    Widths that would enlarge the master are skipped; an over-budget rendition at
    ``min_quality`` is returned with ``within_budget=False`` instead of raising. The list
    is ordered by ``channel.formats``, then by width ascending.

    ``watermark`` (an asset id) is embedded invisibly, before encoding, into every
    rendition the profile marks and that can carry its 32-bit payload, so the quality searches see
    the final pixels and the mark goes through one lossy encode only. ``profile=None``
    keeps the behaviour from before profiles: fixed qualities, a mark wherever it fits,
    the largest stamp reserve. Preview channels get a visible mark.
    """
    base = master if master.mode == "RGB" else master.convert("RGB")
    bits = wm.payload_for(watermark, PAYLOAD_BITS) if watermark else None
    target = profile.ssim_target if profile is not None else None
    icc = profile is None or profile.icc
    reserve = settings.reserve(profile)
    hints: dict[tuple[Format, bool], _Trial] = {}
    out: list[Rendition] = []
    for width, height in _sizes(channel, base.size):
        frame = fit(base, width, height, mode=channel.fit, focal=focal)
        frame.info.clear()  # no EXIF, XMP or comments from the master
        if channel.preview:
            frame = wm.preview_mark(frame)
        marked: Image.Image | None = None  # made once, for the formats the profile marks
        references: dict[bool, SsimReference] = {}
        for fmt in channel.formats:
            mark, source = False, frame
            if bits is not None and _marks(profile, fmt, width, height, len(bits)):
                if marked is None:
                    marked = _embed(frame, bits, profile)
                mark, source = True, marked
            reference = None
            if target is not None:
                reference = references.setdefault(mark, SsimReference(source))
            budget = channel.byte_budget.get(fmt)
            pixels_budget = max(1, budget - reserve) if budget else None
            rendition, hint = _render_one(
                source,
                fmt,
                pixels_budget,
                settings,
                hints.get((fmt, mark)),
                target=target,
                reference=reference,
                subsample_chroma=not mark,
                icc=icc,
            )
            payload = wm.bits_hex(bits) if mark and bits is not None else None
            out.append(replace(rendition, budget=budget, watermark=payload))
            if hint is not None:
                hints[(fmt, mark)] = hint
    order: dict[str, int] = {fmt: i for i, fmt in enumerate(channel.formats)}
    return sorted(out, key=lambda r: (order[r.format], r.width))


def _marks(profile: DeliveryProfile | None, fmt: str, width: int, height: int, bits: int) -> bool:
    """Whether this rendition carries the mark: the profile puts it there (no profile:
    every format) and the frame can hold the payload."""
    wanted = profile is None or profile.watermark.applies(fmt, width)
    return wanted and wm.capacity(width, height) >= bits


def _embed(frame: Image.Image, bits: list[int], profile: DeliveryProfile | None) -> Image.Image:
    """The frame with the mark at the profile's strength (unset: the module's default)."""
    return wm.embed(frame, bits, strength=profile.watermark.strength if profile else None)


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
    *,
    target: float | None = None,
    reference: SsimReference | None = None,
    subsample_chroma: bool = False,
    icc: bool = True,
) -> tuple[Rendition, _Trial | None]:
    """Encode one rendition: to the SSIM ``target`` if given (else the default quality),
    then lowered to fit ``budget`` if it must. Returns it and, where a search ran, where
    it ended, as a hint for the next smaller width."""
    width, height = frame.size
    pixels = width * height

    def run(quality: int, draft: bool = False) -> bytes:
        return encode(
            frame, fmt, quality, settings, subsample_chroma=subsample_chroma, icc=icc, draft=draft
        )

    if fmt == "png":
        data = run(100)
        fits = budget is None or len(data) <= budget
        return Rendition(fmt, width, height, data, 100, budget, fits), None
    ssim: float | None = None
    ref = reference if reference is not None or target is None else SsimReference(frame)
    if target is not None and ref is not None:
        # small AVIF frames search at the usual speed, then encode the chosen quality once
        # more as delivered; everything else's search results are final
        drafts = fmt == "avif" and settings.avif_speed_for(pixels, draft=True) != (
            settings.avif_speed_for(pixels)
        )

        def measure(quality: int) -> Trial:
            data = run(quality, draft=drafts)
            return Trial(quality, data, ref.ssim_of(data))

        start = hint.target_quality if hint and hint.target_quality else settings.quality(fmt)
        chosen, trials = search_ssim(
            measure,
            target,
            start,
            lowest=settings.floor(fmt),
            highest=settings.target_max_quality,
            max_encodes=settings.ssim_max_encodes
            + (2 if pixels < settings.small_frame_pixels else 0),
            budget=budget,
        )
        quality, data, ssim, searched = chosen.quality, chosen.data, chosen.ssim, True
        below = {q: t.data for q, t in trials.items() if q <= quality}
        if drafts:
            data = run(quality)
            ssim, below = ref.ssim_of(data), {quality: data}
    else:
        default = settings.quality(fmt)
        quality = _start_quality(fmt, default, budget, pixels, settings, hint)
        data = run(quality)
        searched = quality < default
        below = {quality: data}
    target_quality = quality if target is not None else None
    if budget is not None and len(data) > budget:
        quality, data = fit_budget(
            run,
            fmt,
            budget,
            min_quality=settings.min_quality,
            max_encodes=settings.max_encodes,
            margin=settings.budget_margin,
            tried=below,
        )
        searched = True
        if ref is not None:
            ssim = ref.ssim_of(data)
    fits = budget is None or len(data) <= budget
    trial = _Trial(quality, len(data), pixels, target_quality) if searched else None
    return Rendition(fmt, width, height, data, quality, budget, fits, ssim=ssim), trial


def _start_quality(
    fmt: Format,
    default: int,
    budget: int | None,
    pixels: int,
    settings: RenderSettings,
    hint: _Trial | None,
) -> int:
    """Default quality, or, after a larger width had to lower it for its budget, the
    quality its result predicts for this pixel count (never below what the larger width
    settled on)."""
    if hint is None or budget is None:
        return default
    expected = round(hint.size * (pixels / hint.pixels) ** _AREA_EXPONENT)
    predicted = predict(fmt, [(hint.quality, expected)], budget * settings.budget_margin)
    return max(hint.quality, min(default, math.floor(predicted)))
