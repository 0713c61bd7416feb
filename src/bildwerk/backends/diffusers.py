"""The "diffusers" backend: Stable Diffusion family models through Hugging Face diffusers.

It reads the planner's resolved settings from ``request.params["generation"]``, keeps
pipelines warm across jobs, batches the requests it is handed that share model, size
and mode, and retries a batch in halves when the GPU runs out of memory. Products and
outpainting sources are pasted back pixel-exact after generation, so a brand's packshot
is never repainted by the model. The pieces live in ``bildwerk.backends.diffusion``.

Heavy libraries load on first use; without the ``diffusion`` extra the backend raises
:class:`~bildwerk.errors.MissingExtraError` naming it.
"""

from __future__ import annotations

import gc
import inspect
from collections.abc import Sequence
from typing import Any

from bildwerk.backends.base import Capabilities, Generated, SceneRequest
from bildwerk.backends.diffusion.adapters import activate_loras, load_embeddings
from bildwerk.backends.diffusion.libs import libs, package_version, require
from bildwerk.backends.diffusion.modes import Frame, Prepared, finish, prepare
from bildwerk.backends.diffusion.pipelines import PipelineCache, Warm, is_oom
from bildwerk.backends.diffusion.repro import (
    generators,
    make_deterministic,
    record,
    scheduler_record,
)
from bildwerk.backends.diffusion.schedulers import make_scheduler
from bildwerk.backends.diffusion.spec import GenerationSpec
from bildwerk.errors import UserError

__all__ = ["CODE_VERSION", "MAX_BATCH", "DiffusersBackend", "choose_batch_size"]

CODE_VERSION = "1"
MAX_BATCH = 8
CPU_PIXEL_BUDGET = 2 * 512 * 512  # pixels per CPU batch: beyond it batching gains nothing
GPU_BYTES_PER_PIXEL = 6_000  # activations per output pixel, half precision, with CFG
TILE_PIXELS = 1536 * 1536  # decode larger images in VAE tiles


