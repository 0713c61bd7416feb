"""Append-only tables for migrations: triggers that make the database itself refuse
``UPDATE`` and ``DELETE`` on a table (SQLite ``RAISE(ABORT)``, a PostgreSQL trigger
function). Names are fixed per table, so later migrations and downgrades can find them."""

from __future__ import annotations

from alembic import op


def create(table: str, message: str, *, function: str) -> None:
    """Make ``table`` append-only; violations fail with ``message``. ``function`` names
    the PostgreSQL trigger function (``<function>()``)."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            f"CREATE FUNCTION {function}() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{message}'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {function}()"
        )


def drop(table: str, *, function: str) -> None:
    """Undo :func:`create` for ``table``."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    elif dialect == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
