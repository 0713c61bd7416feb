"""What every blob store promises, and the errors it raises.

A blob store keeps bytes under their sha256 digest. Every read is verified: a store
recomputes the digest of what it read and raises :class:`BlobCorruptError` instead of
returning bad bytes, so a flipped bit on a disk or in a bucket never reaches a
rendition, a signature or a published page.

Workers in other processes get a :class:`BlobStoreSpec` (picklable) and open the store
themselves; stores hold clients and caches that must not cross a process boundary.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from bildwerk.errors import UserError

FSCK_HINT = "run 'bildwerk fsck' to see what else is affected and what needs it"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def check_digest(digest: str) -> str:
    """The digest itself, or ValueError: digests become file names and object keys, so
    anything but 64 lowercase hex digits could escape the store."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest


def fan_out(digest: str) -> str:
    """``ab/cdef…``: the key of a blob inside a store (two hex digits fan out folders)."""
    check_digest(digest)
    return f"{digest[:2]}/{digest[2:]}"


def is_url(location: str | Path) -> bool:
    """True for ``scheme://…`` strings; plain paths (relative or absolute) are not URLs."""
    return (
        isinstance(location, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", location) is not None
    )


# --------------------------------------------------------------------------- errors


class BlobError(UserError):
    """A blob the catalog needs cannot be read as stored."""

    def __init__(self, digest: str, where: str, message: str, *, hint: str) -> None:
        self.digest = digest
        self.where = where
        super().__init__(message, hint=hint)


class BlobMissingError(BlobError):
    """No blob with this digest in the store."""

    def __init__(self, digest: str, where: str) -> None:
        super().__init__(
            digest,
            where,
            f"blob {digest} is missing (expected at {where})",
            hint=f"{FSCK_HINT}; re-running the brief regenerates produced images, "
            "imported files must be imported again",
        )


class BlobCorruptError(BlobError):
    """The stored bytes do not hash to their digest: a damaged disk, a bad copy, a
    truncated upload. The bytes are never returned."""

    def __init__(self, digest: str, where: str, actual: str) -> None:
        self.actual = actual
        super().__init__(
            digest,
            where,
            f"blob {digest} at {where} is corrupt: its content hashes to {actual}",
            hint="run 'bildwerk fsck --repair' to move it to quarantine; a re-run then "
            "regenerates it",
        )


class BlobStoreUnavailableError(UserError):
    """The store itself cannot be reached or used (network, credentials, bucket)."""

    def __init__(self, url: str, message: str, *, hint: str | None = None) -> None:
        self.url = url
        super().__init__(
            f"blob store {url}: {message}",
            hint=hint or "check blobs/blob_options in bildwerk.yaml and the credentials",
        )


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class BlobStore(Protocol):
    """Bytes by sha256. ``put`` returns only once the blob is durable, so a catalog row
    naming it may be committed; reads are verified."""

    @property
    def url(self) -> str:
        """Identifies the store so another process can reopen it (see :meth:`spec`)."""
        ...

    def spec(self) -> BlobStoreSpec:
        """A picklable description a worker process opens with ``spec.open()``."""
        ...

    def put(self, data: bytes) -> str:
        """Store ``data`` (once) and return its digest; durable when it returns."""
        ...

    def get(self, digest: str) -> bytes:
        """The verified bytes; :class:`BlobMissingError` or :class:`BlobCorruptError`."""
        ...

    def has(self, digest: str) -> bool:
        """Whether the store holds this digest (not verified: see :meth:`verify`)."""
        ...

    def local_path(self, digest: str) -> Path:
        """A verified local file with the blob's bytes, for tools that open paths: the
        blob itself in a local store, a cached copy for a remote one. Read-only."""
        ...

    def export(self, digest: str, dest: Path) -> Path:
        """Place a verified copy at ``dest`` (a hard link when possible)."""
        ...

    def verify(self, digest: str) -> None:
        """Re-hash the authoritative copy (never a cache); raises like :meth:`get`."""
        ...

    def delete(self, digest: str) -> None:
        """Remove a blob (for repair: pruning orphans); no error when absent."""
        ...

    def quarantine(self, digest: str) -> str:
        """Move a (corrupt) blob out of the store into ``quarantine/`` for inspection,
        never deleting it; returns where it went."""
        ...

    def iter_digests(self) -> Iterator[str]:
        """Every digest stored (temp files and quarantine excluded)."""
        ...

    def modified(self, digest: str) -> datetime:
        """When the blob was written (timezone-aware), to spare young orphans."""
        ...

    def stale_temps(self) -> list[str]:
        """Half-written temp files whose writer is gone (see :mod:`bildwerk.tempfiles`)."""
        ...

    def sweep_temp(self) -> int:
        """Remove stale temp files, never a live writer's; returns how many."""
        ...


@dataclass(frozen=True)
class BlobStoreSpec:
    """How to open a store in another process: tasks carry this, not the store.

    ``options`` go to fsspec (endpoint_url, region…); keep secrets in the environment
    (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY work through s3fs) rather than here, since a
    spec travels to worker processes.
    """

    url: str
    cache: Path | None = None
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def open(self) -> BlobStore:
        from bildwerk.blobs.stores import open_store

        return open_store(self.url, cache=self.cache, options=self.options)

    def opened(self) -> BlobStore:
        """This process's store for the spec, opened once (workers call it per task)."""
        key = (self.url, str(self.cache), repr(sorted(self.options.items())))
        store = _OPENED.get(key)
        if store is None:
            store = _OPENED[key] = self.open()
        return store


_OPENED: dict[tuple[str, str, str], BlobStore] = {}
