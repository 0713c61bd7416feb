"""Content-addressed blob store: every file is stored once, under its sha256.

Writes go to a temp file in the same directory, are fsynced and renamed into place, so
a crash never leaves a half-written blob under a real name; the catalog row that refers
to a blob is committed only after ``put`` returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol


class BlobStore(Protocol):
    def put(self, data: bytes) -> str: ...
    def get(self, sha256: str) -> bytes: ...
    def has(self, sha256: str) -> bool: ...
    def path(self, sha256: str) -> Path: ...


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalBlobStore:
    """Blobs as files under ``root/ab/cdef…`` (first two hex digits fan out directories)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:]

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, data: bytes) -> str:
        digest = sha256_bytes(data)
        target = self.path(digest)
        if target.is_file():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(target.parent)
        return digest

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def export(self, sha256: str, dest: Path) -> Path:
        """Place a blob at ``dest`` (hard link when possible, else a copy)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = self.path(sha256)
        if dest.exists():
            if dest.stat().st_size == src.stat().st_size and sha256_file(dest) == sha256:
                return dest
            dest.unlink()
        try:
            os.link(src, dest)
        except OSError:
            shutil.copyfile(src, dest)
        return dest

    def sweep_temp(self) -> int:
        """Remove temp files left by a crashed write; returns how many."""
        removed = 0
        if self.root.is_dir():
            for tmp in self.root.glob("*/.tmp-*"):
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
