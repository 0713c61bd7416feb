"""Rank stage: one composite score per creative, then the gate that decides what a person
reviews.

Blocking verdicts and near-duplicates are rejected outright, so reviewers never see them.
The rest compete only within their (channel, segment, locale) cell, because that is the
slot a creative will fill: the top ``policy.top_k`` of each cell go to the approval
queue, the others are held. Warnings and hero assets (LCP images, where a mistake is
most visible) always get a person's eyes, and so does whatever a check could not verify
(``unchecked``); a required check that could not run rejects. Everything is a pure
function of the inputs: ties fall back to the id, never to input order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from bildwerk.checks.base import CheckResult
from bildwerk.config.qa import QAPolicy

State = Literal["rejected", "needs_review", "queued", "held"]
HERO_REASON = "hero asset: a person approves it"


@dataclass(frozen=True)
class Candidate:
    """A creative after QA and dedup. ``duplicate_of`` names the cluster's keeper when
    this one is a near-duplicate that lost."""

    id: str
    channel: str
    segment: str = ""
    locale: str = ""
    hero: bool = False
    checks: Sequence[CheckResult] = ()
    duplicate_of: str | None = None

    @property
    def cell(self) -> tuple[str, str, str]:
        return (self.channel, self.segment, self.locale)


@dataclass(frozen=True)
class Decision:
    """The gate's verdict. ``rank`` is 1-based within the cell among the creatives not
    rejected (None when rejected); ``score`` is None when no check gave a score."""

    id: str
    state: State
    score: float | None
    rank: int | None
    reasons: list[str] = field(default_factory=list)


def composite_score(checks: Sequence[CheckResult], policy: QAPolicy, channel: str) -> float | None:
    """Weighted mean of the check scores, weights from the policy (channel overrides
    included). Skipped, disabled, unscored and zero-weight checks do not count."""
    total = weights = 0.0
    for check in checks:
        if check.verdict == "skip" or check.score is None or not math.isfinite(check.score):
            continue
        setting = policy.for_check(check.name, channel)
        if not setting.enabled or setting.weight == 0:
            continue
        total += setting.weight * check.score
        weights += setting.weight
    return total / weights if weights else None


def _order(score: float | None, id_: str) -> tuple[float, str]:
    """Score descending (unscored last), then id."""
    return (-score if score is not None else math.inf, id_)


def _why(check: CheckResult) -> str:
    return f"{check.name}: {check.reason or check.verdict}"


def rank(candidates: Sequence[Candidate], policy: QAPolicy) -> list[Decision]:
    """Decide every candidate. Output is ordered by cell, then rank (rejected last), and
    does not depend on the order of ``candidates``."""
    ids = [c.id for c in candidates]
    if len(set(ids)) != len(ids):
        raise ValueError("rank() needs unique candidate ids")
    scores = {c.id: composite_score(c.checks, policy, c.channel) for c in candidates}
    decisions: list[tuple[tuple[str, str, str], int, Decision]] = []
    cells: dict[tuple[str, str, str], list[Candidate]] = {}
    for c in candidates:
        counted = [check for check in c.checks if policy.for_check(check.name, c.channel).enabled]
        reasons = [_why(check) for check in counted if check.verdict in policy.block]
        reasons += [
            f"{_why(check)} (required by the brand's qa.required)"
            for check in counted
            if check.verdict == "unchecked" and check.name in policy.required
        ]
        if c.duplicate_of is not None:
            reasons.append(f"near-duplicate of {c.duplicate_of}")
        if reasons:
            decision = Decision(c.id, "rejected", scores[c.id], None, reasons)
            decisions.append((c.cell, 1, decision))
        else:
            cells.setdefault(c.cell, []).append(c)
    for cell, members in cells.items():
        members.sort(key=lambda c: _order(scores[c.id], c.id))
        for position, c in enumerate(members, start=1):
            decisions.append((cell, 0, _admit(c, position, scores[c.id], policy)))
    decisions.sort(key=lambda t: (t[0], t[1], t[2].rank or 0, _order(t[2].score, t[2].id)))
    return [d for _, _, d in decisions]


def _admit(c: Candidate, position: int, score: float | None, policy: QAPolicy) -> Decision:
    """State of a creative that passed the gate, from its place in the cell."""
    if position > policy.top_k:
        where = "/".join(part or "-" for part in c.cell)
        why = f"not in the top {policy.top_k} of {where} (rank {position})"
        return Decision(c.id, "held", score, position, [why])
    warnings = [
        _why(check)
        for check in c.checks
        if check.verdict in ("warn", "unchecked")
        and policy.for_check(check.name, c.channel).enabled
    ]
    if c.hero:
        warnings.append(HERO_REASON)
    state: State = "needs_review" if warnings else "queued"
    return Decision(c.id, state, score, position, warnings)
