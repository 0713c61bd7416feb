"""The QA check protocol and its result type.

Every check returns a :class:`CheckResult`; evidence (boxes, colours, measurements) is
plain JSON so the catalog, the manifest and the report can store and draw it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Verdict = Literal["pass", "warn", "fail", "skip"]
_ORDER: dict[str, int] = {"skip": 0, "pass": 1, "warn": 2, "fail": 3}


@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: Verdict
    score: float | None = None
    reason: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def overall(results: list[CheckResult]) -> Literal["pass", "warn", "fail", "pending"]:
    """The worst verdict wins; no checks at all means QA is still pending."""
    if not results:
        return "pending"
    worst = max(results, key=lambda r: _ORDER[r.verdict]).verdict
    return "pass" if worst == "skip" else worst
