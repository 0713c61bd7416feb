"""Reading ISO base media files (HEIF/AVIF): boxes, and the item table of a ``meta`` box.

Enough of ISO/IEC 14496-12 and 23008-12 for still images: top-level and nested boxes
(32- and 64-bit sizes), item info entries (``infe`` v2/v3) and item locations (``iloc``
v0-v2). Used to rewrite metadata around the coded image (:mod:`bildwerk.publish.heif`)
and to tell the coded image from the rest (:func:`bildwerk.stages.encode.payload_size`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass
class Item:
    """One iloc entry: where an item's bytes are (absolute offsets for method 0)."""

    item_id: int
    method: int
    extents: list[tuple[int, int]]


def boxes(data: bytes, pos: int, end: int) -> list[tuple[bytes, int, int, int]]:
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


def find(data: bytes, pos: int, end: int, kind: bytes) -> list[tuple[int, int]]:
    """(payload start, end) of the ``kind`` boxes between ``pos`` and ``end``."""
    return [(body, stop) for k, _, body, stop in boxes(data, pos, end) if k == kind]


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def item_infos(body: bytes) -> dict[int, tuple[bytes, bytes, bytes]]:
    """Item id → (item type, MIME content type, raw infe box)."""
    pos = 6 if body[0] == 0 else 8
    out = {}
    for kind, start, b, end in boxes(body, pos, len(body)):
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


def item_locations(body: bytes) -> list[Item]:
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
        items.append(Item(item_id, method, extents))
    return items


def coded_extents(data: bytes) -> list[tuple[int, int]]:
    """(offset, length) of every ``av01`` item's data stored in the file (iloc method 0):
    the coded image, and an alpha plane if any, without XMP, Exif or other items."""
    top = {kind: (body, end) for kind, _, body, end in boxes(data, 0, len(data))}
    if b"meta" not in top:
        raise ValueError("not a HEIF file: no meta box")
    meta, meta_end = top[b"meta"]
    children = {kind: data[b:e] for kind, _, b, e in boxes(data, meta + 4, meta_end)}
    coded = {i for i, (kind, _, _) in item_infos(children[b"iinf"]).items() if kind == b"av01"}
    return [
        extent
        for item in item_locations(children[b"iloc"])
        if item.item_id in coded and item.method == 0
        for extent in item.extents
    ]
