"""review index: check verdicts as rows, prompt and seed as columns, people's stars

The gallery filters on "failed contrast", searches prompts and seeds, and keeps each
reviewer's stars. Verdicts lived only inside each job's QA JSON and prompt and seed
inside its spec; they become indexed rows and columns, back-filled from what is stored.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_checks",
        sa.Column("job_key", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["job_key"], ["jobs.key"]),
        sa.PrimaryKeyConstraint("job_key", "stage", "name"),
    )
    op.create_index("ix_job_checks_name_verdict", "job_checks", ["name", "verdict"])
    op.create_table(
        "stars",
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("asset_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"]),
        sa.PrimaryKeyConstraint("user", "asset_id"),
    )
    op.create_index("ix_stars_asset_id", "stars", ["asset_id"])
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seed", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prompt", sa.Text(), nullable=True))
        batch_op.create_index("ix_jobs_seed", ["seed"])
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    jobs = sa.table(
        "jobs",
        sa.column("key", sa.String),
        sa.column("spec", sa.JSON),
        sa.column("qa", sa.JSON),
        sa.column("seed", sa.BigInteger),
        sa.column("prompt", sa.Text),
    )
    checks = sa.table(
        "job_checks",
        *(sa.column(n, sa.String) for n in ("job_key", "stage", "name", "verdict")),
        sa.column("score", sa.Float),
    )
    rows: list[dict[str, Any]] = []
    for key, spec, qa in conn.execute(sa.select(jobs.c.key, jobs.c.spec, jobs.c.qa)).all():
        spec_ = _json(spec)
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.key == key)
            .values(seed=_int64(spec_.get("seed")), prompt=spec_.get("prompt"))
        )
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for c in _json(qa).get("checks") or ():
            stage = str(c.get("stage") or "qa")
            seen[(stage, str(c["name"]))] = {
                "job_key": key, "stage": stage, "name": str(c["name"]),
                "verdict": str(c["verdict"]), "score": c.get("score"),
            }  # fmt: skip
        rows.extend(seen.values())
    if rows:
        conn.execute(sa.insert(checks), rows)


def _int64(value: Any) -> int | None:
    return value if isinstance(value, int) and -(2**63) <= value < 2**63 else None


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_seed")
        batch_op.drop_column("prompt")
        batch_op.drop_column("seed")
    op.drop_index("ix_stars_asset_id", table_name="stars")
    op.drop_table("stars")
    op.drop_index("ix_job_checks_name_verdict", table_name="job_checks")
    op.drop_table("job_checks")
