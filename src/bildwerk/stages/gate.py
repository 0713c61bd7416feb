"""The gate after QA: near-duplicates, ranking and the review queue for one run.

Duplicates are clustered within the run and checked against creatives already approved
in the catalog; the composite score ranks each (channel, segment, locale) cell; failing
checks reject, warnings and hero assets go to human review. A decision a person made is
never overwritten by the gate on a re-run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Job
from bildwerk.checks.base import CheckResult, overall
from bildwerk.config.qa import QAPolicy
from bildwerk.dedup import PHASH_MAX, ImageHashes, cluster, is_near_duplicate
from bildwerk.hashindex import HashIndex
from bildwerk.stages.rank import Candidate, composite_score, rank

GATE = "gate"


def _checks(qa: dict[str, Any]) -> list[CheckResult]:
    return [
        CheckResult(
            c["name"], c["verdict"], c.get("score"), c.get("reason"), c.get("evidence") or {}
        )
        for c in qa.get("checks", [])
        if c["name"] != "duplicate"
    ]


def _duplicate_check(dup_of: str | None, published: bool) -> CheckResult:
    if dup_of is None:
        return CheckResult("duplicate", "pass", 1.0)
    what = "an approved creative" if published else "a better-ranked creative in this run"
    return CheckResult(
        "duplicate", "fail", 0.0, f"near-duplicate of {what} {dup_of}", {"duplicate_of": dup_of}
    )


def gate_run(db: Database, run_id: str, job_keys: Sequence[str], policy: QAPolicy) -> None:
    """Decide every finished creative of a run and store the decisions and QA records."""
    with db.session() as s:
        jobs = [j for j in repo.done_jobs(s, list(job_keys)).values()]
        ids = [j.creative_id for j in jobs]
        hashes = repo.hashes_for(s, ids)
        approved = repo.approved_creatives(s, exclude=ids)
        approved_hashes = repo.hashes_for(s, approved) if approved else {}
        current = repo.current_decisions(s, ids)
        scores = {
            j.creative_id: composite_score(_checks(j.qa), policy, j.spec["channel"]) for j in jobs
        }
        dup_of = _duplicates(jobs, hashes, approved_hashes, scores)
        candidates = []
        for job in jobs:
            checks = _checks(job.qa)
            candidates.append(
                Candidate(
                    id=job.creative_id,
                    channel=job.spec["channel"],
                    segment=job.spec.get("segment") or "",
                    locale=job.spec.get("locale") or "",
                    hero=bool(
                        job.spec.get("channel_spec", {}).get("hero")
                        or job.spec.get("channel_spec", {}).get("lcp")
                    ),
                    checks=checks,
                    duplicate_of=dup_of.get(job.creative_id, (None, False))[0],
                )
            )
        decisions = {d.id: d for d in rank(candidates, policy)}
        for job in jobs:
            d = decisions[job.creative_id]
            dup, published = dup_of.get(job.creative_id, (None, False))
            checks = [*_checks(job.qa), _duplicate_check(dup, published)]
            job.qa = {
                **job.qa,
                "status": overall(checks),
                "score": d.score,
                "checks": [c.to_json() for c in checks],
                "decision": {"state": d.state, "rank": d.rank, "reasons": d.reasons},
            }
            before = current.get(job.creative_id)
            if before is not None and before.actor != GATE:
                continue  # a person decided; the gate does not overrule
            if (
                before is not None
                and before.state == d.state
                and before.rank == d.rank
                and before.reasons == list(d.reasons)
            ):
                continue
            repo.add_decision(
                s,
                job.creative_id,
                d.state,
                run_id=run_id,
                score=d.score,
                rank=d.rank,
                reasons=d.reasons,
                actor=GATE,
            )


def _duplicates(
    jobs: Sequence[Job],
    hashes: dict[str, tuple[int, int]],
    approved: dict[str, tuple[int, int]],
    scores: dict[str, float | None],
) -> dict[str, tuple[str, bool]]:
    """creative id → (id it duplicates, whether that one is already approved)."""
    out: dict[str, tuple[str, bool]] = {}
    items = []
    for job in jobs:
        h = hashes.get(job.creative_id)
        if h is None:
            continue
        score = scores.get(job.creative_id)
        score = float("nan") if score is None else score
        items.append((job.creative_id, ImageHashes(*h), score))
    cell_of = {
        j.creative_id: (j.spec["channel"], j.spec.get("segment"), j.spec.get("locale"))
        for j in jobs
    }
    cells: dict[Any, list[tuple[str, ImageHashes, float]]] = {}
    for item in items:
        cells.setdefault(cell_of[item[0]], []).append(item)
    # Locale and segment versions of one scene look alike on purpose; duplicates are
    # variants competing for the same review slot, i.e. within one cell.
    for members in cells.values():
        for group in cluster(members):
            for dup in group.duplicates:
                out[dup] = (group.keep, False)
    if approved:
        index = HashIndex(radius=PHASH_MAX)
        for asset_id, (phash, _) in approved.items():
            index.add(asset_id, phash)
        for cid, hashes_of, _score in items:
            for other, _dist in index.query(hashes_of.phash):
                if is_near_duplicate(hashes_of, ImageHashes(*approved[other])):
                    out[cid] = (other, True)
                    break
    return out
