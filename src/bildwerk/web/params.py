"""What path parameters may look like, checked before any handler runs: ids of runs,
creatives, tokens and users are short and plain, so traversal (``../``), NUL bytes and
wildcards never reach a query or a file name."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"

ObjectId = Annotated[str, Path(pattern=ID_PATTERN, max_length=128)]
"""A run id (or unique prefix, or ``latest``), a creative id, a token id, a user name."""


def has_nul(raw: bytes | str) -> bool:
    """Whether a URL (raw path or query) carries a NUL byte, plain or percent-encoded;
    PostgreSQL cannot store one and no name of ours contains one."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    return "\x00" in text or "%00" in text
