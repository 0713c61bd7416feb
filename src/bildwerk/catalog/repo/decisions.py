"""The gate's and people's decisions about creatives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from bildwerk.catalog.models import (
    Decision,
    ImageHash,
    Job,
)
from bildwerk.catalog.repo.assets import unsigned64
from bildwerk.catalog.repo.base import (
    chunks,
    log_event,
)

if TYPE_CHECKING:
    pass


def add_decision(
    s: Session,
    asset_id: str,
    state: str,
    *,
    run_id: str | None = None,
    score: float | None = None,
    rank: int | None = None,
    reasons: Sequence[str] = (),
    actor: str = "gate",
) -> Decision:
    decision = Decision(
        asset_id=asset_id,
        run_id=run_id,
        state=state,
        score=score,
        rank=rank,
        reasons=list(reasons),
        actor=actor,
    )
    s.add(decision)
    log_event(
        s,
        f"decision.{state}",
        run_id=run_id,
        subject=asset_id,
        actor=actor,
        payload={"score": score, "rank": rank, "reasons": list(reasons)},
    )
    return decision


def current_decisions(s: Session, asset_ids: Sequence[str]) -> dict[str, Decision]:
    """The newest decision per asset."""
    out: dict[str, Decision] = {}
    for chunk in chunks(list(dict.fromkeys(asset_ids))):
        q = select(Decision).where(Decision.asset_id.in_(chunk)).order_by(Decision.id)
        for d in s.scalars(q):
            out[d.asset_id] = d
    return out


def decisions_of(s: Session, asset_id: str) -> list[Decision]:
    """Every decision on one asset, oldest first."""
    return list(
        s.scalars(select(Decision).where(Decision.asset_id == asset_id).order_by(Decision.id))
    )


def approved_hashes_in(
    s: Session, scopes: Sequence[tuple[str, str]], exclude: Sequence[str] = ()
) -> dict[str, tuple[tuple[str, str], tuple[int, int]]]:
    """Creatives approved (or published) in the given (campaign id, channel) scopes, with
    their scope and perceptual hashes, in one query per campaign. Starts from ``jobs``
    (indexed ``campaign_id`` and ``channel``) and keeps a decision only when no newer one
    exists for its asset (index on ``decisions.asset_id``), so the cost follows the size
    of the campaign, not of the catalog."""
    by_campaign: dict[str, set[str]] = {}
    for campaign, channel in scopes:
        by_campaign.setdefault(campaign, set()).add(channel)
    excluded = set(exclude)
    out: dict[str, tuple[tuple[str, str], tuple[int, int]]] = {}
    for campaign, channels in sorted(by_campaign.items()):
        latest = aliased(Decision)
        newer = select(Decision.id).where(
            Decision.asset_id == latest.asset_id, Decision.id > latest.id
        )
        q = (
            select(Job.creative_id, Job.campaign_id, Job.channel, ImageHash.phash, ImageHash.colour)
            .join(latest, latest.asset_id == Job.creative_id)
            .join(ImageHash, ImageHash.asset_id == Job.creative_id)
            .where(
                Job.campaign_id == campaign,
                Job.channel.in_(sorted(channels)),
                latest.state.in_(["approved", "published"]),
                ~newer.exists(),
            )
        )
        for cid, camp, chan, phash, colour in s.execute(q):
            if cid not in excluded:
                out[cid] = ((camp, chan or ""), (unsigned64(phash), unsigned64(colour)))
    return out
