"""``bildwerk verify``: what a published file says about itself — its C2PA content
credentials, its invisible watermark and the key XMP fields.

A file whose XMP names a remote manifest (``dcterms:provenance``) is checked against
its ``.c2pa`` sidecar: the one beside it (a folder target), else the URL, fetched under
the workspace's network rules. Fail closed: a file that claims a remote manifest which
cannot be read is reported ``Invalid``, never as merely unsigned."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict
from html import unescape
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from bildwerk.errors import BildwerkError, InputImageError, UserError

_FORMATS = {"JPEG": "jpeg", "WEBP": "webp", "AVIF": "avif", "PNG": "png"}
_XMP_FIELDS = {
    "digital_source_type": r"Iptc4xmpExt:DigitalSourceType(?:>|=\")([^<\"]+)",
    "title": r"<dc:title>.*?<rdf:li[^>]*>([^<]*)</rdf:li>",
    "creator": r"<dc:creator>.*?<rdf:li[^>]*>([^<]*)</rdf:li>",
    "asset_id": r"bildwerk:assetId(?:>|=\")([^<\"]+)",
    "campaign_id": r"bildwerk:campaignId(?:>|=\")([^<\"]+)",
    "web_statement": r"xmpRights:WebStatement(?:>|=\")([^<\"]+)",
    "provenance": r"dcterms:provenance(?:>|=\")([^<\"]+)",
}
SIDECAR_SUFFIX = ".c2pa"
MAX_SIDECAR = 4 * 1024 * 1024  # a manifest store is kilobytes; refuse anything absurd


def _xmp(image: Image.Image) -> dict[str, str]:
    raw = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp") or b""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    out = {}
    for key, pattern in _XMP_FIELDS.items():
        found = re.search(pattern, text, flags=re.S)
        if found:
            out[key] = unescape(found.group(1).strip())
    return out


def remote_manifest(path: Path, url: str) -> tuple[bytes | None, str]:
    """The sidecar a file's ``dcterms:provenance`` names, and where it came from (or
    why it could not be read): beside the file first, then the URL over the network."""
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    for candidate in dict.fromkeys((path.name + SIDECAR_SUFFIX, name)):
        local = path.parent / candidate
        if candidate and local.is_file():
            try:
                if local.stat().st_size > MAX_SIDECAR:
                    return None, f"{local}: larger than {MAX_SIDECAR} bytes"
                return local.read_bytes(), str(local)
            except OSError as exc:
                return None, f"{local}: cannot read it ({exc.strerror})"
    if not url.startswith(("https://", "http://")):
        return None, f"no sidecar {path.name + SIDECAR_SUFFIX} next to the file"
    return _fetch(url)


def _fetch(url: str) -> tuple[bytes | None, str]:
    """GET the sidecar under netguard (inside addresses refused unless allowed)."""
    from bildwerk.httpretry import RetryingClient, RetryPolicy
    from bildwerk.netguard import Limits, check_url

    try:
        check_url(url, "the remote C2PA manifest")
        limits = Limits(connect=5.0, read=10.0, deadline=30.0, max_bytes=MAX_SIDECAR)
        with RetryingClient(
            "c2pa-manifest", policy=RetryPolicy(max_attempts=2), limits=limits
        ) as client:
            outcome = client.send("GET", url)
    except BildwerkError as exc:
        return None, f"{url}: {exc.message}"
    reply = outcome.response
    if reply is None:
        return None, f"{url}: no reply ({outcome.error})"
    if not reply.is_success:
        return None, f"{url}: HTTP {reply.status_code}"
    return reply.content, url


def _credentials(
    path: Path, data: bytes, fmt: str, remote: str | None, trust_anchors: Path | None
) -> dict[str, Any]:
    from bildwerk.publish.c2pa_read import RemoteManifestError, verify

    manifest, origin = remote_manifest(path, remote) if remote else (None, "")
    try:
        result = asdict(
            verify(data, fmt, trust_anchors=trust_anchors, source=str(path), manifest=manifest)
        )
    except RemoteManifestError as exc:
        reason = origin or exc.message
        return {"state": "Invalid", "remote": exc.url, "reason": f"remote manifest: {reason}"}
    except UserError as exc:
        if remote:  # it claims credentials: missing or unreadable is not "unsigned"
            why = origin if manifest is None else exc.message
            return {"state": "Invalid", "remote": remote, "reason": f"remote manifest: {why}"}
        return {"state": "absent", "reason": exc.message}
    if remote:
        result["remote"] = remote
        result["manifest_from"] = origin
    return result


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
    report["c2pa"] = _credentials(path, data, fmt, xmp.get("provenance"), trust_anchors)
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
