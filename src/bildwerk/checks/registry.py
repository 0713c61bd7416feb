"""QA checks by name. Built-ins are registered exactly like plugins: through the
``bildwerk.checks`` entry-point group, with this default table as the fallback."""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from bildwerk.checks.base import Check
from bildwerk.errors import UserError

CHECK_GROUP = "bildwerk.checks"

DEFAULT_CHECKS: dict[str, str] = {
    "nsfw": "bildwerk.checks.nsfw:NSFWCheck",
    "people": "bildwerk.checks.people:PeopleCheck",
    "legibility": "bildwerk.checks.legibility:LegibilityCheck",
    "contrast": "bildwerk.checks.contrast:ContrastCheck",
    "brand_colour": "bildwerk.checks.brand_colour:BrandColourCheck",
    "logo": "bildwerk.checks.logo:LogoCheck",
    "safe_area": "bildwerk.checks.safe_area:SafeAreaCheck",
    "technical": "bildwerk.checks.technical:TechnicalCheck",
    "clip_score": "bildwerk.checks.clip_score:ClipScoreCheck",
}


def check_names() -> list[str]:
    names = dict.fromkeys(DEFAULT_CHECKS)
    names.update(dict.fromkeys(ep.name for ep in entry_points(group=CHECK_GROUP)))
    return list(names)


@cache
def get_check(name: str) -> Check:
    """One instance per process, so model-backed checks load their models once."""
    target = next(
        (str(ep.value) for ep in entry_points(group=CHECK_GROUP) if ep.name == name),
        DEFAULT_CHECKS.get(name),
    )
    if target is None:
        raise UserError(f"unknown QA check '{name}'", hint=f"use one of: {check_names()}")
    module, _, attr = target.partition(":")
    check: Check = getattr(importlib.import_module(module), attr)()
    return check
