"""The run queue: ``bildwerk submit`` queues a run in the catalog, ``bildwerk worker``
claims and runs queued runs, any number of workers on any machines sharing the catalog.

A worker holds a lease on the run it runs and renews it from a heartbeat thread. A run
whose lease ran out (its worker died) is claimed again by another worker and resumes
from its committed jobs; on the dead worker's own host a gone pid is noticed at once.
Claiming is one write transaction: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
``BEGIN IMMEDIATE`` write lock on SQLite. Every run — queued or started with
``bildwerk run`` — holds a lease, so ``bildwerk runs cancel`` reaches it, and a run
whose process vanished is marked failed instead of staying 'running'.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import UTC, datetime
from types import TracebackType

from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Run
from bildwerk.errors import BildwerkError
from bildwerk.heartbeat import Heartbeat
from bildwerk.tempfiles import pid_alive

LEASE_SECONDS = 60.0
BEAT_SECONDS = 5.0
CHECK_SECONDS = 1.0


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_here(owner: str | None) -> bool:
    """Whether ``owner`` was a process on this host that is gone."""
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))


class RunCancelled(BildwerkError):
    """Someone ran ``bildwerk runs cancel``; the run stopped between tasks."""

    exit_code = 1


class RunLease:
    """Holds a run's lease while the block runs: a heartbeat thread renews it every
    ``beat`` seconds and notices a cancellation request (``cancelled``)."""

    def __init__(
        self,
        db: Database,
        run_id: str,
        *,
        owner: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        beat_seconds: float = BEAT_SECONDS,
    ) -> None:
        self.db, self.run_id = db, run_id
        self.owner = owner or owner_id()
        self.lease, self.beat = lease_seconds, min(beat_seconds, lease_seconds / 3)
        self.cancelled = threading.Event()
        self._asked = time.monotonic()
        self._heart = Heartbeat(self._renew, self.beat, "run-lease")

    def __enter__(self) -> RunLease:
        self._heart.__enter__()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._heart.__exit__(_type, _exc, _tb)

    def _renew(self) -> None:
        with self.db.session() as s:
            if repo.renew_lease(s, self.run_id, self.owner, self.lease):
                self.cancelled.set()

    def check(self) -> None:
        """Raise :class:`RunCancelled` when cancellation was requested. Called between
        tasks (never inside a transaction); asks the catalog itself at most once a second,
        so a cancel takes effect within about a second, not a heartbeat."""
        now = time.monotonic()
        if not self.cancelled.is_set() and now - self._asked > CHECK_SECONDS:
            self._asked = now
            with self.db.session(write=False) as s:
                if repo.cancel_requested(s, self.run_id):
                    self.cancelled.set()
        if self.cancelled.is_set():
            raise RunCancelled(f"run {self.run_id} was cancelled")


def claim(db: Database, *, lease_seconds: float = LEASE_SECONDS) -> Run | None:
    """The oldest queued run (or a queue run whose worker died), now leased to this
    process; None when there is nothing to do."""
    owner = owner_id()
    with db.session() as s:
        for run in repo.claimable_runs(s, limit=1):
            repo.take_run(s, run, owner, lease_seconds)
            return run
        host = socket.gethostname() + ":"
        for run in repo.running_queue_runs(s, host):
            if _dead_here(run.owner):
                repo.take_run(s, run, owner, lease_seconds)
                return run
    return None


def expire_abandoned(db: Database) -> int:
    """Mark directly started runs whose process is gone (this host: pid gone; any host:
    lease expired long ago) as failed; returns how many."""
    from bildwerk.catalog.models import utcnow

    now = utcnow()
    with db.session() as s:
        dead = [
            r.id
            for r in repo.stale_direct_runs(s)
            if _dead_here(r.owner) or (r.lease_until is not None and _aware(r.lease_until) < now)
        ]
        if dead:
            repo.expire_abandoned_runs(s, dead)
    return len(dead)


def _aware(value: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
