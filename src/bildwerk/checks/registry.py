"""QA checks by name: the ``checks`` kind of :mod:`bildwerk.registry` (entry-point group
``bildwerk.checks``), under the names the QA stage has always used."""

from __future__ import annotations

from bildwerk.checks.base import Check
from bildwerk.registry import checks

CHECK_GROUP = checks.group
DEFAULT_CHECKS = checks.defaults


def check_names() -> list[str]:
    """Built-in checks in their fixed order, then plugins' checks sorted by name."""
    return checks.names()


def get_check(name: str) -> Check:
    """One instance per process, so model-backed checks load their models once."""
    return checks.get(name)
