"""A catalog filled with synthetic creatives: a run of ``n`` jobs with assets, slots, check
verdicts and gate decisions, written with bulk inserts. For query tests and the web
benchmark, where what matters is the rows, not the pixels (no blobs are written)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert

from bildwerk.catalog.db import Database
from bildwerk.catalog.models import (
    Asset,
    BriefVersion,
    Campaign,
    Decision,
    Job,
    JobCheck,
    JobSlot,
    Run,
    RunJob,
    utcnow,
)

CHANNELS = ("web_hero", "feed", "mrec")
SEGMENTS = ("young", "pro")
LOCALES = ("en-US", "de-DE", "ja-JP")
CHECKS = ("contrast", "legibility", "brand_colour", "logo")


def fill_run(
    db: Database,
    n: int,
    *,
    run_id: str = "run-synthetic",
    campaign: str = "synthetic",
    submitted_by: str = "",
    states: Sequence[str] = ("queued", "needs_review", "rejected"),
) -> list[str]:
    """Add a finished run of ``n`` creatives; returns their ids in job order. Every 7th
    fails contrast, every 5th warns on legibility; slots ``product`` and ``light`` vary."""
    now = utcnow()
    sha = hashlib.sha256(f"{campaign}/{run_id}".encode()).hexdigest()
    jobs: list[dict[str, Any]] = []
    assets: list[dict[str, Any]] = []
    slots: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    decisions: list[dict[str, Any]] = []
    run_jobs: list[dict[str, Any]] = []
    ids: list[str] = []
    for i in range(n):
        key = hashlib.sha256(f"{run_id}/{i}".encode()).hexdigest()
        cid = "cr_" + key[:24]
        ids.append(cid)
        channel, segment, locale = CHANNELS[i % 3], SEGMENTS[(i // 3) % 2], LOCALES[(i // 6) % 3]
        verdicts = {
            "contrast": "fail" if i % 7 == 0 else "pass",
            "legibility": "warn" if i % 5 == 0 else "pass",
            "brand_colour": "pass",
            "logo": "pass",
        }
        status = "fail" if i % 7 == 0 else "warn" if i % 5 == 0 else "pass"
        qa = {"v": 1, "status": status, "score": 0.5 + (i % 10) / 20,
              "checks": [{"name": c, "verdict": v, "stage": "qa", "score": None}
                         for c, v in verdicts.items()]}  # fmt: skip
        product, light = ("serum", "cream", "oil")[i % 3], ("dawn", "noon", "dusk")[(i // 9) % 3]
        assets.append({"id": cid, "kind": "creative", "sha256": key, "width": 1080,
                       "height": 1350, "format": "png", "campaign_id": campaign, "meta": {},
                       "created_at": now})  # fmt: skip
        jobs.append({"key": key, "campaign_id": campaign, "scene_key": key, "spec": {},
                     "creative_id": cid, "scene_id": cid, "qa": qa, "duration_ms": 100,
                     "first_run_id": run_id, "created_at": now, "segment": segment,
                     "locale": locale, "channel": channel, "backend": "studio",
                     "model": "studio-v1" if i % 2 else "sd15-tiny", "seed": 1000 + i,
                     "prompt": f"{product} bottle on a marble plinth at {light}"})  # fmt: skip
        slots += [{"job_key": key, "name": "product", "value": product},
                  {"job_key": key, "name": "light", "value": light}]  # fmt: skip
        checks += [{"job_key": key, "stage": "qa", "name": c, "verdict": v, "score": None}
                   for c, v in verdicts.items()]  # fmt: skip
        state = "rejected" if i % 7 == 0 else states[i % len(states)]
        decision = {"asset_id": cid, "run_id": run_id, "state": state, "rank": i // 18 + 1}
        decisions.append({**decision, "score": qa["score"], "reasons": [], "actor": "gate",
                          "at": now})  # fmt: skip
        run_jobs.append({"run_id": run_id, "job_key": key, "position": i, "status": "generated"})
    with db.session() as s:
        if s.get(Campaign, campaign) is None:
            s.add(Campaign(id=campaign, name=campaign))
        if s.get(BriefVersion, sha) is None:
            s.add(BriefVersion(sha256=sha, campaign_id=campaign, path="brief.yaml", content="",
                               template_sha256=sha))  # fmt: skip
        s.add(Run(id=run_id, campaign_id=campaign, brief_sha256=sha, status="done",
                  backend="studio", planned=n, generated=n, finished_at=now,
                  options={"submitted_by": submitted_by} if submitted_by else {}))  # fmt: skip
        s.flush()
        for model, rows in ((Asset, assets), (Job, jobs), (JobSlot, slots), (JobCheck, checks),
                            (Decision, decisions), (RunJob, run_jobs)):  # fmt: skip
            for start in range(0, len(rows), 1000):
                s.execute(insert(model), rows[start : start + 1000])
        s.commit()
    return ids
