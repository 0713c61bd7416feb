"""Rights and provenance metadata for published renditions: XMP (plus IPTC IIM in JPEG).

:func:`write_metadata` edits the container only, never the coded image: JPEG segments,
WebP/PNG chunks and the HEIF item table of AVIF are rewritten around the untouched
compressed data, so pixels and the ICC profile stay byte-identical. Camera EXIF, GPS,
comments, old XMP/IPTC and any C2PA manifest are dropped on the way (the EXIF
orientation survives in JPEG and WebP, where viewers apply it). A C2PA manifest binds the
final bytes, so sign after this step, never before.

Digital source types follow IPTC's vocabulary; see :func:`digital_source_type`.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from xml.sax.saxutils import escape

from PIL import Image

from bildwerk.errors import UserError

IPTC_DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_ALGORITHMIC_MEDIA = IPTC_DST + "trainedAlgorithmicMedia"
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = IPTC_DST + "compositeWithTrainedAlgorithmicMedia"
ALGORITHMIC_MEDIA = IPTC_DST + "algorithmicMedia"
COMPOSITE_SYNTHETIC = IPTC_DST + "compositeSynthetic"
MODEL_FREE_BACKENDS = frozenset({"studio"})
"""Backends that draw without trained weights; every other backend counts as generative AI."""

PLUS_VOCAB = "http://ns.useplus.org/ldf/vocab/"
DO_NOT_TRAIN = PLUS_VOCAB + "DMI-PROHIBITED-AIMLTRAINING"
"""PLUS data-mining value for ``do_not_train``: prohibited for AI/ML training. Plain
``DMI-PROHIBITED`` would also forbid search-engine indexing, which published marketing
images want."""

BILDWERK_NS = "https://bildwerk.dev/ns/1.0/"
_NAMESPACES = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "Iptc4xmpCore": "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
    "bildwerk": BILDWERK_NS,
}
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
# Characters XML 1.0 cannot carry at all (controls, lone surrogates, U+FFFE/FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DST = re.compile("^" + re.escape(IPTC_DST) + "[A-Za-z]+$")


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

    def __post_init__(self) -> None:
        if not _DST.match(self.digital_source_type):
            raise ValueError(
                f"digital_source_type must be a full IPTC URI ({IPTC_DST}…), "
                f"got {self.digital_source_type!r}"
            )
        for key in self.generation:
            if not _NAME.match(key) or _camel(key) in ("campaignId", "assetId"):
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


def build_xmp(meta: AssetMetadata) -> bytes:
    """A complete XMP packet (UTF-8) for ``meta``; every value is XML-escaped, and
    characters XML cannot carry become U+FFFD."""
    props: list[str] = []

    def simple(name: str, value: str) -> None:
        if value:
            props.append(f"<{name}>{_text(value)}</{name}>")

    def alt(name: str, value: str) -> None:
        if value:
            li = f'<rdf:li xml:lang="x-default">{_text(value)}</rdf:li>'
            props.append(f"<{name}><rdf:Alt>{li}</rdf:Alt></{name}>")

    alt("dc:title", meta.title)
    alt("dc:description", meta.description)
    alt("Iptc4xmpCore:AltTextAccessibility", meta.description)
    if meta.creator:
        props.append(
            f"<dc:creator><rdf:Seq><rdf:li>{_text(meta.creator)}</rdf:li></rdf:Seq></dc:creator>"
        )
    alt("dc:rights", meta.copyright_notice)
    simple("photoshop:Credit", meta.credit_line)
    simple("xmpRights:WebStatement", meta.web_statement)
    if meta.copyright_notice:
        simple("xmpRights:Marked", "True")
    simple("xmp:CreatorTool", "bildwerk")
    simple("Iptc4xmpExt:DigitalSourceType", meta.digital_source_type)
    licensor = meta.licensor_name or meta.creator
    if licensor or meta.licensor_url:
        parts = "".join(
            f"<plus:{tag}>{_text(value)}</plus:{tag}>"
            for tag, value in (("LicensorName", licensor), ("LicensorURL", meta.licensor_url))
            if value
        )
        li = f'<rdf:li rdf:parseType="Resource">{parts}</rdf:li>'
        props.append(f"<plus:Licensor><rdf:Seq>{li}</rdf:Seq></plus:Licensor>")
    if meta.licence_expiry is not None:
        simple("plus:LicenseEndDate", meta.licence_expiry.isoformat())
    if meta.do_not_train:
        simple("plus:DataMining", DO_NOT_TRAIN)
    simple("bildwerk:campaignId", meta.campaign_id)
    simple("bildwerk:assetId", meta.asset_id)
    for key, value in meta.generation.items():
        if value is not None:
            simple(f"bildwerk:{_camel(key)}", _scalar(value))
    xmlns = " ".join(f'xmlns:{p}="{uri}"' for p, uri in _NAMESPACES.items())
    body = "\n   ".join(props)
    packet = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="bildwerk">\n'
        f' <rdf:RDF xmlns:rdf="{_RDF}">\n'
        f'  <rdf:Description rdf:about="" {xmlns}>\n   {body}\n  </rdf:Description>\n'
        " </rdf:RDF>\n</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )
    return packet.encode("utf-8")


def write_metadata(data: bytes, fmt: str, meta: AssetMetadata) -> bytes:
    """``data`` (an encoded ``fmt`` file) with its old metadata dropped and ``meta`` embedded.

    The coded image and the ICC profile are copied byte for byte. Raises
    :class:`UserError` for files that cannot be parsed or metadata too large to embed.
    """
    xmp = build_xmp(meta)
    try:
        if fmt == "jpeg":
            return _jpeg(data, xmp, _irb(_iim(meta)))
        if fmt == "webp":
            return _webp(data, xmp)
        if fmt == "avif":
            return _avif(data, xmp)
        if fmt == "png":
            return _png(data, xmp)
    except (ValueError, KeyError, IndexError, struct.error) as exc:
        raise UserError(
            f"cannot embed metadata in this {fmt} file (asset {meta.asset_id}): {exc}",
            hint="re-render the file; if the metadata is too large, shorten the prompt",
        ) from exc
    raise ValueError(f"unsupported format {fmt!r}")


def _iim(meta: AssetMetadata) -> bytes:
    """IPTC IIM records (UTF-8, declared by 1:90) for the legacy fields readers still
    show: title, by-line, credit, copyright and caption, cut to the IIM byte limits."""
    records = [(1, 90, b"\x1b%G"), (2, 0, b"\x00\x04")]
    for dataset, value, limit in (
        (5, meta.title, 64),
        (80, meta.creator, 32),
        (110, meta.credit_line, 32),
        (116, meta.copyright_notice, 128),
        (120, meta.description, 2000),
    ):
        if value:
            records.append((2, dataset, _clip_utf8(_NOT_XML.sub("\ufffd", value), limit)))
    return b"".join(struct.pack(">BBBH", 0x1C, r, d, len(v)) + v for r, d, v in records)


def _irb(iim: bytes) -> bytes:
    """Photoshop image resources for APP13: the IIM block plus its MD5 digest, which
    tells readers the IIM agrees with the XMP written beside it."""

    def resource(rid: int, payload: bytes) -> bytes:
        pad = b"\x00" * (len(payload) % 2)
        return b"8BIM" + struct.pack(">HHI", rid, 0, len(payload)) + payload + pad

    digest = hashlib.md5(iim, usedforsecurity=False).digest()
    return resource(0x0404, iim) + resource(0x0425, digest)


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


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", value))


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _clip_utf8(value: str, limit: int) -> bytes:
    """UTF-8 bytes of ``value`` cut to ``limit`` without splitting a character."""
    raw = value.encode("utf-8")
    return raw if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore").encode("utf-8")


# --- JPEG: APP1 XMP + APP13 IIM; keep JFIF, ICC and Adobe segments and the coded image.

_XMP_SIG = b"http://ns.adobe.com/xap/1.0/\x00"
_JPEG_KEEP = ((0xE0, b"JFIF\x00"), (0xE2, b"ICC_PROFILE\x00"), (0xEE, b"Adobe"))


def _jpeg(data: bytes, xmp: bytes, irb: bytes) -> bytes:
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
    new += [_app(0xE1, _XMP_SIG + xmp), _app(0xED, b"Photoshop 3.0\x00" + irb)]
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


def _webp(data: bytes, xmp: bytes) -> bytes:
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


def _png(data: bytes, xmp: bytes) -> bytes:
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


# --- AVIF: an XMP "mime" item in the HEIF meta box, described by the primary item (cdsc).
# The file is rebuilt as ftyp + meta + one mdat holding the kept items' data (copied byte
# for byte) and the XMP; Exif and old XMP items go, so no orphaned bytes remain.

_XMP_MIME = b"application/rdf+xml"


@dataclass
class _Item:
    """One iloc entry: where an item's bytes are (absolute offsets for method 0)."""

    item_id: int
    method: int
    extents: list[tuple[int, int]]


