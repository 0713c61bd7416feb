"""People's decisions as use cases: the review queue, approve or reject one creative,
approve a run's whole queue (leaving out what no check could verify)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bildwerk.accounts.governance import Actor, check_approval
from bildwerk.catalog import repo
from bildwerk.errors import UserError
from bildwerk.records import QARecord
from bildwerk.stages.gate import GATE
from bildwerk.usecases.rows import creative_asset

if TYPE_CHECKING:
    from bildwerk.workspace import Workspace

REVIEWABLE = ("needs_review", "queued")
PERSON_STATES = ("approved", "rejected", "needs_review")


def review(ws: Workspace, run_id: str, *, all_states: bool = False) -> list[dict[str, Any]]:
    """The run's review queue: creatives waiting for a person (or every decision)."""
    info = ws.run_info(run_id)
    with ws.db.session() as s:
        jobs = repo.done_jobs(s, [j["job_key"] for j in info["jobs"]])
        ids = [j.creative_id for j in jobs.values()]
        current = repo.current_decisions(s, ids)
        rows = []
        for job in jobs.values():
            d = current.get(job.creative_id)
            if d is None or (not all_states and d.state not in REVIEWABLE):
                continue
            qa = QARecord.from_json(job.qa)
            rows.append(
                {
                    "id": job.creative_id,
                    "state": d.state,
                    "score": d.score,
                    "rank": d.rank,
                    "reasons": d.reasons,
                    "actor": d.actor,
                    "at": d.at.isoformat(),
                    "channel": job.channel,
                    "segment": job.segment,
                    "locale": job.locale,
                    "qa": qa.status,
                    "unchecked": [c.name for c in qa.checks if c.verdict == "unchecked"],
                }
            )
    rows.sort(
        key=lambda r: (
            r["channel"],
            r["segment"] or "",
            r["locale"] or "",
            r["rank"] or 1 << 30,
            r["id"],
        )
    )
    return rows


def decide(
    ws: Workspace,
    asset_id: str,
    state: str,
    *,
    actor: str,
    reason: str | None = None,
    override: bool = False,
    governed: Actor | None = None,
) -> dict[str, Any]:
    """Record a person's approval or rejection, with who and when, in the event log.
    ``governed`` decisions follow the workspace's separation of duties."""
    if state not in PERSON_STATES:
        raise UserError(f"unknown decision {state!r}", hint=f"use one of {PERSON_STATES}")
    if state == "rejected" and not (reason or "").strip():
        raise UserError("a rejection needs a reason", hint="pass --reason '...'")
    with ws.db.session() as s:
        asset = creative_asset(s, asset_id)
        before = repo.current_decisions(s, [asset.id]).get(asset.id)
        if governed is not None and state == "approved":
            check_approval(s, ws.settings.governance, governed, asset.id, override=override,
                           reason=reason or "")  # fmt: skip
        if (
            state == "approved"
            and before is not None
            and before.state == "rejected"
            and not override
        ):
            raise UserError(
                f"{asset.id} was rejected ({'; '.join(before.reasons) or 'no reason'})",
                hint="fix and re-run, or pass --override --reason '...' to approve anyway",
            )
        d = repo.add_decision(
            s,
            asset.id,
            state,
            score=before.score if before else None,
            rank=before.rank if before else None,
            reasons=[reason] if reason else [],
            actor=actor,
            run_id=before.run_id if before else None,
        )
        return {
            "id": asset.id,
            "state": d.state,
            "actor": d.actor,
            "reasons": d.reasons,
            "previous": before.state if before else None,
        }


def undo(ws: Workspace, asset_id: str, *, actor: str) -> dict[str, Any]:
    """Take back ``actor``'s latest decision on a creative: the state before it comes
    back as a new decision (the log keeps both; nothing is erased)."""
    with ws.db.session() as s:
        asset = creative_asset(s, asset_id)
        history = repo.decisions_of(s, asset.id)
        if not history or history[-1].actor != actor or history[-1].actor == GATE:
            raise UserError(
                f"{asset.id}: the latest decision is not yours to undo",
                hint="decide it again instead (approve or reject)",
            )
        last = history[-1]
        earlier = history[-2] if len(history) > 1 else None
        state = earlier.state if earlier else "needs_review"
        d = repo.add_decision(
            s, asset.id, state, score=last.score, rank=last.rank, actor=actor,
            reasons=[f"undo: {last.state}" + (f" ({'; '.join(last.reasons)})" if last.reasons
                                              else "")],
            run_id=last.run_id,
        )  # fmt: skip
        return {"id": asset.id, "state": d.state, "actor": actor, "reasons": d.reasons,
                "previous": last.state}  # fmt: skip


def approve_run(
    ws: Workspace,
    run_id: str,
    *,
    actor: str,
    include_review: bool,
    include_unchecked: bool = False,
    reason: str | None = None,
    governed: Actor | None = None,
) -> RunApproval:
    """Approve a run's whole queue at once (after looking at its contact sheet);
    ``include_review`` also approves what the gate flagged for a person. Creatives
    a check could not verify are left out unless ``include_unchecked``; then the
    ones the gate rejected only because a required check could not run are approved
    too, as a recorded override."""
    states = REVIEWABLE if include_review else ("queued",)
    note = reason or "approved with the run's queue"
    approved: list[dict[str, Any]] = []
    left_out: list[str] = []
    for r in ws.review(run_id, all_states=True):
        only_unchecked = (
            r["state"] == "rejected"
            and r["actor"] == GATE
            and bool(r["reasons"])
            and all(_unchecked_reason(x, r["unchecked"]) for x in r["reasons"])
        )
        if r["unchecked"] and (r["state"] in states or only_unchecked):
            if not include_unchecked:
                left_out.append(r["id"])
                continue
            why = f"{note} (checks not run: {', '.join(r['unchecked'])})"
            approved.append(
                ws.decide(
                    r["id"], "approved", actor=actor, reason=why, override=True, governed=governed
                )
            )
        elif r["state"] in states:
            approved.append(
                ws.decide(r["id"], "approved", actor=actor, reason=note, governed=governed)
            )
    return RunApproval(approved, left_out)


@dataclass(frozen=True)
class RunApproval:
    """What ``approve --run`` did: the decisions made and the creatives it left out
    because a check could not verify them."""

    approved: list[dict[str, Any]]
    unchecked_left_out: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"approved": self.approved, "unchecked_left_out": self.unchecked_left_out}


def _unchecked_reason(reason: str, names: list[str]) -> bool:
    """Whether a gate reason names a required check that could not run."""
    return any(reason.startswith(f"{n}: ") for n in names) and "qa.required" in reason
