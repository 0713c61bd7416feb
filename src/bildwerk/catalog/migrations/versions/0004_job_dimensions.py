"""job dimensions: segment, locale, channel, backend, model as indexed columns; slot values

The dimensions experiments and the web app filter and aggregate on used to live only
inside ``jobs.spec`` JSON. They become indexed columns, and each slot name/value a row of
``job_slots``; existing catalogs are back-filled from the stored specs.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DIMENSIONS = ("segment", "locale", "channel", "backend", "model")


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        for name in DIMENSIONS:
            batch_op.add_column(sa.Column(name, sa.String(length=128), nullable=True))
            batch_op.create_index(f"ix_jobs_{name}", [name])
    op.create_table(
        "job_slots",
        sa.Column("job_key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=512), nullable=False),
        sa.ForeignKeyConstraint(["job_key"], ["jobs.key"]),
        sa.PrimaryKeyConstraint("job_key", "name"),
    )
    op.create_index("ix_job_slots_name_value", "job_slots", ["name", "value"])
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    jobs = sa.table(
        "jobs",
        sa.column("key", sa.String),
        sa.column("spec", sa.JSON),
        *(sa.column(n, sa.String) for n in DIMENSIONS),
    )
    slots = sa.table(
        "job_slots",
        sa.column("job_key", sa.String),
        sa.column("name", sa.String),
        sa.column("value", sa.String),
    )
    rows = conn.execute(sa.select(jobs.c.key, jobs.c.spec)).all()
    slot_rows: list[dict[str, Any]] = []
    for key, spec in rows:
        data = json.loads(spec) if isinstance(spec, str) else dict(spec or {})
        values = {n: data.get(n) for n in DIMENSIONS}
        conn.execute(sa.update(jobs).where(jobs.c.key == key).values(**values))
        slot_rows.extend(
            {"job_key": key, "name": str(n), "value": str(v)}
            for n, v in dict(data.get("slots") or {}).items()
        )
    if slot_rows:
        conn.execute(sa.insert(slots), slot_rows)


def downgrade() -> None:
    op.drop_index("ix_job_slots_name_value", table_name="job_slots")
    op.drop_table("job_slots")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        for name in DIMENSIONS:
            batch_op.drop_index(f"ix_jobs_{name}")
            batch_op.drop_column(name)
