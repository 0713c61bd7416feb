"""Embedding metadata in JPEG, WebP and PNG files: old metadata dropped, the coded image
and colour profile copied byte for byte."""

from __future__ import annotations

import struct
import zlib

from PIL import Image


def _orientation(exif_payload: bytes) -> int:
    """The orientation tag of an EXIF block (``Exif\\0\\0`` + TIFF), 1 if absent."""
    exif = Image.Exif()
    try:
        exif.load(exif_payload)
    except (SyntaxError, ValueError, struct.error):
        return 1
    value = exif.get(0x0112, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _orientation_exif(orientation: int) -> bytes:
    """A minimal EXIF block: the orientation, plus the tags EXIF requires beside it."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x011A] = exif[0x011B] = 72.0  # X/YResolution
    exif[0x0128] = 2  # ResolutionUnit: inches
    exif[0x0213] = 1  # YCbCrPositioning: centred
    return exif.tobytes()


# --- JPEG: APP1 XMP + APP13 IIM; keep JFIF, ICC and Adobe segments and the coded image.

_XMP_SIG = b"http://ns.adobe.com/xap/1.0/\x00"
_JPEG_KEEP = ((0xE0, b"JFIF\x00"), (0xE2, b"ICC_PROFILE\x00"), (0xEE, b"Adobe"))


def embed_jpeg(data: bytes, xmp: bytes, irb: bytes | None) -> bytes:
    """``data`` with ``xmp`` (APP1) and, unless None, the Photoshop IRB holding IPTC IIM
    (APP13); other metadata segments go, JFIF and the ICC profile stay."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file")
    head: list[bytes] = []  # JFIF must stay first
    kept: list[bytes] = []
    orientation, pos, marker = 1, 2, 0
    while marker != 0xD9:  # EOI; anything after it (trailers, MPF images) is dropped
        marker, end = _jpeg_segment(data, pos)
        segment = data[pos:end]
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            payload = segment[4:]
            if marker == 0xE1 and payload.startswith(b"Exif\x00\x00"):
                orientation = _orientation(payload)
            elif any(marker == m and payload.startswith(sig) for m, sig in _JPEG_KEEP):
                (head if marker == 0xE0 and not kept else kept).append(segment)
        else:
            kept.append(segment)
        pos = end
    new = [_app(0xE1, _orientation_exif(orientation))] if orientation != 1 else []
    new += [_app(0xE1, _XMP_SIG + xmp)]
    if irb is not None:
        new.append(_app(0xED, b"Photoshop 3.0\x00" + irb))
    return b"\xff\xd8" + b"".join(head + new + kept)


def _jpeg_segment(data: bytes, pos: int) -> tuple[int, int]:
    """Marker and end of the segment at ``pos``; a scan runs on to the next real marker."""
    if data[pos] != 0xFF:
        raise ValueError(f"no JPEG marker at byte {pos}")
    while data[pos + 1] == 0xFF:  # fill bytes
        pos += 1
    marker = data[pos + 1]
    if marker == 0xD9 or marker == 0x01 or 0xD0 <= marker <= 0xD7:
        return marker, pos + 2
    end = pos + 2 + struct.unpack_from(">H", data, pos + 2)[0]
    if end > len(data):
        raise ValueError("truncated JPEG segment")
    while marker == 0xDA:  # entropy-coded data: FF00 is a stuffed byte, FFD0-D7 restarts
        end = data.find(b"\xff", end)
        if end < 0:
            raise ValueError("the file ends inside the image data")
        following = data[end + 1]
        if following != 0 and not 0xD0 <= following <= 0xD7 and following != 0xFF:
            break
        end += 1
    return marker, end


def _app(marker: int, payload: bytes) -> bytes:
    if len(payload) > 0xFFFD:
        raise ValueError(f"{len(payload)} bytes of metadata exceed a JPEG segment (65533)")
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


# --- WebP: extended (VP8X) container with ICCP first and EXIF/XMP chunks last.

_WEBP_KEEP = (b"ICCP", b"ANIM", b"ANMF", b"ALPH", b"VP8 ", b"VP8L")


def embed_webp(data: bytes, xmp: bytes) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP file")
    end = min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    chunks: list[tuple[bytes, bytes]] = []
    pos = 12
    while pos + 8 <= end:
        tag, size = struct.unpack_from("<4sI", data, pos)
        if pos + 8 + size > end:
            raise ValueError("truncated WebP chunk")
        chunks.append((tag, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    tags = {tag for tag, _ in chunks}
    orientation = 1
    for tag, body in chunks:
        if tag == b"EXIF":
            orientation = _orientation(body if body[:4] == b"Exif" else b"Exif\0\0" + body)
    header = next((body for tag, body in chunks if tag == b"VP8X"), None)
    if header is not None:
        canvas, alpha = header[4:10], header[0] & 0x10
    else:
        width, height, alpha = _webp_frame(chunks)
        canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    flags = alpha | 0x04 | (0x20 if b"ICCP" in tags else 0) | (0x02 if b"ANIM" in tags else 0)
    out = [(tag, body) for tag, body in chunks if tag in _WEBP_KEEP]
    if orientation != 1:
        flags |= 0x08
        out.append((b"EXIF", _orientation_exif(orientation)[6:]))  # TIFF, no Exif\0\0
    out = [(b"VP8X", bytes([flags, 0, 0, 0]) + canvas), *out, (b"XMP ", xmp)]
    body = b"WEBP" + b"".join(
        struct.pack("<4sI", tag, len(b)) + b + b"\x00" * (len(b) & 1) for tag, b in out
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _webp_frame(chunks: list[tuple[bytes, bytes]]) -> tuple[int, int, int]:
    """Width, height and the alpha flag of a simple-format WebP's bitstream."""
    for tag, body in chunks:
        if tag == b"VP8 " and body[3:6] == b"\x9d\x01\x2a":
            width, height = struct.unpack_from("<HH", body, 6)
            return width & 0x3FFF, height & 0x3FFF, 0
        if tag == b"VP8L" and body[:1] == b"\x2f":
            bits = int.from_bytes(body[1:5], "little")
            alpha = 0x10 if bits >> 28 & 1 else 0
            return (bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1, alpha
    raise ValueError("no VP8/VP8L bitstream")


# --- PNG: an iTXt XMP chunk before the image data; colour chunks kept, text dropped.

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_KEEP = frozenset(
    b"IHDR PLTE IDAT IEND tRNS cHRM gAMA iCCP sBIT sRGB cICP mDCv cLLi pHYs bKGD acTL "
    b"fcTL fdAT".split()
)


def embed_png(data: bytes, xmp: bytes) -> bytes:
    if not data.startswith(_PNG_SIG):
        raise ValueError("not a PNG file")
    out, pos, placed = [_PNG_SIG], len(_PNG_SIG), False
    while pos < len(data):
        size, tag = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + size
        if end > len(data):
            raise ValueError("truncated PNG chunk")
        if tag == b"IDAT" and not placed:
            body = b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + xmp
            out.append(struct.pack(">I4s", len(body), b"iTXt") + body)
            out.append(struct.pack(">I", zlib.crc32(b"iTXt" + body)))
            placed = True
        if tag in _PNG_KEEP:
            out.append(data[pos:end])
        pos = end
        if tag == b"IEND":
            break
    return b"".join(out)
