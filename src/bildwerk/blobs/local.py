"""Content-addressed blobs as files: every file is stored once, under its sha256.

Writes go to a temp file in the same directory (named for its writer, see
:mod:`bildwerk.tempfiles`), are fsynced and renamed into place, so a crash never leaves
a half-written blob under a real name; the catalog row that refers to a blob is committed
only after ``put`` returns.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bildwerk.atomicio import atomic_copy, atomic_write_bytes, fsync_dir, sha256_bytes, sha256_file
from bildwerk.blobs.base import (
    BlobCorruptError,
    BlobMissingError,
    BlobStoreSpec,
    check_digest,
)
from bildwerk.tempfiles import GRACE, PREFIX, is_stale

QUARANTINE = "quarantine"
_FAN = re.compile(r"^[0-9a-f]{2}$")
_REST = re.compile(r"^[0-9a-f]{62}$")


class LocalBlobStore:
    """Blobs as files under ``root/ab/cdef…`` (first two hex digits fan out directories)."""

    def __init__(self, root: Path, *, temp_grace: timedelta = GRACE) -> None:
        self.root = root
        self.temp_grace = temp_grace

    @property
    def url(self) -> str:
        return self.root.absolute().as_uri()

    def spec(self) -> BlobStoreSpec:
        return BlobStoreSpec(self.url)

    def path(self, sha256: str) -> Path:
        """Where the blob lives (not verified; :meth:`local_path` is)."""
        check_digest(sha256)
        return self.root / sha256[:2] / sha256[2:]

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        target = self.path(digest)
        with contextlib.suppress(FileNotFoundError):
            if target.stat().st_size == len(data):
                with contextlib.suppress(OSError):  # young again: fsck spares young orphans
                    os.utime(target)
                return digest  # a damaged copy of the same size is fsck's to find
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data, mode=0o444)
        return digest

    def get(self, sha256: str) -> bytes:
        path = self.path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobMissingError(sha256, str(path)) from None
        actual = sha256_bytes(data)
        if actual != sha256:
            raise BlobCorruptError(sha256, str(path), actual)
        return data

    def local_path(self, sha256: str) -> Path:
        path = self.path(sha256)
        try:
            actual = sha256_file(path)
        except FileNotFoundError:
            raise BlobMissingError(sha256, str(path)) from None
        if actual != sha256:
            raise BlobCorruptError(sha256, str(path), actual)
        return path

    def verify(self, sha256: str) -> None:
        self.local_path(sha256)

    def export(self, sha256: str, dest: Path) -> Path:
        """Place a copy of a verified blob at ``dest`` (a reflink where the file system
        can, never a hard link: run outputs are edited by people and tools)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = self.local_path(sha256)
        if dest.is_file() and not dest.is_symlink():
            same = dest.stat()
            if (same.st_ino, same.st_dev) != (src.stat().st_ino, src.stat().st_dev) and (
                same.st_size == src.stat().st_size and sha256_file(dest) == sha256
            ):
                return dest
        atomic_copy(src, dest)
        return dest

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def quarantine(self, sha256: str) -> str:
        src = self.path(sha256)
        folder = self.root / QUARANTINE
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / f"{sha256}.{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
        os.replace(src, dest)
        fsync_dir(folder)
        fsync_dir(src.parent)
        return str(dest)

    def iter_digests(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for fan in sorted(self.root.iterdir()):
            if not _FAN.match(fan.name) or not fan.is_dir():
                continue
            for entry in sorted(fan.iterdir()):
                if _REST.match(entry.name) and entry.is_file():
                    yield fan.name + entry.name

    def modified(self, sha256: str) -> datetime:
        path = self.path(sha256)
        try:
            return datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except FileNotFoundError:
            raise BlobMissingError(sha256, str(path)) from None

    def stale_temps(self) -> list[str]:
        stale: list[str] = []
        if not self.root.is_dir():
            return stale
        now = time.time()
        for tmp in self.root.glob(f"*/{PREFIX}*"):
            try:
                age = timedelta(seconds=now - tmp.stat().st_mtime)
            except FileNotFoundError:
                continue  # renamed into place meanwhile
            if is_stale(tmp.name, age, grace=self.temp_grace):
                stale.append(str(tmp))
        return stale

    def sweep_temp(self) -> int:
        """Remove temp files left by crashed writes (never a live writer's); how many."""
        removed = 0
        for tmp in self.stale_temps():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
                removed += 1
        return removed
