"""The run use case: plan → generate → compose → render → catalog → manifest → report.

Stages run pipelined on an executor (a scene's compose jobs start as soon as it exists).
Blobs are stored before the catalog rows that reference them, and each creative is
committed in one transaction, so an interrupted run leaves a consistent catalog and a
re-run resumes with the jobs that were not finished.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bildwerk.blobs import BlobStore
from bildwerk.catalog import repo
from bildwerk.catalog.claims import JobClaims
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Run
from bildwerk.errors import DiskFullError
from bildwerk.events import EventSink, EventStream, ignore
from bildwerk.executors.local import make_executor
from bildwerk.inputs import CleanInput, RunInputs
from bildwerk.pipeline import Pipeline, portable
from bildwerk.records import InputRecord
from bildwerk.runqueue import LEASE_SECONDS, RunCancelled, RunLease
from bildwerk.stages.gate import gate_run
from bildwerk.stages.manifest import write_outputs
from bildwerk.stages.plan import InputFile, Job, Plan, make_plan


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    manifest: Path
    report: Path
    planned: int
    generated: int
    cached: int
    failed: int
    errors: dict[str, str] = field(default_factory=dict)
    refused: int = 0
    refusals: dict[str, str] = field(default_factory=dict)  # job id -> the guard's reason


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def plan_inputs(inputs: RunInputs, locate: Callable[[CleanInput], Path]) -> Plan:
    """The run's plan; ``locate`` says where each cleaned product cutout can be read (the
    blob store in a run, the original file in a dry run)."""
    products = {p: InputFile(locate(c), c.sha256) for p, c in inputs.products.items()}
    return make_plan(
        inputs.brief,
        inputs.brand,
        inputs.channels,
        doc=inputs.doc,
        products=products,
        fingerprints=inputs.fingerprints,
        backend=(inputs.backend, inputs.backend_version),
        model=inputs.brief.model,
        guard=inputs.guard,
        generation=inputs.generation,
    )


class Runner:
    """Runs one brief's jobs on an executor, streaming the run's events to ``on_event``
    and into the catalog."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        runs_dir: Path,
        *,
        workers: int,
        on_event: EventSink = ignore,
        root: Path | None = None,
        executor: str | None = None,
    ) -> None:
        self.db, self.blobs, self.runs_dir = db, blobs, runs_dir
        self.workers, self.sink = workers, on_event
        self.root = root
        self.executor_name = executor

    # --- writes before work ------------------------------------------------------------

    def _store_inputs(self, inputs: RunInputs) -> dict[str, str]:
        """Put cleaned inputs in the blob store and catalog; returns sha256 → asset id."""
        ids: dict[str, str] = {}
        items: list[CleanInput] = list(inputs.products.values())
        if inputs.logo:
            items.append(inputs.logo)
        for item in items:
            self.blobs.put(item.png)
        with self.db.session() as s:
            for item in items:
                asset_id = ("pr_" if item.kind == "product" else "lg_") + item.sha256[:24]
                repo.ensure_asset(
                    s,
                    asset_id=asset_id,
                    kind=item.kind,
                    sha256=item.sha256,
                    width=item.width,
                    height=item.height,
                    fmt="png",
                    source=str(item.source),
                    meta=InputRecord(tuple(item.notes)).to_json(),
                )
                ids[item.sha256] = asset_id
        return ids

    def _record_start(self, run_id: str, inputs: RunInputs, plan: Plan, owner: str) -> set[str]:
        """The run's row (new, or a queued/reclaimed one), its brief version, and what is
        cached or refused; returns the keys already made."""
        brief = inputs.brief
        with self.db.session() as s:
            done = set(repo.done_jobs(s, [j.key for j in plan.jobs]))
            made_here = repo.run_jobs_with_status(s, run_id, "generated")
            repo.ensure_campaign(s, brief.campaign, brief.name)
            repo.ensure_brief_version(
                s,
                sha256=brief.sha256,
                campaign_id=brief.campaign,
                path=str(inputs.doc.path),
                content=inputs.doc.path.read_text(encoding="utf-8"),
                template_sha256=brief.prompt.sha256,
            )
            repo.start_run(
                s,
                run_id=run_id,
                campaign_id=brief.campaign,
                brief_sha256=brief.sha256,
                workers=self.workers,
                backend=inputs.backend,
                planned=len(plan.jobs),
                owner=owner,
                lease_seconds=LEASE_SECONDS,
            )
            for job in plan.jobs:
                if job.key in made_here:
                    continue  # made by an earlier attempt of this same run
                if job.key in done:
                    repo.record_run_job(s, run_id, job.key, job.position, "cached")
                elif job.refused:
                    reason = str(job.guard.get("reason") or "refused by the prompt guard")
                    repo.record_run_job(s, run_id, job.key, job.position, "refused", reason)
                    repo.log_event(
                        s,
                        "job.refused",
                        run_id=run_id,
                        subject=job.id,
                        payload={"guard": job.guard},
                    )
        return done

    # --- the run -------------------------------------------------------------------------

    def run(self, inputs: RunInputs, *, run_id: str | None = None) -> RunResult:
        plan_inputs(inputs, lambda c: c.source)  # a brief the plan refuses writes nothing
        input_ids = self._store_inputs(inputs)
        plan = plan_inputs(inputs, lambda c: self.blobs.local_path(c.sha256))
        run_id = run_id or new_run_id()
        lease = RunLease(self.db, run_id)
        done = self._record_start(run_id, inputs, plan, lease.owner)
        stream = EventStream(self.db, run_id, self.sink)
        todo = [j for j in plan.jobs if j.key not in done and not j.refused]
        refused = sum(1 for j in plan.jobs if j.refused and j.key not in done)
        stream.emit(
            "run.started",
            total=len(plan.jobs),
            message=f"run {run_id}: {len(plan.jobs)} creatives planned, "
            f"{len(done)} cached, {len(todo)} to make",
            data={"planned": len(plan.jobs), "cached": len(done), "refused": refused},
        )
        for job in plan.jobs:
            if job.key in done:
                stream.emit("job.cached", job=job.id)
        run_dir = self.runs_dir / run_id
        try:
            with lease:
                errors = self._execute_claimed(run_id, inputs, todo, input_ids, stream, lease)
                gate_run(self.db, run_id, [j.key for j in plan.jobs], inputs.brand.qa)
                manifest, report = write_outputs(self.db, self.blobs, run_id, run_dir, inputs, plan)
        except BaseException as exc:  # a run ends failed or cancelled, never 'running'
            why = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, RunCancelled):
                why = str(exc)
            elif not isinstance(exc, Exception) or isinstance(exc, DiskFullError):
                why = f"interrupted: {why}"  # Ctrl-C, SIGTERM, a full disk: resumable
            self._finish(run_id, stream, None, why)
            raise
        run = self._finish(run_id, stream, manifest, None)
        return RunResult(
            run_id,
            run_dir,
            manifest,
            report,
            run.planned,
            run.generated,
            run.cached,
            run.failed,
            errors,
            refused,
            {
                j.id: str(j.guard.get("reason") or "refused by the prompt guard")
                for j in plan.jobs
                if j.refused and j.key not in done
            },
        )

    def _finish(
        self, run_id: str, stream: EventStream, manifest: Path | None, error: str | None
    ) -> Run:
        with self.db.session() as s:
            run = repo.finish_run(
                s,
                run_id,
                # relative to the workspace, so report/runs show follow a moved workspace
                manifest_path=portable(manifest, self.root) if manifest else None,
                error=error,
            )
            stream.emit(
                "run.finished",
                message=error,
                data={
                    "status": run.status,
                    "generated": run.generated,
                    "cached": run.cached,
                    "failed": run.failed,
                    "manifest": str(manifest) if manifest else None,
                },
            )
            stream.flush(s)
        return run

    # --- one maker per job across concurrent runs ----------------------------------------

    def _execute_claimed(
        self,
        run_id: str,
        inputs: RunInputs,
        todo: list[Job],
        input_ids: dict[str, str],
        stream: EventStream,
        lease: RunLease,
    ) -> dict[str, str]:
        """Make the jobs this run claims; jobs another live run is making are waited for
        and recorded as cached, or taken over when that run's claim expires."""
        errors: dict[str, str] = {}
        executor = make_executor(self.workers, self.executor_name)
        brand_path = portable(inputs.brand_path.resolve(), self.root)
        with JobClaims(self.db, run_id) as claims:
            waiting, told = todo, False
            while waiting:
                won = claims.take([j.key for j in waiting])
                mine = [j for j in waiting if j.key in won]
                if mine:
                    pipeline = Pipeline(
                        self.db,
                        self.blobs,
                        stream,
                        run_id=run_id,
                        inputs=inputs,
                        input_ids=input_ids,
                        brand_path=brand_path,
                        check_cancelled=lease.check,
                    )
                    errors.update(pipeline.execute(mine, executor))
                waiting = [j for j in waiting if j.key not in won]
                made = claims.finished([j.key for j in waiting]) if waiting else set()
                if made:
                    with self.db.session() as s:
                        for job in waiting:
                            if job.key in made:
                                repo.record_run_job(s, run_id, job.key, job.position, "cached")
                                stream.emit("job.cached", job=job.id)
                        stream.flush(s)
                    waiting = [j for j in waiting if j.key not in made]
                if waiting:
                    if not told:
                        stream.emit(
                            "message",
                            message=f"waiting for {len(waiting)} creatives another run makes",
                        )
                        told = True
                    lease.check()
                    claims.pause()
        stream.flush_now()
        return errors