def _avif(data: bytes, xmp: bytes) -> bytes:
    top = {kind: (start, body, end) for kind, start, body, end in _bmff(data, 0, len(data))}
    if b"moov" in top or b"meta" not in top or b"ftyp" not in top:
        raise ValueError("not a still AVIF image (image sequences are not supported)")
    ftyp = data[top[b"ftyp"][0] : top[b"ftyp"][2]]
    _, meta, meta_end = top[b"meta"]
    children = _bmff(data, meta + 4, meta_end)  # meta is a full box
    body = {kind: data[b:e] for kind, _, b, e in children}
    infos = _iinf(body[b"iinf"])
    drop = {i for i, (kind, mime, _) in infos.items() if kind == b"Exif" or mime == _XMP_MIME}
    primary = int.from_bytes(body[b"pitm"][4:], "big")
    items = [item for item in _iloc(body[b"iloc"]) if item.item_id not in drop]
    xmp_id = max([*infos, *(item.item_id for item in items), primary]) + 1
    wide = xmp_id > 0xFFFF
    infe = struct.pack(">I" if wide else ">H", xmp_id) + b"\0\0mime" + b"XMP\0" + _XMP_MIME + b"\0"
    entries = [raw for i, (_, _, raw) in infos.items() if i not in drop]
    entries.append(_box(b"infe", bytes([3 if wide else 2, 0, 0, 0]) + infe))
    count = struct.pack(">I", len(entries)) if wide else struct.pack(">H", len(entries))
    iinf = _box(b"iinf", bytes([1 if wide else 0, 0, 0, 0]) + count + b"".join(entries))
    refs = [*_iref(body.get(b"iref", bytes(4)), drop), (b"cdsc", xmp_id, [primary])]
    iref = _iref_box(refs)

    payload: list[bytes] = []
    placed: list[tuple[_Item, list[tuple[int, int]]]] = []  # extents relative to mdat data
    cursor = 0
    for item in items:
        if item.method != 0:
            placed.append((item, item.extents))
            continue
        extents = []
        for offset, length in item.extents:
            if offset + length > len(data):
                raise ValueError(f"item {item.item_id} lies outside the file")
            payload.append(data[offset : offset + length])
            extents.append((cursor, length))
            cursor += length
        placed.append((item, extents))
    placed.append((_Item(xmp_id, 0, []), [(cursor, len(xmp))]))
    payload.append(xmp)

    def build(base: int) -> bytes:
        parts = []
        for kind, start, _, end in children:
            if kind == b"iloc":
                parts.append(_iloc_box(placed, base))
            elif kind == b"iinf":
                parts.append(iinf + (b"" if b"iref" in body else iref))
            elif kind == b"iref":
                parts.append(iref)
            elif kind == b"iprp":
                parts.append(_iprp(data, body[b"iprp"], drop))
            else:
                parts.append(data[start:end])
        return _box(b"meta", data[meta : meta + 4] + b"".join(parts))

    size = len(build(0))
    mdat = b"".join(payload)
    return ftyp + build(len(ftyp) + size + 8) + _box(b"mdat", mdat)


