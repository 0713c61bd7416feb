"""Generate stage: one scene per distinct scene key, through the named backend.

Runs inside a worker process; the backend instance is created once per process (see
``registry.get_backend``) so heavy backends keep their models warm across jobs. The
worker reads product cutouts from the blob store by digest and stores the scenes it
makes itself: only digests travel back.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from PIL import Image

from bildwerk.backends.base import GenerationBackend, SceneRequest
from bildwerk.blobs.base import BlobStoreSpec
from bildwerk.registry import get_backend


@dataclass(frozen=True)
class SceneOutput:
    key: str
    png: bytes
    width: int
    height: int
    focal: tuple[float, float]
    product_box: tuple[int, int, int, int] | None
    params: dict[str, Any] = field(default_factory=dict)
    backend_version: str = ""
    ms: float = 0.0


def png_bytes(image: Image.Image) -> bytes:
    """Deterministic, fast lossless encoding for masters and scenes."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def generate_scenes(backend_name: str, requests: Sequence[SceneRequest]) -> list[SceneOutput]:
    """One backend call for a batch; each scene checked against its requested size."""
    started = time.perf_counter()
    backend: GenerationBackend = get_backend(backend_name)
    results = backend.generate(list(requests))
    if len(results) != len(requests):
        raise RuntimeError(
            f"backend '{backend_name}' returned {len(results)} scenes for {len(requests)} requests"
        )
    ms = (time.perf_counter() - started) * 1000 / max(1, len(requests))
    outputs = []
    for request, result in zip(requests, results, strict=True):
        image = result.image.convert("RGB")
        if image.size != (request.width, request.height):
            raise RuntimeError(
                f"backend '{backend_name}' returned {image.size}, "
                f"expected {(request.width, request.height)}"
            )
        box = result.product_box.as_tuple() if result.product_box else None
        outputs.append(
            SceneOutput(
                key=request.key,
                png=png_bytes(image),
                width=image.width,
                height=image.height,
                focal=result.focal,
                product_box=box,
                params=dict(result.params),
                backend_version=backend.version,
                ms=ms,
            )
        )
    return outputs


def generate_scene(backend_name: str, request: SceneRequest) -> SceneOutput:
    return generate_scenes(backend_name, [request])[0]


@dataclass(frozen=True)
class StoredScene:
    """A generated scene as the runner sees it: stored, named by its digest."""

    key: str
    sha256: str
    width: int
    height: int
    focal: tuple[float, float]
    product_box: tuple[int, int, int, int] | None
    params: dict[str, Any] = field(default_factory=dict)
    backend_version: str = ""
    ms: float = 0.0


def generate_stored(
    backend_name: str, requests: Sequence[SceneRequest], store: BlobStoreSpec
) -> list[StoredScene]:
    """The generate task: product cutouts read from the store by digest (verified), the
    scenes stored back; returns digests."""
    blobs = store.opened()
    resolved = [
        replace(r, product=blobs.local_path(r.product_sha256)) if r.product_sha256 else r
        for r in requests
    ]
    return [
        StoredScene(
            key=out.key,
            sha256=blobs.put(out.png),
            width=out.width,
            height=out.height,
            focal=out.focal,
            product_box=out.product_box,
            params=out.params,
            backend_version=out.backend_version,
            ms=out.ms,
        )
        for out in generate_scenes(backend_name, resolved)
    ]
