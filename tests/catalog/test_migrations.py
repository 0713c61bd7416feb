"""Alembic migrations apply and revert cleanly on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, inspect

from bildwerk.catalog.db import _alembic_config


def roundtrip(url: str) -> None:
    cfg = _alembic_config()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        assert {"models", "decisions", "image_hashes", "assets"} <= set(
            inspect(engine).get_table_names()
        )
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        tables = set(inspect(engine).get_table_names())
        assert "models" not in tables and "assets" in tables
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
            command.upgrade(cfg, "head")
        assert "decisions" in set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_sqlite_roundtrip(tmp_path: Path) -> None:
    roundtrip(f"sqlite:///{tmp_path / 'm.db'}")


def test_postgres_roundtrip(postgres_url: str) -> None:
    roundtrip(postgres_url)