def _bmff(data: bytes, pos: int, end: int) -> list[tuple[bytes, int, int, int]]:
    """Boxes between ``pos`` and ``end`` as (type, start, payload start, end)."""
    out = []
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"damaged {kind!r} box at byte {pos}")
        out.append((kind, pos, pos + header, pos + size))
        pos += size
    return out


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _iinf(body: bytes) -> dict[int, tuple[bytes, bytes, bytes]]:
    """Item id → (item type, MIME content type, raw infe box)."""
    pos = 6 if body[0] == 0 else 8
    out = {}
    for kind, start, b, end in _bmff(body, pos, len(body)):
        version = body[b]
        if kind != b"infe" or version < 2:
            raise ValueError("legacy item info entries are not supported")
        wide = version == 3
        item_id = int.from_bytes(body[b + 4 : b + (8 if wide else 6)], "big")
        p = b + (10 if wide else 8)
        item_type = body[p : p + 4]
        name_end = body.index(b"\0", p + 4)
        mime = body[name_end + 1 : body.find(b"\0", name_end + 1)] if item_type == b"mime" else b""
        out[item_id] = (item_type, mime, body[start:end])
    return out


def _iloc(body: bytes) -> list[_Item]:
    version = body[0]
    offset_size, length_size = body[4] >> 4, body[4] & 15
    base_size, index_size = body[5] >> 4, (body[5] & 15 if version else 0)
    pos = 6

    def read(n: int) -> int:
        nonlocal pos
        pos += n
        return int.from_bytes(body[pos - n : pos], "big")

    items = []
    for _ in range(read(4 if version == 2 else 2)):
        item_id = read(4 if version == 2 else 2)
        method = read(2) & 15 if version else 0
        if read(2) != 0:
            raise ValueError("items stored in other files are not supported")
        base = read(base_size)
        extents = []
        for _ in range(read(2)):
            read(index_size)
            offset, length = base + read(offset_size), read(length_size)
            if length == 0 and method == 0:
                raise ValueError("open-ended item extents are not supported")
            extents.append((offset, length))
        items.append(_Item(item_id, method, extents))
    return items


