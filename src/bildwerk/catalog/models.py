"""Catalog tables (SQLAlchemy 2 ORM). The schema itself is owned by Alembic migrations.

Rows refer to blobs by sha256; a row is only committed after its blob is durably stored.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BriefVersion(Base):
    """A brief as it was when a run used it, keyed by the sha256 of its bytes."""

    __tablename__ = "brief_versions"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    path: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    template_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    brief_sha256: Mapped[str] = mapped_column(ForeignKey("brief_versions.sha256"))
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    workers: Mapped[int] = mapped_column(Integer, default=1)
    backend: Mapped[str] = mapped_column(String(64))
    planned: Mapped[int] = mapped_column(Integer, default=0)
    generated: Mapped[int] = mapped_column(Integer, default=0)
    cached: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    manifest_path: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # The run queue (migration 0007): ``queued_at`` marks a run submitted for workers;
    # whoever runs it holds a lease it renews; ``cancel_requested`` asks it to stop.
    queued_at: Mapped[datetime | None] = mapped_column(default=None)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    owner: Mapped[str | None] = mapped_column(String(255), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    jobs: Mapped[list[RunJob]] = relationship(back_populates="run", order_by="RunJob.position")


class Job(Base):
    """A finished unit of work: one creative, keyed by the hash of all its inputs."""

    __tablename__ = "jobs"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), index=True)
    scene_key: Mapped[str] = mapped_column(String(64), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    creative_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    scene_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    qa: Mapped[dict[str, Any]] = mapped_column(JSON)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    first_run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Dimensions people filter and learn on, copied out of ``spec`` (migration 0004).
    segment: Mapped[str | None] = mapped_column(String(128), default=None, index=True)
    locale: Mapped[str | None] = mapped_column(String(128), default=None, index=True)
    channel: Mapped[str | None] = mapped_column(String(128), default=None, index=True)
    backend: Mapped[str | None] = mapped_column(String(128), default=None, index=True)
    model: Mapped[str | None] = mapped_column(String(128), default=None, index=True)
    # What the gallery searches (migration 0012).
    seed: Mapped[int | None] = mapped_column(BigInteger, default=None, index=True)
    prompt: Mapped[str | None] = mapped_column(Text, default=None)
    slots: Mapped[list[JobSlot]] = relationship(order_by="JobSlot.name")


class JobSlot(Base):
    """One slot value of a job (``product=serum``): what experiments attribute effects to."""

    __tablename__ = "job_slots"
    __table_args__ = (Index("ix_job_slots_name_value", "name", "value"),)
    job_key: Mapped[str] = mapped_column(ForeignKey("jobs.key"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(512))


class JobCheck(Base):
    """One check's verdict on a job (``contrast: fail``): what the gallery filters on and
    what QA evaluation counts. Rewritten with the job's QA record (migration 0012)."""

    __tablename__ = "job_checks"
    __table_args__ = (Index("ix_job_checks_name_verdict", "name", "verdict"),)
    job_key: Mapped[str] = mapped_column(ForeignKey("jobs.key"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    verdict: Mapped[str] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(default=None)


class Star(Base):
    """A person's star on a creative: their favourites, kept across sessions."""

    __tablename__ = "stars"
    user: Mapped[str] = mapped_column(String(64), primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), primary_key=True, index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RunJob(Base):
    """What one run did with one planned job: generated, cached or failed."""

    __tablename__ = "run_jobs"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    job_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, default=None)
    run: Mapped[Run] = relationship(back_populates="jobs")


class Asset(Base):
    """An image known to the catalog: imported (product, logo, reference) or produced
    (scene, creative). ``sha256`` names its blob; two creatives may share pixels (the same
    scene and copy for two segments), so it is not unique."""

    __tablename__ = "assets"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    campaign_id: Mapped[str | None] = mapped_column(ForeignKey("campaigns.id"), default=None)
    source: Mapped[str | None] = mapped_column(Text, default=None)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    renditions: Mapped[list[Rendition]] = relationship(
        back_populates="asset", order_by="(Rendition.format, Rendition.width)"
    )


class Rendition(Base):
    __tablename__ = "renditions"
    __table_args__ = (UniqueConstraint("asset_id", "format", "width", name="uq_rendition"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), index=True)
    format: Mapped[str] = mapped_column(String(8))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    quality: Mapped[int] = mapped_column(Integer)
    budget: Mapped[int | None] = mapped_column(Integer, default=None)
    within_budget: Mapped[bool] = mapped_column(default=True)
    watermark: Mapped[str | None] = mapped_column(String(32), default=None)  # payload hex
    asset: Mapped[Asset] = relationship(back_populates="renditions")


class Lineage(Base):
    """``child`` was derived from ``parent`` (a creative from its scene, a scene from a
    product cutout, a creative from the logo)."""

    __tablename__ = "lineage"
    child_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    parent_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    relation: Mapped[str] = mapped_column(String(32), primary_key=True)


class Event(Base):
    """Append-only log of everything that happened; triggers forbid UPDATE and DELETE."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_subject", "subject"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    type: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    subject: Mapped[str | None] = mapped_column(String(128), default=None)
    actor: Mapped[str] = mapped_column(String(128), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ModelEntry(Base):
    """A registered model file or folder: checkpoints, LoRAs, textual inversions,
    ControlNets, upscalers, CLIP. ``sha256`` covers every weight file, so new weights
    mean new job keys."""

    __tablename__ = "models"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    path: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(32))
    architecture: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    license: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text, default="")
    allowed_uses: Mapped[list[Any]] = mapped_column(JSON, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImageHash(Base):
    """Perceptual hashes of scenes and creatives, for near-duplicate search."""

    __tablename__ = "image_hashes"
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    phash: Mapped[int] = mapped_column(BigInteger, index=True)
    colour: Mapped[int] = mapped_column(BigInteger)


class Decision(Base):
    """The gate's and reviewers' decisions about a creative; the newest row is current.
    Every decision is also in the event log with who and when."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), index=True)
    run_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    state: Mapped[str] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(default=None)
    rank: Mapped[int | None] = mapped_column(Integer, default=None)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    actor: Mapped[str] = mapped_column(String(128), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Stamp(Base):
    """Stamped bytes (metadata + signed Content Credentials) of a rendition or master, so
    every target and every re-run publishes the same bytes under the same name: signing
    is not reproducible, and immutable URLs must never change content."""

    __tablename__ = "stamps"
    subject: Mapped[str] = mapped_column(String(128), primary_key=True)  # r:<id> | m:<asset>
    stamp_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Publication(Base):
    """A file on a target: a rendition, or a page/sitemap the target serves. ``state`` is
    ``uploading`` (an intent, recorded before the first byte goes up, so a killed publish
    leaves a row that the next publish or sync takes back), ``published``, ``removing``
    (taken down, the file may still be there) or ``removed``; the event log keeps every
    transition. A page whose bytes are being replaced has an empty ``sha256`` until the
    new bytes are recorded."""

    __tablename__ = "publications"
    __table_args__ = (UniqueConstraint("target", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(1024))
    asset_id: Mapped[str | None] = mapped_column(ForeignKey("assets.id"), index=True)
    rendition_id: Mapped[int | None] = mapped_column(ForeignKey("renditions.id"), default=None)
    url: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    state: Mapped[str] = mapped_column(String(16), default="published")
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # what pages need


class TargetLease(Base):
    """Who publishes to a target now (migration 0008): one publisher per target at a
    time. The holder renews ``lease_until`` from a heartbeat; a holder whose pid is gone
    on this host is taken over at once, another host's once the lease ran out."""

    __tablename__ = "target_leases"
    target: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))  # host:pid
    op: Mapped[str] = mapped_column(String(64), default="")  # "publish RUN", "sync"
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime] = mapped_column()


