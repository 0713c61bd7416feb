"""Workspace: settings + catalog + blob store. The Python API the CLI is a thin layer over."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bildwerk import runqueue
from bildwerk.blobs import BlobStore, is_url, open_store
from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Asset, Run
from bildwerk.config.brand import load_brand
from bildwerk.config.settings import FILENAME, Settings, load_settings, write_signing
from bildwerk.errors import NotFoundError, UserError, WorkspaceError
from bildwerk.events import EventSink, EventStream, ignore, operation_id
from bildwerk.executors.base import FifoQueue, Task, TaskDone, TaskFailed
from bildwerk.executors.local import default_workers, make_executor
from bildwerk.generation import resolve as resolve_generation
from bildwerk.imageinput import load_image
from bildwerk.inputs import RunInputs, read_inputs
from bildwerk.records import ComposedCreative, JobSpec, QARecord, SceneRecord
from bildwerk.reproduce import Reproduction, reproduce
from bildwerk.runner import Runner, RunResult, new_run_id, plan_inputs
from bildwerk.runqueue import RunCancelled
from bildwerk.stages.gate import GATE, gate_run
from bildwerk.stages.plan import Plan
from bildwerk.stages.qa import QAOutput, QATask, qa_creative, qa_task

if TYPE_CHECKING:
    from bildwerk.publish.publisher import Publisher

ENV_VAR = "BILDWERK_WORKSPACE"
ASSET_KINDS = ("product", "logo", "reference")
REVIEWABLE = ("needs_review", "queued")


def find_root(start: Path | None = None) -> Path:
    """``BILDWERK_WORKSPACE``, else the nearest folder upwards holding ``bildwerk.yaml``."""
    env = os.environ.get(ENV_VAR)
    if env:
        root = Path(env).expanduser().resolve()
        if not (root / FILENAME).is_file():
            raise WorkspaceError(
                f"{ENV_VAR}={env}: no {FILENAME} there",
                hint="run 'bildwerk init DIR' or fix the variable",
            )
        return root
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / FILENAME).is_file():
            return folder
    raise WorkspaceError(
        f"no {FILENAME} in {here} or any parent folder",
        hint=f"run 'bildwerk init DIR', pass --workspace DIR, or set {ENV_VAR}",
    )


@dataclass(frozen=True)
class PlanSummary:
    plan: Plan
    cached: int
    estimated_seconds: float
    workers: int

    @property
    def todo(self) -> int:
        return len(self.plan.jobs) - self.cached


class Workspace:
    """A brand's working folder. ``Workspace(path).run(brief)`` runs the whole line."""

    def __init__(self, root: Path | str | None = None) -> None:
        if root is None:
            self.root = find_root()
        else:
            self.root = Path(root).expanduser().resolve()
            if not (self.root / FILENAME).is_file():
                raise WorkspaceError(
                    f"{self.root}: no {FILENAME} here", hint=f"run 'bildwerk init {root}' first"
                )
        self.settings: Settings = load_settings(self.root)

    # --- parts -------------------------------------------------------------------------

    @property
    def catalog_url(self) -> str:
        url = self.settings.catalog.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            path = self.root / url[len(prefix) :]
            path.parent.mkdir(parents=True, exist_ok=True)
            return prefix + str(path)
        return url

    @cached_property
    def db(self) -> Database:
        return Database(self.catalog_url)

    @cached_property
    def blobs(self) -> BlobStore:
        s = self.settings
        where = s.blobs if is_url(s.blobs) else self._path(Path(s.blobs))
        return open_store(where, cache=self._path(s.blob_cache), options=s.blob_options)

    @property
    def runs_dir(self) -> Path:
        return self._path(self.settings.runs)

    @property
    def brand_path(self) -> Path:
        return self._path(self.settings.brand)

    def _path(self, p: Path) -> Path:
        return p if p.is_absolute() else self.root / p

    def workers(self, requested: int | None = None) -> int:
        return requested or self.settings.workers or default_workers()

    # --- use cases ---------------------------------------------------------------------

    def read(
        self, brief: Path | str, *, backend: str | None = None, model: str | None = None
    ) -> RunInputs:
        """Load and check everything a run reads; model-based backends get their settings
        resolved against the model registry."""
        inputs = read_inputs(
            Path(brief),
            default_brand=self.brand_path,
            max_megapixels=self.settings.limits.max_megapixels,
            backend=backend,
        )
        if inputs.needs_model:
            with self.db.session() as s:
                inputs.generation = resolve_generation(
                    s, inputs.brief, inputs.doc, inputs.channels, model=model
                )
        elif model is not None:
            raise UserError(
                f"--model needs a model-based backend, not '{inputs.backend}'",
                hint="add --backend diffusers (or set backend in the brief)",
            )
        return inputs

    def plan(
        self,
        brief: Path | str,
        *,
        backend: str | None = None,
        model: str | None = None,
        workers: int | None = None,
    ) -> PlanSummary:
        inputs = self.read(brief, backend=backend, model=model)
        plan = plan_inputs(inputs, lambda c: c.source)
        with self.db.session() as s:
            done = repo.done_jobs(s, [j.key for j in plan.jobs])
            durations = [j.duration_ms for j in done.values()] or repo.recent_durations(s)
        per_job = statistics.median(durations) / 1000 if durations else _default_job_seconds(plan)
        n = self.workers(workers)
        todo = len(plan.jobs) - len(done)
        return PlanSummary(plan, len(done), todo * per_job / n, n)

    def run(
        self,
        brief: Path | str,
        *,
        workers: int | None = None,
        backend: str | None = None,
        model: str | None = None,
        on_event: EventSink = ignore,
        run_id: str | None = None,
    ) -> RunResult:
        inputs = self.read(brief, backend=backend, model=model)
        return self._runner(workers, on_event).run(inputs, run_id=run_id)

    def _runner(self, workers: int | None, on_event: EventSink) -> Runner:
        self.blobs.sweep_temp()
        runqueue.expire_abandoned(self.db)
        return Runner(
            self.db,
            self.blobs,
            self.runs_dir,
            workers=self.workers(workers),
            on_event=on_event,
            root=self.root,
            executor=self.settings.executor,
        )

    # --- the run queue -----------------------------------------------------------------

    def submit(
        self,
        brief: Path | str,
        *,
        workers: int | None = None,
        backend: str | None = None,
        model: str | None = None,
        actor: str = "",
    ) -> dict[str, Any]:
        """Check a brief as ``run`` would, then queue it for ``bildwerk worker``; nothing
        else is written, and a queued run survives restarts."""
        path = Path(brief).expanduser().resolve()
        inputs = self.read(path, backend=backend, model=model)
        plan = plan_inputs(inputs, lambda c: c.source)
        run_id = new_run_id()
        options = {
            "brief": str(path),
            "workers": workers,
            "backend": backend,
            "model": model,
            "submitted_by": actor,
        }
        brief_ = inputs.brief
        with self.db.session() as s:
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
        return {"run_id": run_id, "planned": len(plan.jobs), "brief": str(path)}

    def work(
        self,
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
            runqueue.expire_abandoned(self.db)
            run = runqueue.claim(self.db)
            if run is None:
                if once:
                    break
                time.sleep(poll)
                continue
            status = self._run_claimed(run, workers, on_event)
            on_run(run.id, status)
            done.append({"run_id": run.id, "status": status})
        return done

    def _run_claimed(self, run: Run, workers: int | None, on_event: EventSink) -> str:
        opts = dict(run.options or {})
        try:
            inputs = self.read(opts["brief"], backend=opts.get("backend"), model=opts.get("model"))
            if inputs.brief.sha256 != run.brief_sha256:
                raise UserError(
                    f"{opts['brief']} changed since run {run.id} was submitted",
                    hint="submit the brief again ('bildwerk submit'); the queued run is "
                    "failed so nothing runs from a brief nobody checked",
                )
            self._runner(workers or opts.get("workers"), on_event).run(inputs, run_id=run.id)
        except RunCancelled:
            pass
        except Exception as exc:  # recorded on the run; the worker goes on
            with self.db.session() as s:
                found = s.get(Run, run.id)
                if found is not None and found.status == "running":
                    repo.finish_run(s, run.id, manifest_path=None, error=f"{exc}")
        with self.db.session() as s:
            return s.get_one(Run, run.id).status

    def cancel(self, run_id: str, *, actor: str) -> dict[str, Any]:
        """Cancel a queued run, or ask a running one to stop between tasks."""
        with self.db.session() as s:
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

    def runs(self, limit: int = 50) -> list[Run]:
        runqueue.expire_abandoned(self.db)
        with self.db.session() as s:
            return repo.list_runs(s, limit)

    def runs_summary(self, limit: int = 50) -> list[dict[str, Any]]:
        """Recent runs, newest first, without their jobs (one query)."""
        return [_row(r) for r in self.runs(limit)]

    def stream_id(self, ref: str) -> str:
        """The event stream a reference names: a run (id, unique prefix, ``latest``) or
        any stream with events (``qa-…``, ``publish-…``)."""
        with self.db.session() as s:
            run = repo.get_run(s, ref)
            if run is not None:
                return run.id
            if repo.last_event_seq(s, ref):
                return ref
        raise NotFoundError(f"no run or event stream '{ref}'", hint="see 'bildwerk runs list'")

    def run_info(self, run_id: str) -> dict[str, Any]:
        with self.db.session() as s:
            run = repo.get_run(s, run_id)
            if run is None:
                raise NotFoundError(f"no run '{run_id}'", hint="see 'bildwerk runs list'")
            jobs = [
                {"job_key": j.job_key, "position": j.position, "status": j.status, "error": j.error}
                for j in run.jobs
            ]
            return {**_row(run), "jobs": jobs}

    def assets(
        self, *, kind: str | None = None, campaign: str | None = None, limit: int = 200
    ) -> list[Asset]:
        with self.db.session() as s:
            return repo.list_assets(s, kind=kind, campaign_id=campaign, limit=limit)

    def asset_info(self, asset_id: str) -> dict[str, Any]:
        with self.db.session() as s:
            asset = repo.get_asset(s, asset_id)
            if asset is None:
                raise NotFoundError(f"no asset '{asset_id}'", hint="see 'bildwerk assets list'")
            info = _row(asset)
            info["path"] = str(self.blobs.local_path(asset.sha256))
            info["renditions"] = [_row(r) for r in asset.renditions]
            info["lineage"] = [_row(link) for link in repo.lineage_of(s, asset.id)]
            return info

    def import_assets(
        self, files: list[Path], *, kind: str, first_frame: bool = False
    ) -> list[dict[str, Any]]:
        """Validate every file first, then store them all: one bad file imports nothing."""
        if kind not in ASSET_KINDS:
            raise UserError(f"unknown asset kind '{kind}'", hint=f"use one of {ASSET_KINDS}")
        cleaned = []
        for f in files:
            clean = load_image(
                f, max_megapixels=self.settings.limits.max_megapixels, first_frame=first_frame
            )
            cleaned.append((f, clean, clean.png_bytes()))
        out = []
        prefix = {"product": "pr_", "logo": "lg_", "reference": "rf_"}[kind]
        for f, clean, png in cleaned:
            sha = self.blobs.put(png)
            with self.db.session() as s:
                asset, created = repo.ensure_asset(
                    s,
                    asset_id=prefix + sha[:24],
                    kind=kind,
                    sha256=sha,
                    width=clean.width,
                    height=clean.height,
                    fmt="png",
                    source=str(f.resolve()),
                    meta={
                        "notes": list(clean.notes),
                        "source_format": clean.source_format,
                        "source_mode": clean.source_mode,
                    },
                )
                if created:
                    repo.log_event(
                        s,
                        "asset.imported",
                        subject=asset.id,
                        payload={"source": str(f), "kind": kind},
                    )
                out.append({**_row(asset), "created": created})
        return out

    def qa(
        self, run_id: str, *, workers: int | None = None, on_event: EventSink = ignore
    ) -> dict[str, Any]:
        """Run every QA check again on a run's creatives (after changing thresholds or
        installing a check), then gate them again. The QA input is rebuilt from the
        stored records exactly as the run built it, so an unchanged brand reproduces the
        stored results."""
        info = self.run_info(run_id)
        brand = load_brand(self.brand_path)
        tasks: list[QATask] = []
        with self.db.session() as s:
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
                        store=self.blobs.spec(),
                    )
                )
        stream = EventStream(self.db, operation_id("qa"), on_event)
        stream.emit("run.started", total=len(tasks), data={"run_id": info["id"], "op": "qa"})
        stream.emit("stage.started", stage="qa", total=len(tasks))
        queue = FifoQueue(
            Task(f"qa:{t.job_key}", "qa", qa_creative, (t,), subject=creative_of[t.job_key])
            for t in tasks
        )
        outputs: list[QAOutput] = []
        try:
            for event in make_executor(self.workers(workers)).run(queue):
                if isinstance(event, TaskFailed):
                    raise event.error
                if isinstance(event, TaskDone):
                    outputs.append(event.result)
                    stream.emit("job.finished", stage="qa", job=event.task.subject)
        except BaseException as exc:
            stream.emit("run.finished", message=str(exc), data={"status": "failed"})
            stream.flush_now()
            raise
        with self.db.session() as s:
            rows = repo.done_jobs(s, [t.job_key for t in tasks])
            for out in outputs:
                job = rows[out.job_key]
                record = QARecord.from_json(job.qa)
                job.qa = replace(record, qa=tuple(out.checks)).to_json()
                if out.phash is not None and out.colour is not None:
                    repo.set_hashes(s, job.creative_id, out.phash, out.colour)
            repo.log_event(s, "qa.rerun", run_id=info["id"], payload={"creatives": len(tasks)})
        gate_run(self.db, info["id"], [t.job_key for t in tasks], brand.qa)
        stream.emit("stage.finished", stage="qa")
        stream.emit("run.finished", data={"status": "done", "checked": len(tasks)})
        stream.flush_now()
        return {"run_id": info["id"], "checked": len(tasks), "events": stream.stream}

    # --- models ------------------------------------------------------------------------

    def add_model(
        self,
        path: Path,
        *,
        name: str,
        kind: str | None = None,
        architecture: str | None = None,
        license: str = "",
        source: str = "",
        allowed_uses: tuple[str, ...] = (),
        replace: bool = False,
    ) -> dict[str, Any]:
        from bildwerk import modelreg

        with self.db.session() as s:
            entry = modelreg.add_model(
                s,
                path,
                name=name,
                kind=kind,
                architecture=architecture,
                license=license,
                source=source,
                allowed_uses=allowed_uses,
                replace=replace,
            )
            return _row(entry)

    def models(self, kind: str | None = None) -> list[dict[str, Any]]:
        from bildwerk import modelreg

        with self.db.session() as s:
            return [_row(m) for m in modelreg.list_models(s, kind)]

    def remove_model(self, name: str) -> dict[str, Any]:
        from bildwerk import modelreg

        with self.db.session() as s:
            return _row(modelreg.remove_model(s, name))

    def pull_model(
        self,
        repo_id: str,
        *,
        name: str | None = None,
        revision: str | None = None,
        license: str = "",
    ) -> dict[str, Any]:
        """Download from the Hugging Face Hub into ``models/`` and register it."""
        from bildwerk import modelreg

        dest = self.root / "models" / repo_id.replace("/", "--")
        path = modelreg.pull_model(repo_id, dest, revision=revision)
        return self.add_model(
            path,
            name=name or repo_id.split("/")[-1],
            license=license,
            source=f"hf:{repo_id}" + (f"@{revision}" if revision else ""),
        )

    def review(self, run_id: str, *, all_states: bool = False) -> list[dict[str, Any]]:
        """The run's review queue: creatives waiting for a person (or every decision)."""
        info = self.run_info(run_id)
        with self.db.session() as s:
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
        self,
        asset_id: str,
        state: str,
        *,
        actor: str,
        reason: str | None = None,
        override: bool = False,
    ) -> dict[str, Any]:
        """Record a person's approval or rejection, with who and when, in the event log."""
        if state == "rejected" and not reason:
            raise UserError("a rejection needs a reason", hint="pass --reason '...'")
        with self.db.session() as s:
            asset = repo.get_asset(s, asset_id)
            if asset is None or asset.kind != "creative":
                raise NotFoundError(
                    f"no creative '{asset_id}'",
                    hint="use a creative id from the run manifest or 'bildwerk review RUN'",
                )
            before = repo.current_decisions(s, [asset.id]).get(asset.id)
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

    def approve_run(
        self,
        run_id: str,
        *,
        actor: str,
        include_review: bool,
        include_unchecked: bool = False,
        reason: str | None = None,
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
        for r in self.review(run_id, all_states=True):
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
                    self.decide(r["id"], "approved", actor=actor, reason=why, override=True)
                )
            elif r["state"] in states:
                approved.append(self.decide(r["id"], "approved", actor=actor, reason=note))
        return RunApproval(approved, left_out)

    def reproduce(self, asset_id: str, *, on_event: EventSink = ignore) -> Reproduction:
        """Generate a scene or creative again from its record and compare the pixels."""
        return reproduce(self.db, self.blobs, asset_id, root=self.root, on_event=on_event)

    def creatives_marked(self, payload_hex: str) -> list[str]:
        """Creatives whose id starts with a watermark payload (``cr_<hex>…``)."""
        with self.db.session() as s:
            return repo.assets_with_prefix(s, f"cr_{payload_hex}", kind="creative")

    def publisher(self, actor: str, *, on_event: EventSink = ignore) -> Publisher:
        """Publishing, unpublishing and rights for this workspace's targets; every publish
        and sync reports its progress to ``on_event`` (and to the catalog's stream)."""
        from bildwerk.publish.publisher import Publisher

        return Publisher(
            self.root,
            self.settings,
            self.db,
            self.blobs,
            load_brand(self.brand_path),
            actor=actor,
            on_event=on_event,
        )

    def use_signer(
        self,
        cert: Path,
        key: Path | None,
        *,
        tsa_url: str | None = None,
        callback: str | None = None,
        alg: str | None = None,
    ) -> dict[str, Any]:
        """Check production signing credentials, then record them in bildwerk.yaml."""
        from bildwerk.config.publishing import SigningSettings
        from bildwerk.publish.stamp import load_identity

        def rel(p: Path) -> Path:
            p = p.expanduser().resolve()
            return p.relative_to(self.root) if p.is_relative_to(self.root) else p

        signing = SigningSettings(
            cert=rel(cert),
            key=rel(key) if key else None,
            callback=callback,
            alg=alg,
            tsa_url=tsa_url,
        )
        identity = load_identity(self.root, signing)  # refuses bad credentials here
        write_signing(self.root / FILENAME, signing)
        self.settings = load_settings(self.root)
        signer = identity.signer
        return {
            "subject": signer.subject,
            "issuer": signer.issuer,
            "not_after": signer.not_after.isoformat(),
            "alg": signer.alg,
            "tsa_url": signer.tsa_url,
            "warnings": list(signer.warnings),
        }

    def report_path(self, run_id: str) -> Path:
        info = self.run_info(run_id)
        if not info.get("manifest_path"):
            raise NotFoundError(
                f"run {info['id']} has no report ({info['status']})",
                hint="re-run the brief; finished runs write a report",
            )
        path = Path(info["manifest_path"]).with_name("report.html")
        if not path.is_file():
            raise NotFoundError(f"report missing: {path}", hint="re-run the brief to rebuild it")
        return path


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


def _default_job_seconds(plan: Plan) -> float:
    """Rough cost before any history exists: ~1.2 s per master megapixel on one core."""
    if not plan.jobs:
        return 0.0
    mp = [j.channel.master_size[0] * j.channel.master_size[1] / 1e6 for j in plan.jobs]
    return 1.2 * statistics.mean(mp)


def _row(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in obj.__table__.columns:
        value = getattr(obj, col.key)
        out[col.key] = value.isoformat() if hasattr(value, "isoformat") else value
    return out
