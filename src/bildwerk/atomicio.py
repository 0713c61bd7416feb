"""Atomic file writes and sha256 hashing, in one place.

A write goes to a temp file in the target's own folder, is fsynced, renamed over the
target and the folder is fsynced: readers see the old bytes or the new, never half a
file, and a crash leaves no partial file under the real name.

Each temp file belongs to its writer: its name carries the writer's host and process id
(:mod:`bildwerk.tempfiles`), so a sweeper can tell a crashed writer's leftovers from
another process's write in flight.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from pathlib import Path

from bildwerk.errors import DiskFullError
from bildwerk.tempfiles import owner_of, temp_name

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so large weights never sit in memory."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def temp_path(path: Path) -> Path:
    """A fresh temp name beside ``path`` that names this host and process as its writer."""
    return path.with_name(temp_name())


def temp_owner(tmp: Path) -> int | None:
    """The writer's process id from a temp name made by :func:`temp_path`, else None."""
    owner = owner_of(tmp.name)
    return owner.pid if owner else None


def atomic_write_bytes(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically and durably.

    ``mode`` None gives a file like ``open(path, "wb")`` would (0o666 less the umask);
    an explicit mode is set exactly, before any byte is written, so a secret is never
    readable by others even for a moment. The parent folder must exist.
    """
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(path, needed=len(data)) from exc
        raise
    fsync_dir(path.parent)


_FICLONE = 0x40049409  # Linux ioctl: share the source's blocks copy-on-write


def atomic_copy(src: Path, dest: Path) -> None:
    """A copy of ``src`` at ``dest``, written atomically: a reflink where the file system
    shares blocks copy-on-write (Btrfs, XFS), else a byte copy — never a hard link, so
    editing or optimising the copy in place can never change the source (a blob)."""
    tmp = temp_path(dest)
    try:
        with src.open("rb") as fin, open(tmp, "xb") as fout:
            try:
                import fcntl

                fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
            except (ImportError, OSError):
                shutil.copyfileobj(fin, fout, _CHUNK)
            fout.flush()
            os.fsync(fout.fileno())
        os.replace(tmp, dest)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(dest, needed=src.stat().st_size) from exc
        raise
    fsync_dir(dest.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable; file systems that cannot fsync a folder are fine."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
