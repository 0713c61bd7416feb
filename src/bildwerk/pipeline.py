"""The pipelined stages of a run: generate → compose → (qa ‖ render) → catalog.

Tasks go to an executor as plain data and blob digests; its event stream drives
everything here: a finished scene queues its compose tasks, a finished master queues QA
and render, and a creative whose QA and renditions are both in is committed to the
catalog in one transaction together with the run's pending progress events. Ready
tasks are ordered later-stage first, then by plan position, so work drains depth-first
whatever the worker count: each commit is a resume point and memory stays bounded.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from bildwerk.backends.base import SceneRequest
from bildwerk.blobs import BlobStore
from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.checks.base import overall
from bildwerk.errors import DiskFullError
from bildwerk.events import EventStream
from bildwerk.executors.base import Executor, Resources, Task, TaskDone, TaskFailed
from bildwerk.hashing import content_key
from bildwerk.inputs import RunInputs
from bildwerk.records import ComposedCreative, QARecord, SceneRecord
from bildwerk.registry import get_backend
from bildwerk.stages.generate import StoredScene, generate_stored
from bildwerk.stages.plan import Job
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
class Scene:
    """A scene the run can compose on: stored (``sha256``) and described (``record``)."""

    asset_id: str
    sha256: str
    width: int
    height: int
    record: SceneRecord


def batches(requests: Sequence[SceneRequest], size: int) -> list[list[SceneRequest]]:
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
                r.product is not None or r.product_sha256 is not None,
            ]
        )
        groups.setdefault(key, []).append(r)
    step = max(1, size)
    return [g[i : i + step] for g in groups.values() for i in range(0, len(g), step)]


class ReadyTasks:
    """Ready tasks, later stages first (render and QA, then compose, then generate), then
    by plan position; the executor pulls from it."""

    _ORDER: ClassVar[dict[str, int]] = {"render": 0, "qa": 0, "compose": 1, "generate": 2}

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, int, Task]] = []
        self._seq = 0

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push(self, task: Task, position: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (self._ORDER[task.stage], position, self._seq, task))

    def pop(self) -> Task:
        return heapq.heappop(self._heap)[-1]


@dataclass
class _Partial:
    """What has come back for one creative so far."""

    composed: ComposeOutput | None = None
    results: dict[str, Any] = field(default_factory=dict)  # "qa" / "render" → output


class Pipeline:
    """One execution of a run's to-do jobs; ``execute`` returns errors by creative id."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        stream: EventStream,
        *,
        run_id: str,
        inputs: RunInputs,
        input_ids: dict[str, str],
        brand_path: str,
        check_cancelled: Callable[[], None] = lambda: None,
    ) -> None:
        self.db, self.blobs, self.stream = db, blobs, stream
        self.run_id, self.inputs, self.input_ids = run_id, inputs, input_ids
        self.brand_path = brand_path
        self.check_cancelled = check_cancelled
        self.store = blobs.spec()
        self.logo_sha = inputs.logo.sha256 if inputs.logo else None
        self.queue = ReadyTasks()
        self.scenes: dict[str, Scene] = {}
        self.partial: dict[str, _Partial] = {}
        self.errors: dict[str, str] = {}

    # --- tasks -------------------------------------------------------------------------

    def _generate(self, batch: list[SceneRequest], position: int) -> None:
        keys = tuple(r.key for r in batch)
        requests = [replace(r, product=None) for r in batch]  # the worker reads by digest
        gpu = 1.0 if self.inputs.needs_model else 0.0
        task = Task(
            f"generate:{keys[0]}",
            "generate",
            generate_stored,
            (self.inputs.backend, requests, self.store),
            Resources(gpu=gpu),
            subject=keys,
        )
        self.queue.push(task, position)

    def _compose(self, job: Job) -> None:
        scene = self.scenes[job.scene.key]
        args = compose_task(
            job.spec(), job.scene, self.inputs.brand, scene.sha256, self.logo_sha, self.store
        )
        task = Task(f"compose:{job.key}", "compose", compose_creative, (args,), subject=job)
        self.queue.push(task, job.position)

    def _check_and_render(self, job: Job, out: ComposeOutput) -> None:
        scene = self.scenes[job.scene.key]
        check = qa_task(
            job.spec(),
            self._composed(job, out),
            scene.record,
            brand=self.inputs.brand,
            master_sha256=out.sha256,
            scene_sha256=scene.sha256,
            logo_sha256=self.logo_sha,
            store=self.store,
        )
        self.queue.push(
            Task(f"qa:{job.key}", "qa", qa_creative, (check,), subject=job), job.position
        )
        args = (
            job.key,
            out.sha256,
            job.channel,
            scene.record.focal,
            self.inputs.render_settings,
            job.id,
            self.store,
            self.inputs.delivery.get(job.channel.name),
        )
        render = Task(f"render:{job.key}", "render", render_creative, args, subject=job)
        self.queue.push(render, job.position)

    # --- the loop ----------------------------------------------------------------------

    def execute(self, todo: list[Job], executor: Executor) -> dict[str, str]:
        needed: dict[str, list[Job]] = {}
        for job in todo:
            needed.setdefault(job.scene.key, []).append(job)
        self._cached_scenes(needed)
        to_generate = [k for k in needed if k not in self.scenes]
        totals = (len(to_generate), len(todo), len(todo), len(todo))
        for stage, total in zip(STAGES, totals, strict=True):
            self.stream.emit("stage.started", stage=stage, total=total)
        backend = get_backend(self.inputs.backend)
        for batch in batches(
            [needed[k][0].scene for k in to_generate], backend.capabilities.max_batch
        ):
            self._generate(batch, min(needed[r.key][0].position for r in batch))
        for key, jobs in needed.items():
            if key in self.scenes:
                for job in jobs:
                    self._compose(job)
        for event in executor.run(self.queue):
            task = event.task
            if isinstance(event, TaskFailed):
                self._fail(task, needed, event.error)
            elif isinstance(event, TaskDone):
                self._done(task, event.result, needed)
            self.stream.tick()
            self.check_cancelled()  # stops between tasks; committed creatives stay
        for stage in STAGES:
            self.stream.emit("stage.finished", stage=stage)
        return self.errors

    def _done(self, task: Task, result: Any, needed: dict[str, list[Job]]) -> None:
        if task.stage == "generate":
            for made in result:
                first = needed[made.key][0]
                self.scenes[made.key] = self._scene(made, first)
                self.stream.emit("job.finished", stage="generate", job=first.scene.key[:24])
                for waiting in needed[made.key]:
                    self._compose(waiting)
            return
        job: Job = task.subject
        partial = self.partial.setdefault(job.key, _Partial())
        self.stream.emit("job.finished", stage=task.stage, job=job.id)
        if task.stage == "compose":
            partial.composed = result
            self._check_and_render(job, result)
            return
        partial.results[task.stage] = result
        if len(partial.results) == 2:
            self._commit(job, self.partial.pop(job.key))

    def _fail(self, task: Task, needed: dict[str, list[Job]], exc: BaseException) -> None:
        if isinstance(exc, DiskFullError):
            raise exc  # every later task would fail the same way: stop, resumable
        if task.stage == "generate":
            jobs = [j for key in task.subject for j in needed[key]]
        else:
            jobs = [task.subject]
            self.partial.pop(task.subject.key, None)
        message = f"{task.stage} failed: {type(exc).__name__}: {exc}"
        with self.db.session() as s:
            for job in jobs:
                self.errors[job.id] = message
                repo.record_run_job(s, self.run_id, job.key, job.position, "failed", message)
                repo.log_event(
                    s,
                    "job.failed",
                    run_id=self.run_id,
                    subject=job.id,
                    payload={"stage": task.stage, "error": message},
                )
                self.stream.emit("job.failed", stage=task.stage, job=job.id, message=message)
            self.stream.flush(s)

    # --- records -----------------------------------------------------------------------

    def _cached_scenes(self, needed: dict[str, list[Job]]) -> None:
        ids = [repo.scene_asset_id(k) for k in needed]
        with self.db.session() as s:
            assets = repo.assets_by_id(s, ids)
        for key in needed:
            asset = assets.get(repo.scene_asset_id(key))
            if asset is not None and self.blobs.has(asset.sha256):
                self.scenes[key] = Scene(
                    asset.id,
                    asset.sha256,
                    asset.width,
                    asset.height,
                    SceneRecord.from_json(asset.meta),
                )

    def _scene(self, made: StoredScene, job: Job) -> Scene:
        record = SceneRecord(
            scene_key=made.key,
            request=job.scene,
            backend=job.backend,
            focal=made.focal,
            product_box=made.product_box,
            params={
                **made.params,
                "backend_version": made.backend_version,
                "generate_ms": round(made.ms, 1),
            },
        )
        return Scene(repo.scene_asset_id(made.key), made.sha256, made.width, made.height, record)

    def _composed(self, job: Job, out: ComposeOutput) -> ComposedCreative:
        return ComposedCreative(
            job_key=job.key,
            channel=job.channel.name,
            segment=job.segment,
            locale=job.locale,
            texts=out.texts,
            logo_box=out.logo_box,
            brand_path=self.brand_path,
            brand_sha256=self.inputs.brand.sha256,
        )

    def _commit(self, job: Job, partial: _Partial) -> None:
        """One creative, its scene, lineage, renditions, QA record and the run's pending
        events, in one transaction: a resume point."""
        composed = partial.composed
        assert composed is not None
        rendered: RenderOutput = partial.results["render"]
        checked: QAOutput = partial.results["qa"]
        scene = self.scenes[job.scene.key]
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
        campaign = self.inputs.brief.campaign
        with self.db.session() as s:
            repo.ensure_asset(
                s,
                asset_id=scene.asset_id,
                kind="scene",
                sha256=scene.sha256,
                width=scene.width,
                height=scene.height,
                fmt="png",
                campaign_id=campaign,
                meta=scene.record.to_json(),
            )
            product = job.scene.product_sha256
            if product and product in self.input_ids:
                repo.add_lineage(s, scene.asset_id, self.input_ids[product], "product_in")
            repo.ensure_asset(
                s,
                asset_id=job.id,
                kind="creative",
                sha256=composed.sha256,
                width=composed.width,
                height=composed.height,
                fmt="png",
                campaign_id=campaign,
                meta=self._composed(job, composed).to_json(),
            )
            repo.add_lineage(s, job.id, scene.asset_id, "scene_of")
            if self.logo_sha and self.logo_sha in self.input_ids:
                repo.add_lineage(s, job.id, self.input_ids[self.logo_sha], "logo_in")
            for rendition in rendered.renditions:
                repo.add_rendition(s, job.id, **rendition.to_json())
            if checked.phash is not None and checked.colour is not None:
                repo.set_hashes(s, job.id, checked.phash, checked.colour)
            repo.insert_job(
                s,
                spec,
                campaign_id=campaign,
                creative_id=job.id,
                scene_id=scene.asset_id,
                qa=record.to_json(),
                duration_ms=round(composed.ms + rendered.ms),
                first_run_id=self.run_id,
            )
            repo.record_run_job(s, self.run_id, job.key, job.position, "generated")
            repo.log_event(
                s,
                "creative.created",
                run_id=self.run_id,
                subject=job.id,
                payload={"job_key": job.key, "qa": record.status},
            )
            self.stream.emit(
                "job.finished", stage="catalog", job=job.id, data={"qa": record.status}
            )
            self.stream.flush(s)


def portable(path: Path, root: Path | None) -> str:
    """Paths inside the workspace are stored relative to it, so it can move."""
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return str(path)
