"""Reproducibility: seeded noise, deterministic kernels, and the record of what was used.

Noise is drawn on the CPU with one generator per image, so an image depends on its own
seed only — not on the device's RNG, nor on which other images share its batch.
``Generated.params`` records everything needed to make the same image again.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping, Sequence
from typing import Any

from bildwerk.backends.diffusion.libs import versions
from bildwerk.backends.diffusion.modes import Prepared
from bildwerk.backends.diffusion.pipelines import Warm, dtype_name
from bildwerk.backends.diffusion.spec import GenerationSpec

_SEED_MASK = (1 << 64) - 1  # torch seeds are unsigned 64-bit


def torch_seed(seed: int) -> int:
    return seed & _SEED_MASK


def generators(torch: Any, seeds: Sequence[int]) -> list[Any]:
    """One CPU generator per image: CPU noise is identical on every machine and device,
    and per-image generators make a batch equal the same images made one by one."""
    return [torch.Generator("cpu").manual_seed(torch_seed(s)) for s in seeds]


def make_deterministic(torch: Any) -> None:
    """Deterministic kernels where torch has them (cuDNN, cuBLAS); warn, not fail, for
    the few ops without one."""
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def json_safe(value: Any) -> Any:
    """Plain JSON from scheduler configs and friends (tuples, numpy scalars, dtypes)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        try:
            return json_safe(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)


def scheduler_record(scheduler: Any, name: str | None) -> dict[str, Any]:
    config = {k: v for k, v in dict(scheduler.config).items() if not k.startswith("_")}
    return {"name": name, "class": type(scheduler).__name__, "config": json_safe(config)}


def record(
    *,
    spec: GenerationSpec,
    warm: Warm,
    prep: Prepared,
    pipeline: Any,
    scheduler: dict[str, Any],
    steps: int,
    guidance: float,
    seed: int,
    batch: dict[str, Any],
    options: dict[str, Any],
) -> dict[str, Any]:
    """The parameters one image was made with (JSON)."""
    m = spec.model
    out: dict[str, Any] = {
        "backend": "diffusers",
        "model": {
            "name": m.name,
            "sha256": m.sha256,
            "architecture": m.architecture,
            "format": m.format,
        },
        "pipeline": type(pipeline).__name__,
        "mode": prep.mode,
        "requested_mode": spec.mode,
        "task": prep.task,
        "scheduler": scheduler,
        "steps": steps,
        "guidance": guidance,
        "strength": prep.strength,
        "seed": seed,
        "noise": "cpu",
        "size": [prep.frame.gen_width, prep.frame.gen_height],
        "output_size": [prep.request.width, prep.request.height],
        "frame": prep.frame.record(),
        "dtype": dtype_name(warm.dtype),
        "device": warm.device,
        "loras": [
            {"name": x.name, "sha256": x.sha256, "weight": x.weight, "architecture": x.architecture}
            for x in spec.loras
        ],
        "embeddings": [
            {"name": x.name, "sha256": x.sha256, "token": x.token} for x in spec.embeddings
        ],
        "controlnet": None,
        "reference": None,
        "batch": batch,
        "versions": {**versions(), "python": platform.python_version()},
        **options,
        **prep.notes,
    }
    if spec.controlnet is not None:
        c = spec.controlnet
        out["controlnet"] = {
            "name": c.name,
            "sha256": c.sha256,
            "kind": c.kind,
            "scale": c.scale,
            "image": c.image,
        }
    if spec.reference is not None:
        r = spec.reference
        out["reference"] = {"image": r.image, "strength": r.strength, "mask": r.mask}
    if prep.box is not None:
        out["layer_box"] = list(prep.box.as_tuple())
    return out