class AssetRights(Base):
    """Usage rights of a creative: when its licence ends and whether it was revoked.
    ``publish --sync`` takes expired and revoked creatives off every target."""

    __tablename__ = "asset_rights"
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    expires_on: Mapped[date | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    actor: Mapped[str] = mapped_column(String(128), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StreamEvent(Base):
    """One event of a run's (or an operation's) progress stream, in order: ``seq`` is
    gapless per stream, ``at`` keeps microseconds. See :mod:`bildwerk.events`."""

    __tablename__ = "stream_events"
    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column()
    kind: Mapped[str] = mapped_column(String(32))
    stage: Mapped[str | None] = mapped_column(String(32), default=None)
    job: Mapped[str | None] = mapped_column(String(64), default=None)
    total: Mapped[int | None] = mapped_column(Integer, default=None)
    message: Mapped[str | None] = mapped_column(Text, default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class JobClaim(Base):
    """A run's claim on a job it is making, so two runs of one brief make it once. A claim
    whose ``heartbeat_at`` is older than the lease belongs to a run that died: another run
    takes it over."""

    __tablename__ = "job_claims"
    job_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    owner: Mapped[str] = mapped_column(String(255))  # host:pid
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """One link of the tamper-evident audit chain (:mod:`bildwerk.catalog.audit`):
    ``body`` is the entry's canonical JSON (seq, time, type, actor, subject, payload) and
    ``hash`` the SHA-256 of ``prev`` and ``body``. The columns beside ``body`` are copies
    for queries; verification checks them against it."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column()
    type: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(128), default="")
    subject: Mapped[str | None] = mapped_column(String(128), default=None)
    body: Mapped[str] = mapped_column(Text)
    prev: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The chain's last entry (one row, ``id`` 1): appends lock it, so entries are
    numbered and linked one writer at a time."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class User(Base):
    """A person (or a bot account) of the workspace. ``password_hash`` is argon2id; an
    account without one logs in only with API tokens."""

    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    password_hash: Mapped[str | None] = mapped_column(Text, default=None)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128), default="")


class ApiToken(Base):
    """An API token: only its SHA-256 is stored (tokens are 256 random bits, so a fast
    hash is enough); ``prefix`` lets people tell their tokens apart."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    label: Mapped[str] = mapped_column(String(128), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class WebSession(Base):
    """A logged-in browser: the cookie holds 256 random bits, the catalog their SHA-256,
    so a copy of the database opens no session. ``csrf`` is the token its forms send."""

    __tablename__ = "web_sessions"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(ForeignKey("users.name"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
