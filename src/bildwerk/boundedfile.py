"""Reading a user-named file without trusting what it is.

A path in a brief can name ``/dev/zero`` (read until memory runs out), a FIFO (``open``
blocks forever) or a file far larger than any input bildwerk needs. Every such path is
opened non-blocking, checked with ``fstat`` to be a regular file under a size limit, and
read no further than the limit, so a file that grows while we read it is refused too.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from bildwerk.errors import UserError

MiB = 1024 * 1024


class FileRefused(UserError):
    """A file could not be read, or is not a regular file within the size limit.

    ``reason`` is the short text callers put after the path (or after a field name) in
    their own error; ``hint`` says what to do.
    """

    def __init__(self, path: Path, reason: str, *, hint: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}", hint=hint)


def describe_size(n: int) -> str:
    """A byte count as people read it (``256 MiB``, ``1.5 KiB``, ``12 bytes``)."""
    for unit, size in (("GiB", 1024 * MiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_regular_file(path: Path, *, limit: int, what: str = "file") -> bytes:
    """All bytes of ``path`` if it is a regular file of at most ``limit`` bytes.

    Opened with ``O_NONBLOCK`` so a FIFO cannot hang the open; the type and size come
    from ``fstat`` of the opened descriptor (no race with a swapped path), and at most
    ``limit + 1`` bytes are read.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileRefused(
            path, "file not found", hint="check the path and spelling of the file name"
        ) from None
    except PermissionError:
        raise FileRefused(
            path,
            "cannot be read (permission denied)",
            hint=f"make the {what} readable for the user running bildwerk",
        ) from None
    except IsADirectoryError:
        raise FileRefused(
            path, "is a directory, not a regular file", hint=f"name one {what}"
        ) from None
    except OSError as exc:
        raise FileRefused(
            path, f"cannot be read ({exc.strerror or exc})", hint="check the file and disk"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(
                path,
                f"is {_kind(info.st_mode)}, not a regular file",
                hint=f"name a regular {what}; devices, pipes and sockets are refused",
            )
        if info.st_size > limit:
            raise FileRefused(
                path,
                f"is {describe_size(info.st_size)}, over the limit of {describe_size(limit)}",
                hint=f"use a smaller {what}",
            )
        chunks: list[bytes] = []
        total = 0
        # sized from fstat (os.read allocates the full request), plus one byte to notice growth
        want = max(info.st_size + 1, 64 * 1024)
        while total <= limit:
            try:
                chunk = os.read(fd, min(limit + 1 - total, want, 4 * MiB))
            except BlockingIOError:  # pragma: no cover - regular files do not block
                raise FileRefused(path, "would block", hint=f"name a regular {what}") from None
            except OSError as exc:
                if exc.errno == errno.EISDIR:  # pragma: no cover - caught by fstat
                    raise FileRefused(path, "is a directory", hint=f"name one {what}") from None
                raise FileRefused(
                    path, f"cannot be read ({exc.strerror or exc})", hint="check the file and disk"
                ) from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise FileRefused(
                path,
                f"grew past the limit of {describe_size(limit)} while being read",
                hint=f"use a smaller {what} that is not being written to",
            )
        return b"".join(chunks)
    finally:
        os.close(fd)
