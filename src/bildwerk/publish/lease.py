"""One publisher per target at a time: a lease in the catalog (``target_leases``).

Two ``publish`` calls to one target would each stamp, upload under their own names and
rewrite the target's header record from their own copy: the same creative live twice and
entries lost. The lease serialises them. Its holder (``host:pid``) renews it from a
heartbeat; a holder whose pid is gone on this host is taken over at once, another host's
once its lease ran out. A second publisher waits up to ``wait`` seconds, then fails with
a :class:`TargetBusyError` naming the holder.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import datetime
from types import TracebackType

from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.errors import UserError
from bildwerk.heartbeat import Heartbeat
from bildwerk.runqueue import _dead_here, owner_id

LEASE_SECONDS = 60.0
BEAT_SECONDS = 5.0
POLL_SECONDS = 0.25


class TargetBusyError(UserError):
    """Another process publishes to the target; says who, since when, and what to do."""

    def __init__(self, target: str, owner: str, op: str, since: datetime, waited: float) -> None:
        self.target, self.owner = target, owner
        super().__init__(
            f"target {target!r} is being published by {owner} ({op or 'publish'}) since "
            f"{since:%Y-%m-%d %H:%M:%S} UTC; waited {waited:.0f} s",
            hint="wait for it to finish (or pass --wait SECONDS); a holder that died is "
            "taken over once its lease runs out",
        )


class LeaseLostError(UserError):
    """The lease ran out and another publisher took the target over: stop before
    recording anything."""


class TargetLease:
    """Holds one target's lease while the block runs (see the module doc)."""

    def __init__(
        self,
        db: Database,
        target: str,
        *,
        op: str = "",
        wait: float = 0.0,
        owner: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        beat_seconds: float = BEAT_SECONDS,
        on_wait: Callable[[str], object] | None = None,
    ) -> None:
        self.db, self.target, self.op, self.wait = db, target, op, max(0.0, wait)
        self.owner = owner or owner_id()
        self.lease = lease_seconds
        self.lost = threading.Event()
        self._on_wait = on_wait
        self._heart = Heartbeat(self._renew, min(beat_seconds, lease_seconds / 3), "target-lease")

    def __enter__(self) -> TargetLease:
        start = time.monotonic()
        told = False
        while True:
            with self.db.session() as s:
                held = repo.take_target_lease(
                    s, self.target, self.owner, self.op, self.lease, _dead_here
                )
                holder = (held.owner, held.op, held.acquired_at) if held else None
            if holder is None:
                break
            waited = time.monotonic() - start
            if waited >= self.wait:
                raise TargetBusyError(self.target, *holder, waited)
            if not told and self._on_wait is not None:
                self._on_wait(f"target {self.target!r}: waiting for {holder[0]} ({holder[1]})")
                told = True
            time.sleep(min(POLL_SECONDS, self.wait - waited))
        self._heart.__enter__()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._heart.__exit__(_type, _exc, _tb)
        with self.db.session() as s:
            repo.release_target_lease(s, self.target, self.owner)

    def _renew(self) -> None:
        with self.db.session() as s:
            if not repo.renew_target_lease(s, self.target, self.owner, self.lease):
                self.lost.set()

    def check(self) -> None:
        """Raise :class:`LeaseLostError` if another publisher took the target over."""
        if self.lost.is_set():
            raise LeaseLostError(
                f"target {self.target!r}: the publish lease ran out and another publisher "
                "took over; nothing more was recorded",
                hint="publish again; keep the catalog reachable so the heartbeat can renew it",
            )


def hold_all(
    stack: ExitStack,
    db: Database,
    targets: Sequence[str],
    *,
    op: str,
    wait: float,
    on_wait: Callable[[str], object] | None = None,
) -> dict[str, TargetLease]:
    """Leases on several targets, taken in name order (two publishers never deadlock)."""
    return {
        name: stack.enter_context(TargetLease(db, name, op=op, wait=wait, on_wait=on_wait))
        for name in sorted(set(targets))
    }
