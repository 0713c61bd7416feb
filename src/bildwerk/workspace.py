"""Workspace: settings + catalog + blob store. The Python API the CLI is a thin layer over."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bildwerk import netguard, runqueue
from bildwerk.blobs import BlobStore, is_url, open_store
from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Asset, Run
from bildwerk.config.brand import load_brand
from bildwerk.config.settings import FILENAME, Settings, load_settings, write_signing
from bildwerk.errors import NotFoundError, UserError, WorkspaceError
from bildwerk.events import EventSink, ignore
from bildwerk.executors.local import default_workers
from bildwerk.generation import resolve as resolve_generation
from bildwerk.imageinput import load_image
from bildwerk.inputs import RunInputs, read_inputs
from bildwerk.records import InputRecord
from bildwerk.reproduce import Reproduction, reproduce
from bildwerk.runner import Runner, RunResult, plan_inputs
from bildwerk.stages.plan import Plan
from bildwerk.usecases import models as _models
from bildwerk.usecases import qa as _qa
from bildwerk.usecases import queue as _queue
from bildwerk.usecases import review as _review
from bildwerk.usecases.rows import as_dict as _row

if TYPE_CHECKING:
    from bildwerk.accounts.governance import Actor
    from bildwerk.publish.publisher import Publisher

ENV_VAR = "BILDWERK_WORKSPACE"
ASSET_KINDS = ("product", "logo", "reference")


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

    def to_json(self, *, jobs: bool = True) -> dict[str, Any]:
        """What ``bildwerk plan --json`` and the web app's plan preview show."""
        p = self.plan
        out = {
            "variants": len(p.jobs),
            "scenes": len(p.scenes()),
            "cached": self.cached,
            "to_make": self.todo,
            "full_matrix": p.full_matrix,
            "strategy": p.strategy,
            "estimated_seconds": round(self.estimated_seconds, 1),
            "workers": self.workers,
            "per_channel": p.counts("channel"),
            "per_segment": p.counts("segment"),
            "per_locale": p.counts("locale"),
        }
        if jobs:
            out["jobs"] = [j.spec().to_json() for j in p.jobs]
        return out


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
        netguard.configure(self.settings.network.policy())

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
            delivery=self.settings.delivery_profiles(),
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

    submit = _queue.submit

    work = _queue.work

    cancel = _queue.cancel

    def runs(self, limit: int = 50) -> list[Run]:
        runqueue.expire_abandoned(self.db)
        with self.db.session() as s:
            return repo.list_runs(s, limit)

    def runs_summary(self, limit: int = 50) -> list[dict[str, Any]]:
        """Recent runs, newest first, without their jobs (one query)."""
        rows = [_row(r) for r in self.runs(limit)]
        for row in rows:
            if row.get("manifest_path"):
                row["manifest_path"] = str(self._stored_output(row["id"], row["manifest_path"]))
        return rows

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
        return self.run_row(run_id, jobs=True)

    def run_row(self, run_id: str, *, jobs: bool = False) -> dict[str, Any]:
        """One run (an id, a unique prefix, ``latest``), with its jobs if asked."""
        with self.db.session() as s:
            run = repo.get_run(s, run_id)
            if run is None:
                raise NotFoundError(f"no run '{run_id}'", hint="see 'bildwerk runs list'")
            info = _row(run)
            if jobs:
                info["jobs"] = [
                    {
                        "job_key": j.job_key,
                        "position": j.position,
                        "status": j.status,
                        "error": j.error,
                    }
                    for j in run.jobs
                ]
        if info.get("manifest_path"):
            info["manifest_path"] = str(self._stored_output(run.id, info["manifest_path"]))
        return info

    def _stored_output(self, run_id: str, stored: str) -> Path:
        """A run output's path as stored (relative to the workspace; absolute in catalogs
        from before that), resolved here: an absolute path into a folder that has since
        moved falls back to the same file under this workspace's runs folder."""
        path = Path(stored)
        if not path.is_absolute():
            return self.root / path
        moved = self.runs_dir / run_id / path.name
        if not path.exists() and path.parent.name == run_id and moved.exists():
            return moved
        return path

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
                    meta=InputRecord(
                        tuple(clean.notes), clean.source_format, clean.source_mode
                    ).to_json(),
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

    qa = _qa.qa

    # --- models ------------------------------------------------------------------------

    add_model = _models.add_model

    models = _models.models

    remove_model = _models.remove_model

    pull_model = _models.pull_model

    review = _review.review

    decide = _review.decide

    undo = _review.undo

    approve_run = _review.approve_run

    def reproduce(
        self, asset_id: str, *, on_event: EventSink = ignore, stream_id: str | None = None
    ) -> Reproduction:
        """Generate a scene or creative again from its record and compare the pixels;
        progress goes to the event stream ``stream_id`` (a new one by default)."""
        return reproduce(self.db, self.blobs, asset_id, root=self.root, on_event=on_event,
                         stream_id=stream_id)  # fmt: skip

    def creatives_marked(self, payload_hex: str) -> list[str]:
        """Creatives whose id starts with a watermark payload (``cr_<hex>…``)."""
        with self.db.session() as s:
            return repo.assets_with_prefix(s, f"cr_{payload_hex}", kind="creative")

    def publisher(
        self, actor: str, *, on_event: EventSink = ignore, governed: Actor | None = None
    ) -> Publisher:
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
            governed=governed,
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


def _default_job_seconds(plan: Plan) -> float:
    """Rough cost before any history exists: ~1.2 s per master megapixel on one core."""
    if not plan.jobs:
        return 0.0
    mp = [j.channel.master_size[0] * j.channel.master_size[1] / 1e6 for j in plan.jobs]
    return 1.2 * statistics.mean(mp)
