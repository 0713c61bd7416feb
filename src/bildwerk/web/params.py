"""What path parameters may look like, checked before any handler runs: ids of runs,
creatives, tokens and users are short and plain, so traversal (``../``), NUL bytes and
wildcards never reach a query or a file name."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"

ObjectId = Annotated[str, Path(pattern=ID_PATTERN, max_length=128)]
"""A run id (or unique prefix, or ``latest``), a creative id, a token id, a user name."""

MAX_INT = 2**53
"""The largest sequence, offset or id a query accepts: every database stores it, and
every JSON client reads it exactly."""

After = Annotated[int | None, Query(ge=0, le=MAX_INT)]
"""``?after=``: a position in a stream or feed."""


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
"""A time in an answer: catalogs store UTC, SQLite hands it back without its zone."""


def has_nul(raw: bytes | str) -> bool:
    """Whether a URL (raw path or query) carries a NUL byte, plain or percent-encoded;
    PostgreSQL cannot store one and no name of ours contains one."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    return "\x00" in text or "%00" in text
