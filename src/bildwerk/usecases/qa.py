"""``bildwerk qa RUN``: every QA check again on a run's creatives, rebuilt from their
records exactly as the run built them, then the gate again."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bildwerk.catalog import repo
from bildwerk.config.brand import load_brand
from bildwerk.events import EventSink, EventStream, ignore, operation_id
from bildwerk.executors.base import FifoQueue, Task, TaskDone, TaskFailed
from bildwerk.executors.local import make_executor
from bildwerk.records import ComposedCreative, JobSpec, QARecord, SceneRecord
from bildwerk.stages.gate import gate_run
from bildwerk.stages.qa import QAOutput, QATask, qa_creative, qa_task

if TYPE_CHECKING:
    from bildwerk.workspace import Workspace


def qa(
    ws: Workspace, run_id: str, *, workers: int | None = None, on_event: EventSink = ignore
) -> dict[str, Any]:
    """Run every QA check again on a run's creatives (after changing thresholds or
    installing a check), then gate them again. The QA input is rebuilt from the
    stored records exactly as the run built it, so an unchanged brand reproduces the
    stored results."""
    info = ws.run_info(run_id)
    brand = load_brand(ws.brand_path)
    tasks: list[QATask] = []
    with ws.db.session() as s:
        jobs = repo.done_jobs(s, [j["job_key"] for j in info["jobs"]])
        creative_of = {j.key: j.creative_id for j in jobs.values()}
        ids = [j.creative_id for j in jobs.values()] + [j.scene_id for j in jobs.values()]
        assets = repo.assets_by_id(s, ids)
        logos = repo.parents_of(s, [j.creative_id for j in jobs.values()], "logo_in")
        logo_assets = repo.assets_by_id(s, list(logos.values()))
        for job in jobs.values():
            creative, scene = assets[job.creative_id], assets[job.scene_id]
            logo = logo_assets.get(logos.get(creative.id, ""))
            tasks.append(
                qa_task(
                    JobSpec.from_json(job.spec),
                    ComposedCreative.from_json(creative.meta),
                    SceneRecord.from_json(scene.meta),
                    brand=brand,
                    master_sha256=creative.sha256,
                    scene_sha256=scene.sha256,
                    logo_sha256=logo.sha256 if logo else None,
                    store=ws.blobs.spec(),
                )
            )
    stream = EventStream(ws.db, operation_id("qa"), on_event)
    stream.emit("run.started", total=len(tasks), data={"run_id": info["id"], "op": "qa"})
    stream.emit("stage.started", stage="qa", total=len(tasks))
    queue = FifoQueue(
        Task(f"qa:{t.job_key}", "qa", qa_creative, (t,), subject=creative_of[t.job_key])
        for t in tasks
    )
    outputs: list[QAOutput] = []
    try:
        for event in make_executor(ws.workers(workers)).run(queue):
            if isinstance(event, TaskFailed):
                raise event.error
            if isinstance(event, TaskDone):
                outputs.append(event.result)
                stream.emit("job.finished", stage="qa", job=event.task.subject)
    except BaseException as exc:
        stream.emit("run.finished", message=str(exc), data={"status": "failed"})
        stream.flush_now()
        raise
    with ws.db.session() as s:
        rows = repo.done_jobs(s, [t.job_key for t in tasks])
        for out in outputs:
            job = rows[out.job_key]
            record = QARecord.from_json(job.qa)
            repo.set_job_qa(s, job, replace(record, qa=tuple(out.checks)).to_json())
            if out.phash is not None and out.colour is not None:
                repo.set_hashes(s, job.creative_id, out.phash, out.colour)
        repo.log_event(s, "qa.rerun", run_id=info["id"], payload={"creatives": len(tasks)})
    gate_run(ws.db, info["id"], [t.job_key for t in tasks], brand.qa)
    stream.emit("stage.finished", stage="qa")
    stream.emit("run.finished", data={"status": "done", "checked": len(tasks)})
    stream.flush_now()
    return {"run_id": info["id"], "checked": len(tasks), "events": stream.stream}
