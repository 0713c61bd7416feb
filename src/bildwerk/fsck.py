"""Check the blob store against the catalog: missing, corrupt, orphaned, half-written.

Order matters with writers running: the catalog is read first, the store listed after.
Writers store a blob before they commit the row naming it, so every row seen already has
its blob in the listing (no false "missing"); a blob stored after the catalog was read
may look orphaned, which is why orphans are pruned only when asked and only once older
than a grace period.

Repair does what is safe: stale temp files are swept, corrupt blobs are moved to
quarantine (evidence kept; the next run regenerates them), orphans go only with
``prune_orphans``. Missing blobs cannot be repaired here: the report names the rows that
need them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bildwerk.blobs.base import BlobCorruptError, BlobMissingError, BlobStore
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Asset, Rendition, Stamp

ORPHAN_GRACE = timedelta(hours=1)
MAX_REFS = 20  # rows named per digest in a report; the count is always complete
BATCH = 1000


@dataclass(frozen=True)
class Ref:
    """A catalog row that names a blob."""

    table: str
    row: str
    asset_id: str | None


@dataclass(frozen=True)
class MissingBlob:
    digest: str
    where: str
    refs: tuple[Ref, ...]
    ref_count: int


@dataclass(frozen=True)
class CorruptBlob:
    digest: str
    where: str
    actual: str
    refs: tuple[Ref, ...]
    ref_count: int
    quarantined_to: str | None = None
    healed: bool = False  # a verified copy (a remote store's cache) was put back


@dataclass(frozen=True)
class OrphanBlob:
    digest: str
    age_seconds: float | None
    pruned: bool = False


@dataclass(frozen=True)
class FsckReport:
    store: str
    referenced: int  # distinct digests the catalog names
    stored: int  # digests in the store
    missing: tuple[MissingBlob, ...] = ()
    corrupt: tuple[CorruptBlob, ...] = ()
    orphans: tuple[OrphanBlob, ...] = ()
    stale_temps: tuple[str, ...] = ()
    temps_removed: int = 0
    repaired: bool = False
    errors: tuple[str, ...] = field(default=())  # what could not be checked

    @property
    def problems(self) -> int:
        """What still needs attention: missing blobs (including quarantined, not yet
        regenerated ones), corrupt blobs left in place, stale temps left, unchecked
        blobs. Orphans only waste space and are not counted."""
        corrupt_left = sum(1 for c in self.corrupt if c.quarantined_to is None)
        temps_left = max(0, len(self.stale_temps) - self.temps_removed)
        needed = sum(1 for c in self.corrupt if c.quarantined_to and not c.healed)
        return len(self.missing) + corrupt_left + needed + temps_left + len(self.errors)

    @property
    def clean(self) -> bool:
        return self.problems == 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = self.problems
        data["clean"] = self.clean
        return data


def referenced_digests(db: Database) -> dict[str, tuple[list[Ref], int]]:
    """digest -> (first MAX_REFS rows naming it, how many rows), from assets, renditions
    and stamps; streamed in batches, one query per table."""
    refs: dict[str, tuple[list[Ref], int]] = {}

    def add(digest: str, ref: Ref) -> None:
        rows, count = refs.get(digest, ([], 0))
        if len(rows) < MAX_REFS:
            rows.append(ref)
        refs[digest] = (rows, count + 1)

    queries: Iterable[tuple[str, Any]] = (
        ("assets", select(Asset.sha256, Asset.id, Asset.id)),
        ("renditions", select(Rendition.sha256, Rendition.id, Rendition.asset_id)),
        ("stamps", select(Stamp.sha256, Stamp.subject, Stamp.subject)),
    )
    with db.session() as s:
        for table, query in queries:
            result = s.execute(query.execution_options(yield_per=BATCH))
            for digest, row, owner in result:
                add(str(digest), Ref(table, str(row), _asset_of(table, str(owner))))
    return refs


def _asset_of(table: str, owner: str) -> str | None:
    if table != "stamps":
        return owner
    return owner[2:] if owner.startswith("m:") else None  # r:<rendition id> has no asset


def _check(store: BlobStore, digest: str) -> BlobMissingError | BlobCorruptError | None:
    try:
        store.verify(digest)
    except (BlobMissingError, BlobCorruptError) as exc:
        return exc
    return None


def fsck(
    db: Database,
    store: BlobStore,
    *,
    repair: bool,
    prune_orphans: bool = False,
    orphan_grace: timedelta = ORPHAN_GRACE,
    workers: int = 4,
) -> FsckReport:
    """Check every blob the catalog names (re-hashing it in the store) and every blob
    the store holds; with ``repair``, fix what is safe (see the module docstring)."""
    refs = referenced_digests(db)  # before listing the store: see the module docstring
    stored = set(store.iter_digests())
    temps = tuple(store.stale_temps())
    removed = store.sweep_temp() if repair and temps else 0

    missing: list[MissingBlob] = []
    corrupt: list[CorruptBlob] = []
    errors: list[str] = []
    present = sorted(d for d in refs if d in stored)
    for digest in sorted(d for d in refs if d not in stored):
        rows, count = refs[digest]
        gone = _check(store, digest)  # also names where it was expected
        if isinstance(gone, BlobMissingError):
            missing.append(MissingBlob(digest, gone.where, tuple(rows), count))
        elif isinstance(gone, BlobCorruptError):
            corrupt.append(_corrupt(store, gone, rows, count, repair=repair))
        # None: stored since the listing, and verified
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(lambda d: _check(store, d), present))
    for digest, problem in zip(present, results, strict=True):
        rows, count = refs[digest]
        if isinstance(problem, BlobMissingError):  # deleted since the listing
            missing.append(MissingBlob(digest, problem.where, tuple(rows), count))
        elif isinstance(problem, BlobCorruptError):
            corrupt.append(_corrupt(store, problem, rows, count, repair=repair))

    orphans = list(_orphans(store, stored - refs.keys(), prune_orphans, orphan_grace, errors))
    return FsckReport(
        store=store.url,
        referenced=len(refs),
        stored=len(stored),
        missing=tuple(missing),
        corrupt=tuple(corrupt),
        orphans=tuple(orphans),
        stale_temps=temps,
        temps_removed=removed,
        repaired=repair,
        errors=tuple(errors),
    )


def _corrupt(
    store: BlobStore, exc: BlobCorruptError, rows: list[Ref], count: int, *, repair: bool
) -> CorruptBlob:
    found = CorruptBlob(exc.digest, exc.where, exc.actual, tuple(rows), count)
    if not repair:
        return found
    moved = store.quarantine(exc.digest)
    healed = _check(store, exc.digest) is None
    return CorruptBlob(
        found.digest, found.where, found.actual, found.refs, count, moved, healed=healed
    )


def _orphans(
    store: BlobStore,
    digests: set[str],
    prune: bool,
    grace: timedelta,
    errors: list[str],
) -> Iterator[OrphanBlob]:
    now = datetime.now(UTC)
    for digest in sorted(digests):
        try:
            age: float | None = (now - store.modified(digest)).total_seconds()
        except BlobMissingError:
            continue  # gone since the listing
        except Exception:  # no modification time: never old enough to prune
            age = None
        if prune and age is not None and age >= grace.total_seconds():
            try:
                store.delete(digest)
            except Exception as exc:  # reported, not fatal: the rest of the check stands
                errors.append(f"could not prune orphan {digest}: {exc}")
                yield OrphanBlob(digest, age)
                continue
            yield OrphanBlob(digest, age, pruned=True)
        else:
            yield OrphanBlob(digest, age)
