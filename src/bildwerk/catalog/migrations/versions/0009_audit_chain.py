"""tamper-evident audit chain: audit_log (append-only, hash-linked) and audit_head

Audited events already in the event log are chained in their order, so the chain covers
a catalog's whole history, not just what happens after the upgrade.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bildwerk.catalog.migrations import append_only

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from bildwerk.catalog.audit import GENESIS, chain_entries, is_audited

    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("prev", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("hash"),
    )
    op.create_index("ix_audit_log_type", "audit_log", ["type"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    bind = op.get_bind()
    events = sa.table(
        "events",
        sa.column("id", sa.Integer),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("type", sa.String),
        sa.column("actor", sa.String),
        sa.column("subject", sa.String),
        sa.column("payload", sa.JSON),
    )
    rows = [
        dict(row._mapping)
        for row in bind.execute(sa.select(events).order_by(events.c.id))
        if is_audited(row.type)
    ]
    entries = chain_entries(rows, 0, GENESIS)
    audit_log = sa.table(
        "audit_log",
        *(sa.column(c) for c in ("seq", "at", "type", "actor", "subject", "body", "prev", "hash")),
    )
    if entries:
        op.bulk_insert(audit_log, entries)
    last = entries[-1] if entries else {"seq": 0, "hash": GENESIS}
    op.bulk_insert(head, [{"id": 1, "seq": last["seq"], "hash": last["hash"]}])
    # the hashes catch whoever drops the trigger first
    append_only.create(
        "audit_log", "the audit log is append-only", function="bildwerk_audit_append_only"
    )


def downgrade() -> None:
    append_only.drop("audit_log", function="bildwerk_audit_append_only")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_log_type", table_name="audit_log")
    op.drop_table("audit_log")