def _iloc_box(placed: list[tuple[_Item, list[tuple[int, int]]]], base: int) -> bytes:
    """iloc with 4-byte offsets and lengths; method-0 extents are moved to ``base``."""
    wide = any(item.item_id > 0xFFFF for item, _ in placed)
    version = 2 if wide else (1 if any(item.method for item, _ in placed) else 0)
    id_fmt = ">I" if wide else ">H"
    out = [bytes([version, 0, 0, 0, 0x44, 0]), struct.pack(id_fmt, len(placed))]
    for item, extents in placed:
        out.append(struct.pack(id_fmt, item.item_id))
        if version:
            out.append(struct.pack(">H", item.method))
        out.append(struct.pack(">HH", 0, len(extents)))
        shift = base if item.method == 0 else 0
        out += [struct.pack(">II", offset + shift, length) for offset, length in extents]
    return _box(b"iloc", b"".join(out))


def _iref(body: bytes, drop: set[int]) -> list[tuple[bytes, int, list[int]]]:
    """References not touching dropped items, as (type, from, [to])."""
    fmt, size = (">I", 4) if body[0] else (">H", 2)
    refs = []
    for kind, _, b, _end in _bmff(body, 4, len(body)):
        source = struct.unpack_from(fmt, body, b)[0]
        count = struct.unpack_from(">H", body, b + size)[0]
        targets = [struct.unpack_from(fmt, body, b + size + 2 + k * size)[0] for k in range(count)]
        targets = [t for t in targets if t not in drop]
        if source not in drop and targets:
            refs.append((kind, source, targets))
    return refs


def _iref_box(refs: list[tuple[bytes, int, list[int]]]) -> bytes:
    wide = any(max(source, *targets) > 0xFFFF for _, source, targets in refs)
    fmt = ">I" if wide else ">H"
    parts = [
        _box(
            kind,
            struct.pack(fmt, source)
            + struct.pack(">H", len(targets))
            + b"".join(struct.pack(fmt, t) for t in targets),
        )
        for kind, source, targets in refs
    ]
    return _box(b"iref", bytes([1 if wide else 0, 0, 0, 0]) + b"".join(parts))


def _iprp(data: bytes, body: bytes, drop: set[int]) -> bytes:
    """iprp with property associations of dropped items removed (properties kept)."""
    parts = []
    for kind, start, b, end in _bmff(body, 0, len(body)):
        if kind != b"ipma":
            parts.append(body[start:end])
            continue
        version, flags = body[b], body[b + 3]
        id_size, assoc_size = (4 if version else 2), (2 if flags & 1 else 1)
        pos, kept = b + 8, []
        for _ in range(struct.unpack_from(">I", body, b + 4)[0]):
            item_id = int.from_bytes(body[pos : pos + id_size], "big")
            stop = pos + id_size + 1 + body[pos + id_size] * assoc_size
            if item_id not in drop:
                kept.append(body[pos:stop])
            pos = stop
        head = body[b : b + 4] + struct.pack(">I", len(kept))
        parts.append(_box(b"ipma", head + b"".join(kept)))
    return _box(b"iprp", b"".join(parts))
