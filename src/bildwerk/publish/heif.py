"""Embedding XMP in AVIF: an XMP ``mime`` item in the HEIF meta box, described by the
primary item (``cdsc``), with item locations rewritten; and, for a remote C2PA manifest
at an absolute URL, the top-level XMP ``uuid`` box naming it, the one place C2PA readers
look for ``dcterms:provenance`` in ISO BMFF files."""

from __future__ import annotations

import struct

from bildwerk.bmff import Item, box, boxes, item_infos, item_locations

# --- AVIF: an XMP "mime" item in the HEIF meta box, described by the primary item (cdsc).
# The file is rebuilt as ftyp + meta + one mdat holding the kept items' data (copied byte
# for byte) and the XMP; Exif and old XMP items go, so no orphaned bytes remain.

_XMP_MIME = b"application/rdf+xml"
# The uuid of XMP boxes in ISO BMFF (Adobe's XMP specification, part 3).
XMP_UUID = bytes.fromhex("be7acfcb97a942e89c71999491e3afac")


def embed_avif(data: bytes, xmp: bytes, provenance: bytes = b"") -> bytes:
    """``data`` rebuilt as ftyp, [uuid XMP ``provenance``], meta, mdat: the XMP item
    replaces any Exif or XMP items, other top-level boxes (old uuid boxes) go."""
    top = {kind: (start, body, end) for kind, start, body, end in boxes(data, 0, len(data))}
    if b"moov" in top or b"meta" not in top or b"ftyp" not in top:
        raise ValueError("not a still AVIF image (image sequences are not supported)")
    ftyp = data[top[b"ftyp"][0] : top[b"ftyp"][2]]
    _, meta, meta_end = top[b"meta"]
    children = boxes(data, meta + 4, meta_end)  # meta is a full box
    body = {kind: data[b:e] for kind, _, b, e in children}
    infos = item_infos(body[b"iinf"])
    drop = {i for i, (kind, mime, _) in infos.items() if kind == b"Exif" or mime == _XMP_MIME}
    primary = int.from_bytes(body[b"pitm"][4:], "big")
    items = [item for item in item_locations(body[b"iloc"]) if item.item_id not in drop]
    xmp_id = max([*infos, *(item.item_id for item in items), primary]) + 1
    wide = xmp_id > 0xFFFF
    infe = struct.pack(">I" if wide else ">H", xmp_id) + b"\0\0mime" + b"XMP\0" + _XMP_MIME + b"\0"
    entries = [raw for i, (_, _, raw) in infos.items() if i not in drop]
    entries.append(box(b"infe", bytes([3 if wide else 2, 0, 0, 0]) + infe))
    count = struct.pack(">I", len(entries)) if wide else struct.pack(">H", len(entries))
    iinf = box(b"iinf", bytes([1 if wide else 0, 0, 0, 0]) + count + b"".join(entries))
    refs = [*_iref(body.get(b"iref", bytes(4)), drop), (b"cdsc", xmp_id, [primary])]
    iref = _irefbox(refs)

    payload: list[bytes] = []
    placed: list[tuple[Item, list[tuple[int, int]]]] = []  # extents relative to mdat data
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
    placed.append((Item(xmp_id, 0, []), [(cursor, len(xmp))]))
    payload.append(xmp)

    def build(base: int) -> bytes:
        parts = []
        for kind, start, _, end in children:
            if kind == b"iloc":
                parts.append(_ilocbox(placed, base))
            elif kind == b"iinf":
                parts.append(iinf + (b"" if b"iref" in body else iref))
            elif kind == b"iref":
                parts.append(iref)
            elif kind == b"iprp":
                parts.append(_iprp(data, body[b"iprp"], drop))
            else:
                parts.append(data[start:end])
        return box(b"meta", data[meta : meta + 4] + b"".join(parts))

    head = ftyp + (box(b"uuid", XMP_UUID + provenance) if provenance else b"")
    size = len(build(0))
    mdat = b"".join(payload)
    return head + build(len(head) + size + 8) + box(b"mdat", mdat)


def _ilocbox(placed: list[tuple[Item, list[tuple[int, int]]]], base: int) -> bytes:
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
    return box(b"iloc", b"".join(out))


def _iref(body: bytes, drop: set[int]) -> list[tuple[bytes, int, list[int]]]:
    """References not touching dropped items, as (type, from, [to])."""
    fmt, size = (">I", 4) if body[0] else (">H", 2)
    refs = []
    for kind, _, b, _end in boxes(body, 4, len(body)):
        source = struct.unpack_from(fmt, body, b)[0]
        count = struct.unpack_from(">H", body, b + size)[0]
        targets = [struct.unpack_from(fmt, body, b + size + 2 + k * size)[0] for k in range(count)]
        targets = [t for t in targets if t not in drop]
        if source not in drop and targets:
            refs.append((kind, source, targets))
    return refs


def _irefbox(refs: list[tuple[bytes, int, list[int]]]) -> bytes:
    wide = any(max(source, *targets) > 0xFFFF for _, source, targets in refs)
    fmt = ">I" if wide else ">H"
    parts = [
        box(
            kind,
            struct.pack(fmt, source)
            + struct.pack(">H", len(targets))
            + b"".join(struct.pack(fmt, t) for t in targets),
        )
        for kind, source, targets in refs
    ]
    return box(b"iref", bytes([1 if wide else 0, 0, 0, 0]) + b"".join(parts))


def _iprp(data: bytes, body: bytes, drop: set[int]) -> bytes:
    """iprp with property associations of dropped items removed (properties kept)."""
    parts = []
    for kind, start, b, end in boxes(body, 0, len(body)):
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
        parts.append(box(b"ipma", head + b"".join(kept)))
    return box(b"iprp", b"".join(parts))
