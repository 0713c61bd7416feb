"""The run queue as use cases: submit a brief, work the queue, cancel a run."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bildwerk import runqueue
from bildwerk.accounts.governance import Actor, check_quota
from bildwerk.catalog import repo
from bildwerk.catalog.models import Run
from bildwerk.errors import NotFoundError, UserError
from bildwerk.events import EventSink, ignore
from bildwerk.runner import new_run_id, plan_inputs
from bildwerk.runqueue import RunCancelled

if TYPE_CHECKING:
    from bildwerk.workspace import Workspace


def submit(
    ws: Workspace,
    brief: Path | str,
    *,
    workers: int | None = None,
    backend: str | None = None,
    model: str | None = None,
    actor: str = "",
    governed: Actor | None = None,
) -> dict[str, Any]:
    """Check a brief as ``run`` would, then queue it for ``bildwerk worker``; nothing
    else is written, and a queued run survives restarts. ``governed`` submissions count
    against the submitter's quota (images not made before, per 24 hours)."""
    path = Path(brief).expanduser().resolve()
    inputs = ws.read(path, backend=backend, model=model)
    plan = plan_inputs(inputs, lambda c: c.source)
    run_id = new_run_id()
    brief_ = inputs.brief
    with ws.db.session() as s:
        images = len(plan.jobs) - len(repo.done_jobs(s, [j.key for j in plan.jobs]))
        quota = check_quota(s, ws.settings.governance, governed, images) if governed else None
        options = {
            "brief": str(path),
            "workers": workers,
            "backend": backend,
            "model": model,
            "submitted_by": actor,
            "images": images,
        }
        repo.ensure_campaign(s, brief_.campaign, brief_.name)
        repo.ensure_brief_version(
            s,
            sha256=brief_.sha256,
            campaign_id=brief_.campaign,
            path=str(path),
            content=path.read_text(encoding="utf-8"),
            template_sha256=brief_.prompt.sha256,
        )
        repo.enqueue_run(
            s,
            run_id=run_id,
            campaign_id=brief_.campaign,
            brief_sha256=brief_.sha256,
            backend=inputs.backend,
            planned=len(plan.jobs),
            options=options,
            actor=actor,
        )
    return {"run_id": run_id, "planned": len(plan.jobs), "images": images, "brief": str(path),
            "quota": quota}  # fmt: skip


def work(
    ws: Workspace,
    *,
    once: bool = False,
    max_runs: int | None = None,
    poll: float = 2.0,
    workers: int | None = None,
    on_event: EventSink = ignore,
    on_run: Callable[[str, str], None] = lambda run_id, status: None,
) -> list[dict[str, Any]]:
    """Claim and run queued runs (and runs whose worker died) until the queue is
    empty (``once``) or ``max_runs`` ran; a failing run never stops the worker."""
    done: list[dict[str, Any]] = []
    while max_runs is None or len(done) < max_runs:
        runqueue.expire_abandoned(ws.db)
        run = runqueue.claim(ws.db)
        if run is None:
            if once:
                break
            time.sleep(poll)
            continue
        status = run_claimed(ws, run, workers, on_event)
        on_run(run.id, status)
        done.append({"run_id": run.id, "status": status})
    return done


def run_claimed(ws: Workspace, run: Run, workers: int | None, on_event: EventSink) -> str:
    opts = dict(run.options or {})
    try:
        inputs = ws.read(opts["brief"], backend=opts.get("backend"), model=opts.get("model"))
        if inputs.brief.sha256 != run.brief_sha256:
            raise UserError(
                f"{opts['brief']} changed since run {run.id} was submitted",
                hint="submit the brief again ('bildwerk submit'); the queued run is "
                "failed so nothing runs from a brief nobody checked",
            )
        ws._runner(workers or opts.get("workers"), on_event).run(inputs, run_id=run.id)
    except RunCancelled:
        pass
    except Exception as exc:  # recorded on the run; the worker goes on
        with ws.db.session() as s:
            found = s.get(Run, run.id)
            if found is not None and found.status == "running":
                repo.finish_run(s, run.id, manifest_path=None, error=f"{exc}")
    with ws.db.session() as s:
        return s.get_one(Run, run.id).status


def cancel(ws: Workspace, run_id: str, *, actor: str) -> dict[str, Any]:
    """Cancel a queued run, or ask a running one to stop between tasks."""
    with ws.db.session() as s:
        run = repo.get_run(s, run_id)
        if run is None:
            raise NotFoundError(f"no run '{run_id}'", hint="see 'bildwerk runs list'")
        if run.status not in ("queued", "running"):
            raise UserError(
                f"run {run.id} is {run.status}; only queued or running runs can be cancelled"
            )
        run = repo.request_cancel(s, run.id, actor)
        return {
            "run_id": run.id,
            "status": run.status,
            "cancel_requested": run.cancel_requested,
        }
