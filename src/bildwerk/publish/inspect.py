"""``bildwerk verify``: what a published file says about itself — its C2PA content
credentials, its invisible watermark and the key XMP fields."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from bildwerk.errors import InputImageError, UserError

_FORMATS = {"JPEG": "jpeg", "WEBP": "webp", "AVIF": "avif", "PNG": "png"}
_XMP_FIELDS = {
    "digital_source_type": r"Iptc4xmpExt:DigitalSourceType(?:>|=\")([^<\"]+)",
    "title": r"<dc:title>.*?<rdf:li[^>]*>([^<]*)</rdf:li>",
    "creator": r"<dc:creator>.*?<rdf:li[^>]*>([^<]*)</rdf:li>",
    "asset_id": r"bildwerk:assetId(?:>|=\")([^<\"]+)",
    "campaign_id": r"bildwerk:campaignId(?:>|=\")([^<\"]+)",
    "web_statement": r"xmpRights:WebStatement(?:>|=\")([^<\"]+)",
}


def _xmp(image: Image.Image) -> dict[str, str]:
    raw = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp") or b""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    out = {}
    for key, pattern in _XMP_FIELDS.items():
        found = re.search(pattern, text, flags=re.S)
        if found:
            out[key] = found.group(1).strip()
    return out


# match() of a marked rendition is 0.1 to 1 (WebP q80 lowest); unmarked images stay
# within +-0.01, so this separates them with room on both sides.
MATCH_THRESHOLD = 0.08


def verify_file(
    path: Path,
    *,
    trust_anchors: Path | None = None,
    watermark_bits: int = 32,
    lookup: Callable[[str], Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Read everything bildwerk stamps into a rendition; a corrupt or unknown file is a
    user error naming it.

    Decoded bits alone cannot tell a watermark from noise; ``lookup`` (payload hex ->
    asset ids starting with it, e.g. from the catalog) lets the report name the asset the
    mark belongs to, with :func:`match`'s strength as evidence."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputImageError(path, f"cannot read the file ({exc.strerror})") from None
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            fmt = _FORMATS.get(im.format or "")
            image = im.convert("RGB")
            xmp = _xmp(im)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputImageError(
            path, f"not a readable image ({exc})", hint="give a JPEG, WebP, AVIF or PNG rendition"
        ) from None
    if fmt is None:
        raise InputImageError(path, "unsupported format", hint="give a JPEG, WebP, AVIF or PNG")
    report: dict[str, Any] = {
        "file": str(path),
        "format": fmt,
        "width": image.width,
        "height": image.height,
        "xmp": xmp,
    }
    try:
        from bildwerk.publish.c2pa_sign import verify

        report["c2pa"] = asdict(verify(data, fmt, trust_anchors=trust_anchors, source=str(path)))
    except UserError as exc:
        report["c2pa"] = {"state": "absent", "reason": exc.message}
    from bildwerk.watermark import bits_hex, capacity, decode, match, payload_for

    if capacity(image.width, image.height) >= watermark_bits:
        bits = decode(image, watermark_bits)
        mark: dict[str, Any] = {"bits": "".join(map(str, bits)), "hex": bits_hex(bits)}
        if lookup is not None:
            scored = sorted(
                ((match(image, payload_for(a, watermark_bits)), a) for a in lookup(mark["hex"])),
                reverse=True,
            )
            best = scored[0] if scored and scored[0][0] >= MATCH_THRESHOLD else None
            mark["asset_id"] = best[1] if best else None
            mark["match"] = round(best[0], 3) if best else None
        report["watermark"] = mark
    else:
        report["watermark"] = None
    return report
