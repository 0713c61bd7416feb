"""``bildwerk reproduce``: generate an asset again from its recorded inputs and compare.

The scene is regenerated from the request stored with it; for a creative the brand
overlay is composed again too, when the brand kit is unchanged. Results are reported as
bit-identical or as a pixel difference. Each reproduction writes its own event stream
(``reproduce-…``; stages ``generate``, ``compose``, ``compare``) for the progress bars
and ``runs watch``.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import select

from bildwerk.atomicio import sha256_bytes
from bildwerk.blobs import BlobStore
from bildwerk.catalog import repo
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Job
from bildwerk.config.brand import load_brand
from bildwerk.errors import NotFoundError, UserError
from bildwerk.events import EventSink, EventStream, ignore, operation_id
from bildwerk.records import ComposedCreative, JobSpec, SceneRecord
from bildwerk.stages.generate import generate_scene
from bildwerk.stages.work import compose_image, compose_task, load_rgba


@dataclass(frozen=True)
class Comparison:
    identical: bool
    max_abs_diff: int
    mean_abs_diff: float
    psnr_db: float | None  # None when identical (infinite)


@dataclass(frozen=True)
class Reproduction:
    asset_id: str
    scene_id: str
    backend: str
    scene: Comparison
    master: Comparison | None
    note: str | None = None
    events: str = ""  # the event stream's id

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def identical(self) -> bool:
        return self.scene.identical and (self.master is None or self.master.identical)


def compare(stored: bytes, fresh: bytes) -> Comparison:
    if sha256_bytes(stored) == sha256_bytes(fresh):
        return Comparison(True, 0, 0.0, None)
    with Image.open(io.BytesIO(stored)) as a, Image.open(io.BytesIO(fresh)) as b:
        x = np.asarray(a.convert("RGB"), dtype=np.int16)
        y = np.asarray(b.convert("RGB"), dtype=np.int16)
    if x.shape != y.shape:
        return Comparison(False, 255, 255.0, 0.0)
    diff = np.abs(x - y)
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    psnr = None if mse == 0 else 10 * math.log10(255**2 / mse)
    return Comparison(bool(mse == 0), int(diff.max()), float(diff.mean()), psnr)


def reproduce(
    db: Database,
    blobs: BlobStore,
    asset_id: str,
    *,
    root: Path | None = None,
    on_event: EventSink = ignore,
    stream_id: str | None = None,
) -> Reproduction:
    stream = EventStream(db, stream_id or operation_id("reproduce"), on_event)
    stream.emit("run.started", data={"op": "reproduce", "asset_id": asset_id})
    try:
        result = _reproduce(db, blobs, asset_id, root, stream)
    except BaseException as exc:
        stream.emit(
            "run.finished", message=str(exc) or type(exc).__name__, data={"status": "failed"}
        )
        stream.flush_now()
        raise
    stream.emit(
        "run.finished",
        data={"status": "done", "asset_id": result.asset_id, "identical": result.identical},
    )
    stream.flush_now()
    return replace(result, events=stream.stream)


def _reproduce(
    db: Database, blobs: BlobStore, asset_id: str, root: Path | None, stream: EventStream
) -> Reproduction:
    with db.session() as s:
        asset = repo.get_asset(s, asset_id)
        if asset is None:
            raise NotFoundError(f"no asset '{asset_id}'", hint="see 'bildwerk assets list'")
        if asset.kind not in ("scene", "creative"):
            raise UserError(
                f"{asset.id} is an imported {asset.kind}; only generated scenes "
                "and creatives can be reproduced"
            )
        creative = asset if asset.kind == "creative" else None
        spec: JobSpec | None = None
        composed: ComposedCreative | None = None
        if creative is not None:
            job = s.scalars(select(Job).where(Job.creative_id == creative.id)).first()
            if job is None:
                raise NotFoundError(f"no job recorded for {creative.id}")
            spec, composed = JobSpec.from_json(job.spec), ComposedCreative.from_json(creative.meta)
            scene = repo.get_asset(s, job.scene_id)
        else:
            scene = asset
        assert scene is not None
        logo = repo.parents_of(s, [asset.id], "logo_in").get(asset.id)
        logo_asset = repo.get_asset(s, logo) if logo else None
        record = SceneRecord.from_json(scene.meta)
        stored_scene = blobs.get(scene.sha256)
        stored_master = blobs.get(creative.sha256) if creative else None
        logo_sha = logo_asset.sha256 if logo_asset else None
    product_sha = record.request.product_sha256
    request = replace(
        record.request, product=blobs.local_path(product_sha) if product_sha else None
    )
    stream.emit("stage.started", stage="generate", total=1)
    stream.flush_now()  # generating may take long: let watchers see it started
    out = generate_scene(record.backend, request)
    stream.emit("job.finished", stage="generate", job=scene.id)
    stream.emit("stage.finished", stage="generate")
    master_png: bytes | None = None
    note = None
    if spec is not None and composed is not None and stored_master is not None:
        brand_path = Path(composed.brand_path)
        if root is not None and not brand_path.is_absolute():
            brand_path = root / brand_path
        brand = load_brand(brand_path) if brand_path.is_file() else None
        if brand is None or brand.sha256 != composed.brand_sha256:
            note = "brand kit changed since the run; only the scene was compared"
            stream.emit("message", job=asset.id, message=note)
        else:
            stream.emit("stage.started", stage="compose", total=1)
            task = compose_task(spec, request, brand, scene.sha256, logo_sha, None)
            with Image.open(io.BytesIO(out.png)) as im:
                scene_image = im.convert("RGB")
            logo_image = load_rgba(blobs.local_path(logo_sha)) if logo_sha else None
            master_png = compose_image(task, scene_image, logo_image).png
            stream.emit("job.finished", stage="compose", job=asset.id)
            stream.emit("stage.finished", stage="compose")
    stream.emit("stage.started", stage="compare", total=1 if master_png is None else 2)
    scene_cmp = compare(stored_scene, out.png)
    stream.emit(
        "job.finished", stage="compare", job=scene.id, data={"identical": scene_cmp.identical}
    )
    master_cmp = None
    if master_png is not None and stored_master is not None:
        master_cmp = compare(stored_master, master_png)
        stream.emit(
            "job.finished", stage="compare", job=asset.id, data={"identical": master_cmp.identical}
        )
    stream.emit("stage.finished", stage="compare")
    return Reproduction(asset.id, scene.id, record.backend, scene_cmp, master_cmp, note)
