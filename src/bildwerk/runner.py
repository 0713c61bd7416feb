"""The run use case: plan → generate → compose → render → catalog → manifest → report.

Stages run pipelined on an executor (a scene's compose jobs start as soon as it exists).
Blobs are stored before the catalog rows that reference them, and each creative is
committed in one transaction, so an interrupted run leaves a consistent catalog and a
re-run resumes with the jobs that were not finished.
"""

from __future__ import annotations

import heapq
import secrets
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from bildwerk.backends.base import SceneRequest
from bildwerk.blobs import BlobStore
from bildwerk.catalog import repo
from bildwerk.catalog.claims import JobClaims
from bildwerk.catalog.db import Database
from bildwerk.checks.base import overall
from bildwerk.events import EventSink, JobFailed, Message, StageProgress, StageStarted, ignore
from bildwerk.executors.local import make_executor
from bildwerk.hashing import content_key
from bildwerk.inputs import CleanInput, RunInputs
from bildwerk.records import ComposedCreative, QARecord, RenditionRecord, SceneRecord
from bildwerk.registry import get_backend
from bildwerk.stages.gate import gate_run
from bildwerk.stages.generate import SceneOutput, generate_scenes
from bildwerk.stages.manifest import write_outputs
from bildwerk.stages.plan import InputFile, Job, Plan, make_plan
from bildwerk.stages.qa import QAOutput, qa_creative, qa_task
from bildwerk.stages.work import (
    ComposeOutput,
    RenderOutput,
    compose_creative,
    compose_task,
    render_creative,
)

STAGES = ("generate", "compose", "qa", "render")


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


@dataclass
class _Scene:
    asset_id: str
    sha256: str
    path: Path
    width: int
    height: int
    record: SceneRecord
    created: bool


def _batches(requests: list[SceneRequest], size: int) -> list[list[SceneRequest]]:
    """Scenes that share model, size and mode go to the backend together (up to ``size``),
    in plan order; a backend that takes one at a time gets singletons."""
    groups: dict[str, list[SceneRequest]] = {}
    for r in requests:
        gen = dict(r.params.get("generation") or {})
        model = (gen.get("model") or {}).get("sha256")
        key = content_key(
            [
                r.width,
                r.height,
                model,
                gen.get("mode"),
                gen.get("loras"),
                gen.get("controlnet"),
                r.product is not None,
            ]
        )
        groups.setdefault(key, []).append(r)
    step = max(1, size)
    return [g[i : i + step] for g in groups.values() for i in range(0, len(g), step)]


class _Queue:
    """Ready tasks, later stages first (render, then compose, then generate), then by plan
    position, so work drains depth-first whatever the number of workers."""

    _ORDER: ClassVar[dict[str, int]] = {"render": 0, "qa": 0, "compose": 1, "generate": 2}

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, int, str, Any, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = 0

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push(
        self, stage: str, position: int, subject: Any, fn: Callable[..., Any], *args: Any
    ) -> None:
        self._seq += 1
        heapq.heappush(
            self._heap, (self._ORDER[stage], position, self._seq, stage, subject, fn, args)
        )

    def pop(self) -> tuple[str, Any, Callable[..., Any], tuple[Any, ...]]:
        *_, stage, subject, fn, args = heapq.heappop(self._heap)
        return stage, subject, fn, args


@dataclass
class _Progress:
    compose: dict[str, ComposeOutput] = field(default_factory=dict)
    master: dict[str, str] = field(default_factory=dict)
    finished: dict[str, dict[str, Any]] = field(default_factory=dict)  # key → stage → output


