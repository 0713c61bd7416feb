"""The one event stream of a run (or of a QA re-run, a publish, a reproduction).

Every event carries its stream id (the run id, or an operation id), a sequence number
and a time, and is written to the catalog (``stream_events``) in order by the one
process that owns the stream. The CLI's progress bars, ``bildwerk runs watch`` in
another terminal and the web app all read the same events — live through a sink, or
replayed from the catalog — so they show the same thing in the same order.

Progress events are not the audit log: ``events`` keeps who decided what (append-only);
this stream keeps how the work went.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bildwerk.catalog.db import Database

Kind = Literal[
    "run.started",
    "stage.started",
    "job.started",
    "job.cached",
    "job.failed",
    "job.finished",
    "stage.finished",
    "message",
    "run.finished",
]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
END = "run.finished"


@dataclass(frozen=True)
class Event:
    """What happened, where in the stream, and when. ``stage``/``job``/``total`` are set
    for the kinds they belong to; ``data`` carries the rest (counts, errors, status)."""

    kind: str
    stream: str
    seq: int
    at: datetime
    stage: str | None = None
    job: str | None = None
    total: int | None = None
    message: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "stream": self.stream,
            "seq": self.seq,
            "at": self.at.isoformat(),
            "stage": self.stage,
            "job": self.job,
            "total": self.total,
            "message": self.message,
            "data": dict(self.data),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        return cls(
            kind=str(data["kind"]),
            stream=str(data["stream"]),
            seq=int(data["seq"]),
            at=datetime.fromisoformat(str(data["at"])),
            stage=data.get("stage"),
            job=data.get("job"),
            total=data.get("total"),
            message=data.get("message"),
            data=dict(data.get("data") or {}),
        )

    def same_as(self, other: Event) -> bool:
        """Equal in everything but the clock (for comparing a live and a replayed view)."""
        return self.to_json() | {"at": None} == other.to_json() | {"at": None}


EventSink = Callable[[Event], None]


def ignore(_event: Event) -> None:
    return None


def operation_id(kind: str) -> str:
    """A stream id for work that is not a run: ``qa-20261207-101500-1a2b``."""
    return f"{kind}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class EventStream:
    """Numbers, times, forwards and persists one stream's events.

    ``emit`` hands each event to the sink at once and keeps it for the catalog (it never
    writes: it may be called inside the caller's transaction); ``flush(session)`` writes
    what is pending inside the caller's transaction (so a committed creative and its
    events land together), ``flush_now()`` in its own, and ``tick()`` does that when the
    last write is older than ``FLUSH_EVERY`` — call it where no transaction is open. A
    stream that resumes (a reclaimed run) continues after its last stored sequence.
    """

    FLUSH_EVERY = 0.5  # seconds between writes of progress nobody committed with

    def __init__(self, db: Database | None, stream: str, sink: EventSink = ignore) -> None:
        self.db, self.stream, self.sink = db, stream, sink
        self._pending: list[Event] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._seq = 0
        if db is not None:
            from bildwerk.catalog import repo

            with db.session() as s:
                self._seq = repo.last_event_seq(s, stream)

    def emit(self, kind: Kind, **fields: Any) -> Event:
        with self._lock:
            self._seq += 1
            event = Event(kind, self.stream, self._seq, datetime.now(UTC), **fields)
            self._pending.append(event)
        self.sink(event)
        return event

    def tick(self) -> None:
        if time.monotonic() - self._last_flush > self.FLUSH_EVERY:
            self.flush_now()

    def flush(self, s: Session) -> None:
        from bildwerk.catalog import repo

        with self._lock:
            pending, self._pending = self._pending, []
        if pending:
            repo.add_stream_events(s, pending)
        self._last_flush = time.monotonic()

    def flush_now(self) -> None:
        if self.db is None:
            with self._lock:
                self._pending.clear()
            return
        with self.db.session() as s:
            self.flush(s)


def replay(
    db: Database,
    stream: str,
    *,
    follow: bool = False,
    poll: float = 0.25,
    timeout: float | None = None,
) -> Iterator[Event]:
    """A stream's events from the start, in order; with ``follow``, keep polling for new
    ones until its ``run.finished`` (or ``timeout`` seconds without one)."""
    from bildwerk.catalog import repo

    after, started = 0, time.monotonic()
    while True:
        with db.session() as s:
            batch = repo.stream_events(s, stream, after=after)
        for event in batch:
            after = event.seq
            yield event
            if event.kind == END:
                return
        if not follow:
            return
        if timeout is not None and time.monotonic() - started > timeout:
            return
        time.sleep(poll)
