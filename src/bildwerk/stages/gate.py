"""The gate after QA: near-duplicates, ranking and the review queue for one run.

Duplicates are clustered within the run and checked against creatives already approved
in the catalog for the same campaign and channel; the composite score ranks each
(channel, segment, locale) cell; failing checks reject, warnings and hero assets go to
human review. A decision a person made is never overwritten by the gate on a re-run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Job
from bildwerk.checks.base import CheckResult, overall
from bildwerk.config.qa import QAPolicy
from bildwerk.dedup import PHASH_MAX, ImageHashes, cluster, is_near_duplicate
from bildwerk.hashindex import HashIndex
from bildwerk.records import GateDecision, JobSpec, QARecord
from bildwerk.stages.rank import Candidate, composite_score, rank

GATE = "gate"


def _duplicate_check(
    dup_of: str | None, published: bool, hashed: bool, why: str | None
) -> CheckResult:
    if not hashed:
        reason = why or "no perceptual hash was recorded for this creative"
        return CheckResult("duplicate", "unchecked", None, reason)
    if dup_of is None:
        return CheckResult("duplicate", "pass", 1.0)
    what = "an approved creative" if published else "a better-ranked creative in this run"
    return CheckResult(
        "duplicate", "fail", 0.0, f"near-duplicate of {what} {dup_of}", {"duplicate_of": dup_of}
    )


def _without_duplicate(record: QARecord) -> tuple[QARecord, str | None]:
    """The record before the gate, and why hashing failed when the QA stage said so."""
    failed = next((c for c in record.qa if c.name == "duplicate"), None)
    qa = tuple(c for c in record.qa if c.name != "duplicate")
    return replace(record, qa=qa, gate=()), failed.reason if failed else None


def _missing_required(record: QARecord, spec: JobSpec, policy: QAPolicy) -> tuple[CheckResult, ...]:
    """Required checks with no result at all (an uninstalled plugin) count as unchecked."""
    present = {c.name for c in record.checks} | {"duplicate"}
    return tuple(
        CheckResult(name, "unchecked", None, f"no '{name}' check is installed; it never ran")
        for name in policy.required
        if name not in present and policy.for_check(name, spec.channel_name).enabled
    )


def gate_run(db: Database, run_id: str, job_keys: Sequence[str], policy: QAPolicy) -> None:
    """Decide every finished creative of a run and store the decisions and QA records.

    A creative is compared with approved creatives of its own campaign and channel only:
    a near-duplicate matters where it would compete for the same placement (another
    campaign, or another format, may reuse a look on purpose), and this keeps the gate's
    cost to the campaign's size instead of loading every approved hash in the catalog.
    A creative's campaign is its job's (the campaign whose run first made it: job keys do
    not include the campaign, so another campaign's identical job reuses it)."""
    with db.session() as s:
        jobs = list(repo.done_jobs(s, list(job_keys)).values())
        specs = {j.key: JobSpec.from_json(j.spec) for j in jobs}
        records: dict[str, tuple[QARecord, str | None]] = {}
        for j in jobs:
            record, why = _without_duplicate(QARecord.from_json(j.qa))
            missing = _missing_required(record, specs[j.key], policy)
            records[j.key] = (replace(record, qa=record.qa + missing), why)
        ids = [j.creative_id for j in jobs]
        hashes = repo.hashes_for(s, ids)
        scopes = sorted({_scope(j, specs[j.key]) for j in jobs})
        approved_hashes = repo.approved_hashes_in(s, scopes, exclude=ids)
        current = repo.current_decisions(s, ids)
        scores = {
            j.creative_id: composite_score(
                records[j.key][0].checks, policy, specs[j.key].channel_name
            )
            for j in jobs
        }
        dup_of = _duplicates(jobs, specs, hashes, approved_hashes, scores)
        gated: dict[str, QARecord] = {}
        for job in jobs:
            record, why = records[job.key]
            dup, published = dup_of.get(job.creative_id, (None, False))
            check = _duplicate_check(dup, published, job.creative_id in hashes, why)
            gated[job.key] = replace(record, gate=(check,))
        candidates = [
            Candidate(
                id=job.creative_id,
                channel=specs[job.key].channel_name,
                segment=specs[job.key].segment,
                locale=specs[job.key].locale,
                hero=specs[job.key].hero,
                checks=[c for c in gated[job.key].checks if c.name != "duplicate"]
                + [c for c in gated[job.key].gate if c.verdict == "unchecked"],
                duplicate_of=dup_of.get(job.creative_id, (None, False))[0],
            )
            for job in jobs
        ]
        decisions = {d.id: d for d in rank(candidates, policy)}
        for job in jobs:
            d = decisions[job.creative_id]
            record = gated[job.key]
            updated = replace(
                record,
                status=overall(record.checks),
                score=d.score,
                decision=GateDecision(d.state, d.rank, tuple(d.reasons)),
            )
            repo.set_job_qa(s, job, updated.to_json())
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


def _scope(job: Job, spec: JobSpec) -> tuple[str, str]:
    """Where a creative competes with approved ones: its campaign and channel."""
    return job.campaign_id, job.channel or spec.channel_name


def _duplicates(
    jobs: Sequence[Job],
    specs: dict[str, JobSpec],
    hashes: dict[str, tuple[int, int]],
    approved: dict[str, tuple[tuple[str, str], tuple[int, int]]],
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
        j.creative_id: (specs[j.key].channel_name, specs[j.key].segment, specs[j.key].locale)
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
    indexes: dict[tuple[str, str], HashIndex] = {}
    for asset_id, (scope, (phash, _)) in approved.items():
        indexes.setdefault(scope, HashIndex(radius=PHASH_MAX)).add(asset_id, phash)
    scope_of = {j.creative_id: _scope(j, specs[j.key]) for j in jobs}
    for cid, hashes_of, _score in items:
        index = indexes.get(scope_of[cid])
        if index is None:
            continue
        for other, _dist in index.query(hashes_of.phash):
            if is_near_duplicate(hashes_of, ImageHashes(*approved[other][1])):
                out[cid] = (other, True)
                break
    return out
