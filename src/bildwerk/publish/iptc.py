"""IPTC IIM records in a Photoshop image resource block (JPEG APP13), for readers that
predate XMP."""

from __future__ import annotations

import hashlib
import struct
from typing import TYPE_CHECKING

from bildwerk.publish.xmp import NOT_XML

if TYPE_CHECKING:
    from bildwerk.publish.metadata import AssetMetadata


def iim_record(meta: AssetMetadata) -> bytes:
    """IPTC IIM records (UTF-8, declared by 1:90) for the legacy fields readers still
    show: title, by-line, credit and copyright, cut to the IIM byte limits. The caption
    (the alt text, up to 2000 bytes) stays in XMP only: every JPEG would carry it twice."""
    records = [(1, 90, b"\x1b%G"), (2, 0, b"\x00\x04")]
    for dataset, value, limit in (
        (5, meta.title, 64),
        (80, meta.creator, 32),
        (110, meta.credit_line, 32),
        (116, meta.copyright_notice, 128),
    ):
        if value:
            records.append((2, dataset, _clip_utf8(NOT_XML.sub("\ufffd", value), limit)))
    return b"".join(struct.pack(">BBBH", 0x1C, r, d, len(v)) + v for r, d, v in records)


def photoshop_irb(iim: bytes) -> bytes:
    """Photoshop image resources for APP13: the IIM block plus its MD5 digest, which
    tells readers the IIM agrees with the XMP written beside it."""

    def resource(rid: int, payload: bytes) -> bytes:
        pad = b"\x00" * (len(payload) % 2)
        return b"8BIM" + struct.pack(">HHI", rid, 0, len(payload)) + payload + pad

    digest = hashlib.md5(iim, usedforsecurity=False).digest()
    return resource(0x0404, iim) + resource(0x0425, digest)


def _clip_utf8(value: str, limit: int) -> bytes:
    """UTF-8 bytes of ``value`` cut to ``limit`` without splitting a character."""
    raw = value.encode("utf-8")
    return raw if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore").encode("utf-8")
