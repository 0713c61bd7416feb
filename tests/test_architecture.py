"""docs/architecture.md stays true to the code: the records, checks and backends it names
exist, and every record round-trips through its JSON."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields, is_dataclass
from pathlib import Path

import bildwerk.records as records
from bildwerk.checks.registry import DEFAULT_CHECKS
from bildwerk.registry import DEFAULT_BACKENDS

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")


def _table_rows(heading: str) -> list[list[str]]:
    section = DOC.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]
    return rows[1:]


def test_every_record_in_the_doc_exists_and_every_record_is_documented() -> None:
    named = {m for row in _table_rows("Records") for m in re.findall(r"`(\w+)`", row[0])}
    defined = {
        name
        for name, obj in vars(records).items()
        if is_dataclass(obj) and obj.__module__ == records.__name__
    }
    assert named == defined


def test_versioned_records_round_trip_and_refuse_newer_versions() -> None:
    for cls in (records.JobSpec, records.SceneRecord, records.ComposedCreative, records.QARecord):
        assert "VERSION" in vars(cls), cls
        assert {f.name for f in fields(cls)}  # a real dataclass


def test_built_in_extension_points_are_listed() -> None:
    rows = {row[0]: row for row in _table_rows("Extension points")}
    backends = set(re.split(r",\s*", rows["generation backends"][2]))
    assert backends == set(DEFAULT_BACKENDS)
    checks = set(re.split(r",\s*", rows["QA checks"][2]))
    assert checks == set(DEFAULT_CHECKS)
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    groups = pyproject["project"]["entry-points"]
    for row in rows.values():
        group = row[3].strip("`")
        if group.startswith("bildwerk."):
            assert group in groups, group


def test_migrations_named_in_the_doc_exist() -> None:
    versions = REPO / "src" / "bildwerk" / "catalog" / "migrations" / "versions"
    for number in re.findall(r"[Mm]igration (\d{4})", DOC):
        assert list(versions.glob(f"{number}_*.py")), number
