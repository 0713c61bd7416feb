"""The tamper-evident audit trail: a hash chain over every decision, publication, rights
change, run submission and account change.

Each audited event (:func:`is_audited`) becomes an entry in ``audit_log`` in the same
transaction as the change it records (``repo.log_event`` appends both). An entry's body
is its canonical JSON (keys sorted, no whitespace, UTF-8) holding its sequence number,
time, type, actor, subject and payload; its hash is SHA-256 over the previous entry's
hash and that body. So an entry edited, deleted, inserted or moved breaks the chain at
that point, and :func:`verify` names it. Appends lock the one ``audit_head`` row: entries
are numbered and linked one writer at a time, on SQLite and PostgreSQL alike.

Someone who can write the database can still rewrite the whole chain from some entry on,
head included. Against that, keep the head outside the system: ``bildwerk audit head``
prints it, and ``bildwerk audit verify --expect HASH`` checks that an earlier head is
still part of the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from bildwerk.catalog.models import AuditEntry, AuditHead

GENESIS = "0" * 64
"""The ``prev`` of the first entry."""

_AUDITED_PREFIXES = (
    "decision.",  # gate and reviewers
    "run.queued",  # submissions
    "run.cancel",
    "asset.published",
    "asset.unpublished",
    "asset.imported",
    "rights.",
    "publish.",
    "qa.rerun",
    "model.added",
    "model.removed",
    "user.",  # accounts, roles, logins, tokens, settings (the web app)
    "login.",
    "token.",
    "settings.",
    "governance.",  # admin overrides of separation of duties
)


def is_audited(type_: str) -> bool:
    """Whether events of ``type_`` go into the chain. Progress (run started, job done,
    creative made) stays in the event log and the run's stream only."""
    return type_.startswith(_AUDITED_PREFIXES)


def canonical(value: Mapping[str, Any]) -> str:
    """The one JSON text of ``value`` that is hashed: sorted keys, no whitespace, UTF-8
    characters as they are; values JSON cannot hold are written as their ``str``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def link(prev: str, body: str) -> str:
    """An entry's hash: SHA-256 over the previous hash, a newline and the body."""
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


def _iso(at: datetime) -> str:
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


def chain_entries(rows: Sequence[Mapping[str, Any]], seq: int, prev: str) -> list[dict[str, Any]]:
    """``audit_log`` rows for events ``rows`` (at, type, actor, subject, payload),
    numbered after ``seq`` and linked after ``prev``."""
    out = []
    for row in rows:
        seq += 1
        at = row["at"]
        body = canonical(
            {
                "seq": seq,
                "at": _iso(at),
                "type": row["type"],
                "actor": row.get("actor") or "",
                "subject": row.get("subject"),
                "payload": row.get("payload") or {},
            }
        )
        digest = link(prev, body)
        out.append(
            {
                "seq": seq,
                "at": at,
                "type": row["type"],
                "actor": row.get("actor") or "",
                "subject": row.get("subject"),
                "body": body,
                "prev": prev,
                "hash": digest,
            }
        )
        prev = digest
    return out


def append(s: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Chain the audited ones of events ``rows`` after the current head, inside ``s``'s
    transaction (the head row is locked until it commits)."""
    audited = [row for row in rows if is_audited(row["type"])]
    if not audited:
        return
    head = s.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    entries = chain_entries(audited, head.seq, head.hash)
    s.execute(insert(cast(Table, AuditEntry.__table__)), entries)
    head.seq, head.hash = entries[-1]["seq"], entries[-1]["hash"]
    s.flush()


@dataclass(frozen=True)
class Verdict:
    """What :func:`verify` found: ``ok``, or the first entry where the chain breaks and
    what happened there."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    broken_at: int | None = None
    problem: str = ""


def verify(s: Session, *, expect: str | None = None, batch: int = 1000) -> Verdict:
    """Recompute the chain from the first entry; stop at the first that does not hold.

    ``expect``: a head hash kept outside (``bildwerk audit head``) that must still be an
    entry of the chain."""
    head = s.get(AuditHead, 1)
    if head is None:
        return Verdict(False, 0, 0, "", 0, "the audit head row is missing")
    prev, expected, seen_expect = GENESIS, 1, expect is None or expect == GENESIS
    count = 0
    for entry in _entries(s, batch):
        problem = _check(entry, expected, prev)
        if problem:
            return Verdict(False, count, head.seq, head.hash, expected, problem)
        seen_expect = seen_expect or entry.hash == expect
        prev, expected, count = entry.hash, expected + 1, count + 1
    if (head.seq, head.hash) != (count, prev):
        problem = (
            f"the chain ends at entry {count} but its head names entry {head.seq}: "
            "entries at the end were deleted, or the head was edited"
        )
        return Verdict(False, count, head.seq, head.hash, count + 1, problem)
    if not seen_expect:
        problem = f"the kept head {expect} is not in the chain: it was rewritten after it"
        return Verdict(False, count, head.seq, head.hash, None, problem)
    return Verdict(True, count, head.seq, head.hash)


def _entries(s: Session, batch: int) -> Iterable[AuditEntry]:
    """Every entry in ``seq`` order, ``batch`` rows at a time."""
    after = 0
    while True:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(batch)
        ).all()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].seq


def _check(entry: AuditEntry, expected: int, prev: str) -> str:
    """Why ``entry``, found where entry ``expected`` should be, breaks the chain ('')."""
    n = entry.seq
    if n > expected:
        gone = f"entry {expected}" if n == expected + 1 else f"entries {expected}-{n - 1}"
        return f"{gone} deleted: the chain goes from entry {expected - 1} to entry {n}"
    try:
        body = json.loads(entry.body)
        claimed = int(body["seq"])
    except (ValueError, KeyError, TypeError):
        return f"entry {n} edited: its content is not an audit entry any more"
    if link(entry.prev, entry.body) != entry.hash:
        return f"entry {n} edited: its content no longer matches its hash"
    if claimed != n:
        if claimed > n:
            return (
                f"entry {n} is entry {claimed} moved here: entries were deleted and the "
                "rest renumbered, or entries reordered"
            )
        return (
            f"entry {n} is entry {claimed} moved here: an entry was inserted before it "
            "(or entries reordered)"
        )
    columns = {"type": entry.type, "actor": entry.actor, "subject": entry.subject}
    if any(body.get(key) != value for key, value in columns.items()) or body.get("at") != _iso(
        entry.at
    ):
        return f"entry {n} edited: its columns differ from its hashed content"
    if entry.prev != prev:
        return (
            f"entry {n} does not follow entry {n - 1}: one of them was inserted, or edited "
            "and its hash recomputed"
        )
    return ""
