"""Job claims: two runs of one brief on one catalog make each job once.

A run claims the jobs it is about to make (``job_claims`` rows with its run id and
``host:pid``) and keeps them alive with a heartbeat thread. Another run finds them
claimed, waits for their ``jobs`` rows and records them as cached; a claim whose heartbeat
stopped (its process died) expires after the lease and is taken over. On the claimer's
own host a dead pid is noticed at once, so a run resumed after ``kill -9`` does not wait
out the lease.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from types import TracebackType

from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.heartbeat import Heartbeat

LEASE_SECONDS = 60.0
HEARTBEAT_SECONDS = 10.0
POLL_SECONDS = 0.5

_HOST = socket.gethostname()
_active: set[str] = set()  # run ids holding claims in this process
_active_lock = threading.Lock()


def owner_id() -> str:
    return f"{_HOST}:{os.getpid()}"


def _alive(pid: int) -> bool:
    if sys.platform == "win32":  # no cheap probe; the lease decides there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _abandoned(owner: str, run_id: str) -> bool:
    """A claim whose holder is known dead: a gone pid on this host, or this process for
    a run it no longer runs."""
    host, _, pid = owner.rpartition(":")
    if host != _HOST or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        with _active_lock:
            return run_id not in _active
    return not _alive(int(pid))


class JobClaims:
    """A run's claims, renewed by a heartbeat thread while the block runs and released
    when it ends. A failed heartbeat is retried on the next beat: the worst it can cause
    is an expired lease and a job made twice, which the catalog's idempotent inserts
    absorb."""

    def __init__(
        self,
        db: Database,
        run_id: str,
        *,
        lease_seconds: float = LEASE_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.db, self.run_id = db, run_id
        self.lease, self.beat, self.poll = lease_seconds, heartbeat_seconds, poll_seconds
        self.owner = owner_id()
        self.held: set[str] = set()
        self._heart = Heartbeat(self._heartbeat, self.beat, "claims")

    def __enter__(self) -> JobClaims:
        with _active_lock:
            _active.add(self.run_id)
        self._heart.__enter__()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._heart.__exit__(_type, _exc, _tb)
        try:
            if self.held:
                with self.db.session() as s:
                    repo.release_jobs(s, sorted(self.held), run_id=self.run_id)
        finally:
            with _active_lock:
                _active.discard(self.run_id)

    def _heartbeat(self) -> None:
        with self.db.session() as s:
            repo.heartbeat(s, self.run_id)

    def take(self, keys: Sequence[str]) -> set[str]:
        """Claim ``keys``; returns those this run now holds (free, expired, abandoned)
        and must make: keys whose job another run finished are left out."""
        with self.db.session() as s:
            stale: dict[str, list[str]] = {}
            for key, claim in repo.job_claims(s, keys).items():
                if claim.run_id != self.run_id and _abandoned(claim.owner, claim.run_id):
                    stale.setdefault(claim.run_id, []).append(key)
            for other, dropped in stale.items():
                repo.release_jobs(s, dropped, run_id=other)
            won = repo.claim_jobs(s, self.run_id, self.owner, keys, self.lease)
            # a run that made a job releases its claim afterwards: never make it again
            made = set(repo.done_jobs(s, sorted(won)))
            repo.release_jobs(s, sorted(made), run_id=self.run_id)
        self.held |= won - made
        return won - made

    def finished(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` have their ``jobs`` row (made by any run)."""
        with self.db.session(write=False) as s:
            return set(repo.done_jobs(s, keys))

    def pause(self) -> None:
        time.sleep(self.poll)
