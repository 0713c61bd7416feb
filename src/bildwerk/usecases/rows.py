"""Catalog rows as plain JSON-ready dicts, for ``--json`` output and the Python API."""

from __future__ import annotations

from typing import Any


def as_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in obj.__table__.columns:
        value = getattr(obj, col.key)
        out[col.key] = value.isoformat() if hasattr(value, "isoformat") else value
    return out
