"""Temp files owned by their writer, so a sweep never deletes another process's write
(used by :mod:`bildwerk.atomicio` and the blob stores).

A write goes to ``.tmp-<host>-<pid>-<random>`` next to its final name and is renamed into
place. A temp is stale (safe to delete) when:

* its writer ran on this host and that pid is gone (or the temp is older than a day:
  pids are reused, and no blob write takes that long);
* its writer ran on another host (a shared folder, a bucket) and it is older than the
  grace period: we cannot ask that host whether the process lives;
* its name carries no owner: only older bildwerk versions wrote such names.

What cannot be attributed by age (no modification time available) is kept: deleting a
live write would be worse than keeping a dead one.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from dataclasses import dataclass
from datetime import timedelta

PREFIX = ".tmp-"
GRACE = timedelta(hours=1)
SAME_HOST_MAX_AGE = timedelta(days=1)


@dataclass(frozen=True)
class TempOwner:
    host: str
    pid: int


def this_host() -> str:
    """The host name, made safe for a file name (no ``-`` ambiguity is needed: the pid
    and random part are split off from the right)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "unknown"


def temp_name() -> str:
    return f"{PREFIX}{this_host()}-{os.getpid()}-{secrets.token_hex(6)}"


def owner_of(name: str) -> TempOwner | None:
    """Who wrote a temp file, from its name; None for names without an owner."""
    if not name.startswith(PREFIX):
        return None
    parts = name[len(PREFIX) :].rsplit("-", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit():
        return None
    return TempOwner(parts[0], int(parts[1]))


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, owned by someone else
        return True
    return True


def is_stale(name: str, age: timedelta | None, *, grace: timedelta = GRACE) -> bool:
    """Whether the temp file ``name`` (of ``age``, None when unknown) may be deleted."""
    owner = owner_of(name)
    if owner is None:
        return True
    if owner.host == this_host():
        if not pid_alive(owner.pid):
            return True
        return age is not None and age > SAME_HOST_MAX_AGE
    return age is not None and age > grace
