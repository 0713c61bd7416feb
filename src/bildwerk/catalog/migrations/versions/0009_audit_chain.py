"""tamper-evident audit chain: audit_log (append-only, hash-linked) and audit_head

Audited events already in the event log are chained in their order, so the chain covers
a catalog's whole history, not just what happens after the upgrade.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

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
    _append_only()


def _append_only() -> None:
    """Like the event log, the chain refuses edits and deletes in the database itself;
    the hashes catch whoever drops the trigger first."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION bildwerk_audit_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'the audit log is append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION bildwerk_audit_append_only()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS bildwerk_audit_append_only()")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_log_type", table_name="audit_log")
    op.drop_table("audit_log")
