"""``bildwerk verify``: what a published file says about itself — its C2PA content
credentials, its invisible watermark and the key XMP fields."""

from __future__ import annotations

import io
import re
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


def verify_file(
    path: Path, *, trust_anchors: Path | None = None, watermark_bits: int = 32
) -> dict[str, Any]:
    """Read everything bildwerk stamps into a rendition; a corrupt or unknown file is a
    user error naming it."""
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
    from bildwerk.publish.watermark import bits_hex, capacity, decode

    if capacity(image.width, image.height) >= watermark_bits:
        bits = decode(image, watermark_bits)
        report["watermark"] = {
            "bits": "".join(map(str, bits)),
            "hex": bits_hex(bits),
        }
    else:
        report["watermark"] = None
    return report
