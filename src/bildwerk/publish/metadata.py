"""Rights and provenance metadata for published renditions: XMP (plus IPTC IIM in JPEG).

:func:`write_metadata` edits the container only, never the coded image: JPEG segments,
WebP/PNG chunks and the HEIF item table of AVIF are rewritten around the untouched
compressed data, so pixels and the ICC profile stay byte-identical. Camera EXIF, GPS,
comments, old XMP/IPTC and any C2PA manifest are dropped on the way (the EXIF
orientation survives in JPEG and WebP, where viewers apply it). A C2PA manifest binds the
final bytes, so sign after this step, never before.

Digital source types follow IPTC's vocabulary; see :func:`digital_source_type`.

The parts: :mod:`.xmp` (the XMP packet and its vocabulary), :mod:`.iptc` (IIM for
JPEG), :mod:`.containers` (JPEG, WebP, PNG) and :mod:`.heif` (AVIF).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bildwerk.errors import UserError
from bildwerk.publish.containers import embed_jpeg, embed_png, embed_webp
from bildwerk.publish.heif import embed_avif
from bildwerk.publish.iptc import iim_record, photoshop_irb
from bildwerk.publish.xmp import (
    ALGORITHMIC_MEDIA,
    BILDWERK_NS,
    COMPOSITE_SYNTHETIC,
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    DO_NOT_TRAIN,
    DST_URI,
    IPTC_DST,
    MODEL_FREE_BACKENDS,
    PLUS_VOCAB,
    PROPERTY_NAME,
    TRAINED_ALGORITHMIC_MEDIA,
    build_xmp,
    camel_case,
    provenance_packet,
)


@dataclass(frozen=True)
class AssetMetadata:
    """What a published rendition says about itself. Empty strings are left out; the
    digital source type never is."""

    title: str
    description: str  # the alt text
    creator: str
    credit_line: str
    copyright_notice: str
    web_statement: str  # licence URL
    licensor_url: str
    digital_source_type: str  # full IPTC URI
    campaign_id: str
    asset_id: str
    licence_expiry: date | None = None
    generation: Mapping[str, Any] = field(default_factory=dict)  # prompt, seed, model_hash…
    do_not_train: bool = True
    licensor_name: str = ""  # defaults to the creator
    provenance: str = ""  # URL of a remote C2PA manifest (XMP dcterms:provenance)

    def __post_init__(self) -> None:
        if not DST_URI.match(self.digital_source_type):
            raise ValueError(
                f"digital_source_type must be a full IPTC URI ({IPTC_DST}…), "
                f"got {self.digital_source_type!r}"
            )
        for key in self.generation:
            if not PROPERTY_NAME.match(key) or camel_case(key) in ("campaignId", "assetId"):
                raise ValueError(f"generation key {key!r} is not usable as a bildwerk: property")


def digital_source_type(backend: str, has_product_photo: bool) -> str:
    """IPTC digital source type of a creative.

    Generative backends give ``trainedAlgorithmicMedia``, or with a real product photo
    composited in, ``compositeWithTrainedAlgorithmicMedia``. The model-free studio
    backend gives ``algorithmicMedia`` (made by an algorithm, no training data), or with a
    real photo ``compositeSynthetic`` (a composite with at least one synthetic element):
    ``compositeCapture`` would claim every element was captured, and the trained-media
    composite would claim generative AI. Copy, logo and brand overlays do not change the
    code. Unknown backends count as generative, so AI use is never under-declared.
    """
    if backend in MODEL_FREE_BACKENDS:
        return COMPOSITE_SYNTHETIC if has_product_photo else ALGORITHMIC_MEDIA
    return (
        COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA if has_product_photo else TRAINED_ALGORITHMIC_MEDIA
    )


def write_metadata(data: bytes, fmt: str, meta: AssetMetadata, *, lean: bool = False) -> bytes:
    """``data`` (an encoded ``fmt`` file) with its old metadata dropped and ``meta`` embedded.

    ``lean`` writes the XMP packet alone: no ``xpacket`` wrapper and, in JPEG, no IPTC
    IIM copy of it (every current reader takes IPTC from XMP; IIM is for older DAMs).
    The coded image and the ICC profile are copied byte for byte. Raises
    :class:`UserError` for files that cannot be parsed or metadata too large to embed.
    """
    xmp = build_xmp(meta, wrapper=not lean)
    try:
        if fmt == "jpeg":
            return embed_jpeg(data, xmp, None if lean else photoshop_irb(iim_record(meta)))
        if fmt == "webp":
            return embed_webp(data, xmp)
        if fmt == "avif":
            # an absolute sidecar URL also goes where C2PA readers look in ISO BMFF (they
            # fetch only absolute ones); a minimal packet, as it repeats one property
            absolute = meta.provenance.startswith(("https://", "http://"))
            link = provenance_packet(meta.provenance) if absolute else b""
            return embed_avif(data, xmp, link)
        if fmt == "png":
            return embed_png(data, xmp)
    except (ValueError, KeyError, IndexError, struct.error) as exc:
        raise UserError(
            f"cannot embed metadata in this {fmt} file (asset {meta.asset_id}): {exc}",
            hint="re-render the file; if the metadata is too large, shorten the prompt",
        ) from exc
    raise ValueError(f"unsupported format {fmt!r}")


__all__ = [
    "ALGORITHMIC_MEDIA",
    "BILDWERK_NS",
    "COMPOSITE_SYNTHETIC",
    "COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA",
    "DO_NOT_TRAIN",
    "IPTC_DST",
    "MODEL_FREE_BACKENDS",
    "PLUS_VOCAB",
    "TRAINED_ALGORITHMIC_MEDIA",
    "AssetMetadata",
    "build_xmp",
    "digital_source_type",
    "write_metadata",
]