class Runner:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        runs_dir: Path,
        *,
        workers: int,
        on_event: EventSink = ignore,
        root: Path | None = None,
    ) -> None:
        self.db, self.blobs, self.runs_dir = db, blobs, runs_dir
        self.workers, self.emit = workers, on_event
        self.root = root

    def _portable(self, path: Path) -> str:
        """Paths inside the workspace are stored relative to it, so it can move."""
        if self.root is not None and path.is_relative_to(self.root):
            return path.relative_to(self.root).as_posix()
        return str(path)

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
                    meta={"notes": list(item.notes)},
                )
                ids[item.sha256] = asset_id
        return ids

    def run(self, inputs: RunInputs, *, run_id: str | None = None) -> RunResult:
        plan_inputs(inputs, lambda c: c.source)  # a brief the plan refuses writes nothing
        input_ids = self._store_inputs(inputs)
        plan = plan_inputs(inputs, lambda c: self.blobs.local_path(c.sha256))
        run_id = run_id or new_run_id()
        brief = inputs.brief
        with self.db.session() as s:
            done = repo.done_jobs(s, [j.key for j in plan.jobs])
        with self.db.session() as s:
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
            )
            for job in plan.jobs:
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
        todo = [j for j in plan.jobs if j.key not in done and not j.refused]
        self.emit(
            Message(
                f"run {run_id}: {len(plan.jobs)} creatives planned, "
                f"{len(done)} cached, {len(todo)} to make"
            )
        )
        errors: dict[str, str] = {}
        error: str | None = None
        try:
            errors = self._execute_claimed(run_id, inputs, todo, input_ids)
        except BaseException as exc:
            error = f"interrupted: {type(exc).__name__}: {exc}"
            with self.db.session() as s:
                repo.finish_run(s, run_id, manifest_path=None, error=error)
            raise
        run_dir = self.runs_dir / run_id
        try:
            gate_run(self.db, run_id, [j.key for j in plan.jobs], inputs.brand.qa)
            manifest, report = write_outputs(self.db, self.blobs, run_id, run_dir, inputs, plan)
        except BaseException as exc:  # a run ends failed, never stuck in 'running'
            with self.db.session() as s:
                repo.finish_run(s, run_id, manifest_path=None, error=f"{type(exc).__name__}: {exc}")
            raise
        with self.db.session() as s:
            run = repo.finish_run(s, run_id, manifest_path=str(manifest), error=None)
            result = RunResult(
                run_id,
                run_dir,
                manifest,
                report,
                run.planned,
                run.generated,
                run.cached,
                run.failed,
                errors,
            )
        return result

    # --- one maker per job across concurrent runs ----------------------------------------

    def _execute_claimed(
        self, run_id: str, inputs: RunInputs, todo: list[Job], input_ids: dict[str, str]
    ) -> dict[str, str]:
        """Make the jobs this run claims; jobs another live run is making are waited for
        and recorded as cached, or taken over when that run's claim expires."""
        errors: dict[str, str] = {}
        with JobClaims(self.db, run_id) as claims:
            waiting, told = todo, False
            while waiting:
                won = claims.take([j.key for j in waiting])
                mine = [j for j in waiting if j.key in won]
                if mine:
                    errors.update(self._execute(run_id, inputs, mine, input_ids))
                waiting = [j for j in waiting if j.key not in won]
                made = claims.finished([j.key for j in waiting]) if waiting else set()
                if made:
                    with self.db.session() as s:
                        for job in waiting:
                            if job.key in made:
                                repo.record_run_job(s, run_id, job.key, job.position, "cached")
                    waiting = [j for j in waiting if j.key not in made]
                if waiting:
                    if not told:
                        self.emit(
                            Message(f"waiting for {len(waiting)} creatives another run makes")
                        )
                        told = True
                    claims.pause()
        return errors

    # --- the pipelined stages ----------------------------------------------------------

    def _execute(
        self, run_id: str, inputs: RunInputs, todo: list[Job], input_ids: dict[str, str]
    ) -> dict[str, str]:
        scenes_needed: dict[str, list[Job]] = {}
        for job in todo:
            scenes_needed.setdefault(job.scene.key, []).append(job)
        scenes: dict[str, _Scene] = {}
        with self.db.session() as s:
            for key in scenes_needed:
                asset = repo.scene_by_key(s, key)
                if asset is not None and self.blobs.has(asset.sha256):
                    scenes[key] = _Scene(
                        asset.id,
                        asset.sha256,
                        self.blobs.local_path(asset.sha256),
                        asset.width,
                        asset.height,
                        SceneRecord.from_json(asset.meta),
                        False,
                    )
        to_generate = [k for k in scenes_needed if k not in scenes]
        totals = (len(to_generate), len(todo), len(todo), len(todo))
        for stage, total in zip(STAGES, totals, strict=True):
            self.emit(StageStarted(stage, total))
        errors: dict[str, str] = {}
        progress = _Progress()
        executor = make_executor(self.workers)
        queue = _Queue()
        pending: dict[Future[Any], tuple[str, Any]] = {}
        # Finish creatives before starting new scenes: each commit is a resume point, and
        # memory stays bounded. A couple of tasks beyond the worker count keep workers busy
        # while this process stores results.
        cap = 1 if executor.workers == 1 else executor.workers + 2
        logo_path = self.blobs.local_path(inputs.logo.sha256) if inputs.logo else None

        def queue_compose(job: Job) -> None:
            scene = scenes[job.scene.key]
            task = compose_task(job.spec(), job.scene, inputs.brand, scene.path, logo_path)
            queue.push("compose", job.position, job, compose_creative, task)

        for batch in _batches(
            [scenes_needed[k][0].scene for k in to_generate],
            get_backend(inputs.backend).capabilities.max_batch,
        ):
            first = min(scenes_needed[r.key][0].position for r in batch)
            queue.push(
                "generate",
                first,
                tuple(r.key for r in batch),
                generate_scenes,
                inputs.backend,
                batch,
            )
        for key, jobs in scenes_needed.items():
            if key in scenes:
                for job in jobs:
                    queue_compose(job)
        try:
            while queue or pending:
                while queue and len(pending) < cap:
                    stage, subject, fn, args = queue.pop()
                    pending[executor.submit(fn, *args)] = (stage, subject)
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in finished:
                    stage, subject = pending.pop(fut)
                    exc = fut.exception()
                    if exc is not None:
                        self._fail(run_id, stage, subject, scenes_needed, exc, errors)
                    elif stage == "generate":
                        for made in fut.result():
                            scenes[made.key] = self._store_scene(made, scenes_needed[made.key][0])
                            self.emit(StageProgress("generate"))
                            for job in scenes_needed[made.key]:
                                queue_compose(job)
                    elif stage == "compose":
                        out: ComposeOutput = fut.result()
                        sha = self.blobs.put(out.png)
                        progress.compose[subject.key] = out
                        progress.master[subject.key] = sha
                        self.emit(StageProgress("compose", job_id=subject.id))
                        scene = scenes[subject.scene.key]
                        task = qa_task(
                            subject.spec(),
                            self._composed(subject, out, inputs),
                            scene.record,
                            brand=inputs.brand,
                            master_path=self.blobs.local_path(sha),
                            scene_path=scene.path,
                            logo_path=logo_path,
                        )
                        queue.push("qa", subject.position, subject, qa_creative, task)
                        focal = scene.record.focal
                        queue.push(
                            "render",
                            subject.position,
                            subject,
                            render_creative,
                            subject.key,
                            self.blobs.local_path(sha),
                            subject.channel,
                            focal,
                            inputs.render_settings,
                            subject.id,
                        )
                    else:
                        results = progress.finished.setdefault(subject.key, {})
                        results[stage] = fut.result()
                        self.emit(StageProgress(stage, job_id=subject.id))
                        if len(results) == 2:
                            self._commit_job(
                                run_id,
                                subject,
                                progress,
                                scenes[subject.scene.key],
                                inputs,
                                input_ids,
                            )
        finally:
            executor.shutdown()
        return errors

    def _fail(
        self,
        run_id: str,
        stage: str,
        subject: Any,
        scenes_needed: dict[str, list[Job]],
        exc: BaseException,
        errors: dict[str, str],
    ) -> None:
        jobs = (
            [j for key in subject for j in scenes_needed[key]] if stage == "generate" else [subject]
        )
        message = f"{stage} failed: {type(exc).__name__}: {exc}"
        with self.db.session() as s:
            for job in jobs:
                errors[job.id] = message
                repo.record_run_job(s, run_id, job.key, job.position, "failed", message)
                repo.log_event(
                    s,
                    "job.failed",
                    run_id=run_id,
                    subject=job.id,
                    payload={"stage": stage, "error": message},
                )
        for job in jobs:
            self.emit(JobFailed(stage, job.id, message))

    def _store_scene(self, out: SceneOutput, job: Job) -> _Scene:
        sha = self.blobs.put(out.png)
        params = {**out.params, "backend_version": out.backend_version}
        record = SceneRecord(
            scene_key=out.key,
            request=job.scene,
            backend=job.backend,
            focal=out.focal,
            product_box=out.product_box,
            params={**params, "generate_ms": round(out.ms, 1)},
        )
        return _Scene(
            repo.scene_asset_id(out.key),
            sha,
            self.blobs.local_path(sha),
            out.width,
            out.height,
            record,
            True,
        )

    def _composed(self, job: Job, out: ComposeOutput, inputs: RunInputs) -> ComposedCreative:
        return ComposedCreative(
            job_key=job.key,
            channel=job.channel.name,
            segment=job.segment,
            locale=job.locale,
            texts=out.texts,
            logo_box=out.logo_box,
            brand_path=self._portable(inputs.brand_path.resolve()),
            brand_sha256=inputs.brand.sha256,
        )

    def _commit_job(
        self,
        run_id: str,
        job: Job,
        progress: _Progress,
        scene: _Scene,
        inputs: RunInputs,
        input_ids: dict[str, str],
    ) -> None:
        composed = progress.compose.pop(job.key)
        master_sha = progress.master.pop(job.key)
        done = progress.finished.pop(job.key)
        rendered: RenderOutput = done["render"]
        checked: QAOutput = done["qa"]
        renditions = [
            RenditionRecord(
                format=r.format,
                width=r.width,
                height=r.height,
                sha256=self.blobs.put(r.data),
                bytes=len(r.data),
                quality=r.quality,
                budget=r.budget,
                within_budget=r.within_budget,
                watermark=r.watermark,
            )
            for r in rendered.renditions
        ]
        spec = job.spec()
        qa_names = {c.name for c in checked.checks}
        guard = spec.guard_check
        record = QARecord(
            status="pending",
            compose=tuple(c for c in composed.checks if c.name not in qa_names),
            qa=tuple(checked.checks),
            render=tuple(rendered.checks),
            guard=(guard,) if guard else (),
        )
        scores = [c.score for c in record.checks if c.score is not None]
        record = replace(
            record,
            status=overall(record.checks),
            score=round(sum(scores) / len(scores), 4) if scores else None,
        )
        with self.db.session() as s:
            repo.ensure_asset(
                s,
                asset_id=scene.asset_id,
                kind="scene",
                sha256=scene.sha256,
                width=scene.width,
                height=scene.height,
                fmt="png",
                campaign_id=inputs.brief.campaign,
                meta=scene.record.to_json(),
            )
            if job.scene.product_sha256 and job.scene.product_sha256 in input_ids:
                repo.add_lineage(
                    s, scene.asset_id, input_ids[job.scene.product_sha256], "product_in"
                )
            repo.ensure_asset(
                s,
                asset_id=job.id,
                kind="creative",
                sha256=master_sha,
                width=composed.width,
                height=composed.height,
                fmt="png",
                campaign_id=inputs.brief.campaign,
                meta=self._composed(job, composed, inputs).to_json(),
            )
            repo.add_lineage(s, job.id, scene.asset_id, "scene_of")
            if inputs.logo and inputs.logo.sha256 in input_ids:
                repo.add_lineage(s, job.id, input_ids[inputs.logo.sha256], "logo_in")
            for rendition in renditions:
                repo.add_rendition(s, job.id, **rendition.to_json())
            if checked.phash is not None and checked.colour is not None:
                repo.set_hashes(s, job.id, checked.phash, checked.colour)
            repo.insert_job(
                s,
                spec,
                campaign_id=inputs.brief.campaign,
                creative_id=job.id,
                scene_id=scene.asset_id,
                qa=record.to_json(),
                duration_ms=round(composed.ms + rendered.ms),
                first_run_id=run_id,
            )
            repo.record_run_job(s, run_id, job.key, job.position, "generated")
            repo.log_event(
                s,
                "creative.created",
                run_id=run_id,
                subject=job.id,
                payload={"job_key": job.key, "qa": record.status},
            )