def choose_batch_size(
    torch: Any, spec: GenerationSpec, warm: Warm, frame: Frame, guidance: float
) -> tuple[int, str]:
    """Images per pipeline call: ``batch_size`` when given; on CUDA what 70 % of the free
    memory holds by a per-pixel estimate; elsewhere a conservative pixel budget."""
    if spec.batch_size is not None:
        return spec.batch_size, "requested"
    pixels = frame.gen_width * frame.gen_height
    if warm.device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(warm.device))
        per_image = pixels * GPU_BYTES_PER_PIXEL * (1 if guidance > 1.0 else 0.5)
        per_image *= 2 if warm.dtype == torch.float32 else 1
        return max(1, min(MAX_BATCH, int(free * 0.7 // per_image))), "free-memory"
    budget = CPU_PIXEL_BUDGET if warm.device == "cpu" else 2 * CPU_PIXEL_BUDGET
    return max(1, min(MAX_BATCH, budget // pixels)), "pixel-budget"


class DiffusersBackend:
    """Scenes from Stable Diffusion 1.x/2.x/XL (and SD3/Flux where diffusers has the
    pipelines), with LoRAs, embeddings, ControlNets and product placement."""

    name = "diffusers"
    capabilities = Capabilities(
        text_to_image=True,
        product_placement=True,
        max_batch=MAX_BATCH,
        needs_model=True,
        deterministic=True,
    )

    def __init__(self, cache: PipelineCache | None = None, *, deterministic: bool = True) -> None:
        require()
        self.version = f"{CODE_VERSION}+diffusers-{package_version('diffusers')}"
        self.deterministic = deterministic
        self._cache = cache
        self._ready = False

    @property
    def cache(self) -> PipelineCache:
        if self._cache is None:
            self._cache = PipelineCache(libs())
        return self._cache

    # ------------------------------------------------------------------ generate

    def generate(self, batch: Sequence[SceneRequest]) -> list[Generated]:
        """One scene per request, in order; requests that share settings, generation
        size and task run as one batched pipeline call."""
        lib = libs()
        cache = self.cache
        if not self._ready:
            if self.deterministic:
                make_deterministic(lib.torch)
            self._ready = True
        out: list[Generated | None] = [None] * len(batch)
        by_spec: dict[GenerationSpec, list[int]] = {}
        for i, request in enumerate(batch):
            by_spec.setdefault(GenerationSpec.from_params(request.params), []).append(i)
        for spec, indices in by_spec.items():
            warm = cache.get(spec)
            multiple = max(8, warm.vae_scale_factor)
            groups: dict[tuple[Any, ...], list[tuple[int, Prepared]]] = {}
            for i in indices:
                request = batch[i]
                frame = Frame.plan(request.width, request.height, spec.size, multiple)
                prep = prepare(request, spec, frame, warm.inpaint_unet)
                key = (frame.gen_size, prep.task, prep.strength)
                groups.setdefault(key, []).append((i, prep))
            for members in groups.values():
                results = self._run_group(lib.torch, spec, warm, [p for _, p in members])
                for (i, _), result in zip(members, results, strict=True):
                    out[i] = result
        return [g for g in out if g is not None]

    def _run_group(
        self, torch: Any, spec: GenerationSpec, warm: Warm, preps: list[Prepared]
    ) -> list[Generated]:
        first = preps[0]
        pipe = self.cache.pipeline(warm, first.task, spec.controlnet)
        activate_loras(torch, warm, spec.loras)
        load_embeddings(warm, spec.embeddings)
        steps, guidance = spec.resolved_steps, spec.resolved_guidance
        if first.task != "txt2img":
            while int(steps * first.strength) < 1:  # diffusers runs int(steps × strength)
                steps += 1
        size, reason = choose_batch_size(torch, spec, warm, first.frame, guidance)
        done: list[Generated] = []
        start = 0
        while start < len(preps):
            chunk = preps[start : start + size]
            made = self._run_chunk(torch, spec, warm, pipe, chunk, steps, guidance, 0)
            for prep, (image, info, sched) in zip(chunk, made, strict=True):
                generated = finish(prep, image)
                batch = {**info, "requested": size, "chosen_by": reason}
                generated.params = record(
                    spec=spec,
                    warm=warm,
                    prep=prep,
                    pipeline=pipe,
                    scheduler=sched,
                    steps=steps,
                    guidance=guidance,
                    seed=prep.request.seed,
                    batch=batch,
                    options=self._options(warm, prep, info["size"]),
                )
                generated.params["backend_version"] = self.version
                done.append(generated)
            # after an OOM split, later chunks start at the size that worked
            size = min(size, min(i["size"] for _, i, _ in made))
            start += len(chunk)
        return done

    def _run_chunk(
        self,
        torch: Any,
        spec: GenerationSpec,
        warm: Warm,
        pipe: Any,
        chunk: list[Prepared],
        steps: int,
        guidance: float,
        splits: int,
    ) -> list[tuple[Any, dict[str, Any], dict[str, Any]]]:
        """Run ``chunk`` as one call; on out-of-memory, free what we can and run each
        half separately, down to single images."""
        try:
            images, sched = self._call(torch, spec, warm, pipe, chunk, steps, guidance)
        except Exception as exc:
            if not is_oom(torch, exc):
                raise
        else:
            # batch-mates are recorded: batched maths may differ from single images in the
            # last bit, so reproducing an image exactly means rebuilding its batch
            members = [p.request.key for p in chunk]
            info = {"size": len(chunk), "oom_splits": splits, "members": members}
            return [(image, {**info, "index": i}, sched) for i, image in enumerate(images)]
        # out of memory: the exception (and the activations its frames pin) is gone here
        gc.collect()
        if warm.device.startswith("cuda"):
            torch.cuda.empty_cache()
        if len(chunk) == 1:
            w, h = chunk[0].frame.gen_size
            raise UserError(
                f"out of memory generating one {w}×{h} image on {warm.device}",
                hint="lower generation.size, use dtype float16, or free the GPU",
            )
        half = len(chunk) // 2
        left, right = chunk[:half], chunk[half:]
        return [
            *self._run_chunk(torch, spec, warm, pipe, left, steps, guidance, splits + 1),
            *self._run_chunk(torch, spec, warm, pipe, right, steps, guidance, splits + 1),
        ]

    def _call(
        self,
        torch: Any,
        spec: GenerationSpec,
        warm: Warm,
        pipe: Any,
        chunk: list[Prepared],
        steps: int,
        guidance: float,
    ) -> tuple[list[Any], dict[str, Any]]:
        first = chunk[0]
        scheduler = make_scheduler(self.cache.lib.diffusers, warm, spec.scheduler)
        pipe.scheduler = scheduler
        self._vae_options(pipe, first.frame, len(chunk))
        negatives = [p.request.negative_prompt for p in chunk]
        kwargs: dict[str, Any] = {
            "prompt": [p.request.prompt for p in chunk],
            "negative_prompt": negatives if any(negatives) else None,
            "num_inference_steps": steps,
            "guidance_scale": guidance,
            "generator": generators(torch, [p.request.seed for p in chunk]),
            "output_type": "pil",
        }
        if first.task != "img2img":
            kwargs["width"], kwargs["height"] = first.frame.gen_size
        if first.task in ("img2img", "inpaint"):
            kwargs["image"] = [p.init for p in chunk]
            kwargs["strength"] = first.strength
        if first.task == "inpaint":
            kwargs["mask_image"] = [p.mask for p in chunk]
        accepted = inspect.signature(pipe.__call__).parameters
        if spec.controlnet is not None:
            slot = "control_image" if "control_image" in accepted else "image"
            kwargs[slot] = [p.control for p in chunk]
            kwargs["controlnet_conditioning_scale"] = spec.controlnet.scale
        kwargs = {k: v for k, v in kwargs.items() if k in accepted and v is not None}
        with torch.inference_mode():
            result = self._call_pipeline(pipe, kwargs)
        return list(result.images), scheduler_record(scheduler, spec.scheduler)

    def _call_pipeline(self, pipe: Any, kwargs: dict[str, Any]) -> Any:
        """The one place a pipeline runs (a seam for tests that simulate OOM)."""
        return pipe(**kwargs)

    @staticmethod
    def _vae_options(pipe: Any, frame: Frame, n: int) -> None:
        """Tile huge decodes; slice batches (one image at a time through the VAE caps its
        peak memory and makes batched decodes equal single ones)."""
        vae = getattr(pipe, "vae", None)
        if vae is None:
            return
        pixels = frame.gen_width * frame.gen_height
        if hasattr(vae, "enable_tiling"):
            if pixels > TILE_PIXELS:
                vae.enable_tiling()
            else:
                vae.disable_tiling()
        if hasattr(vae, "enable_slicing"):
            if n > 1:
                vae.enable_slicing()
            else:
                vae.disable_slicing()

    def _options(self, warm: Warm, prep: Prepared, n: int) -> dict[str, Any]:
        pixels = prep.frame.gen_width * prep.frame.gen_height
        return {
            "deterministic": self.deterministic,
            "compile": warm.compiled,
            "channels_last": warm.channels_last,
            "attention": warm.attention,
            "vae_tiling": pixels > TILE_PIXELS,
            "vae_slicing": n > 1,
            "safety_checker": False,
        }
