"""Loading diffusers pipelines once per process and keeping them warm.

A checkpoint is loaded once (its own pipeline class, on one device and dtype) and every
task — text-to-image, image-to-image, inpainting, each with or without a ControlNet — is
derived from it with ``AutoPipelineFor*.from_pipe``, which shares the weights instead of
copying them. What is added to a warm model later (LoRA adapters, embedding tokens)
is tracked on :class:`Warm` and managed in ``adapters``.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bildwerk.backends.diffusion.libs import Libs
from bildwerk.backends.diffusion.spec import ControlSpec, GenerationSpec, ModelSpec
from bildwerk.errors import UserError

log = logging.getLogger(__name__)

Task = str  # "txt2img" | "img2img" | "inpaint"

SINGLE_FILE_CLASS: dict[str, str] = {
    "sd15": "StableDiffusionPipeline",
    "sd2": "StableDiffusionPipeline",
    "sd-turbo": "StableDiffusionPipeline",
    "sdxl": "StableDiffusionXLPipeline",
    "sdxl-refiner": "StableDiffusionXLImg2ImgPipeline",
    "sdxl-turbo": "StableDiffusionXLPipeline",
    "sd3": "StableDiffusion3Pipeline",
    "flux": "FluxPipeline",
}
CONTROLNET_CLASS: dict[str, str] = {"sd3": "SD3ControlNetModel", "flux": "FluxControlNetModel"}
AUTO_CLASS: dict[Task, str] = {
    "txt2img": "AutoPipelineForText2Image",
    "img2img": "AutoPipelineForImage2Image",
    "inpaint": "AutoPipelineForInpainting",
}
_CORRUPT_HINT = "the file is damaged or not a checkpoint of this kind: download it again"


# --------------------------------------------------------------------------- runtime


def resolve_device(torch: Any, want: str) -> str:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; an explicit choice must exist."""
    if want == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(
            f"generation.device is '{want}' but torch sees no CUDA GPU",
            hint="use device: auto, or install the CUDA build of torch",
        )
    if want == "mps" and not torch.backends.mps.is_available():
        raise UserError("generation.device is 'mps' but MPS is not available here")
    return want


def resolve_dtype(torch: Any, want: str, device: str, architecture: str) -> Any:
    """fp32 on the CPU (half precision is slow or unsupported there); on GPUs bf16 for
    the transformer models that were trained in it, fp16 for the UNet models."""
    if want != "auto":
        return getattr(torch, want)
    if device == "cpu":
        return torch.float32
    if device.startswith("cuda") and architecture in ("sd3", "flux"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float16


def dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def is_oom(torch: Any, exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the RuntimeError other backends (MPS) raise."""
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


# --------------------------------------------------------------------------- errors


def find_damaged(path: Path) -> Path:
    """The first weight or config file under ``path`` that cannot be parsed (headers only,
    cheap); ``path`` itself when none stands out."""
    if path.is_file():
        return path
    from safetensors import safe_open

    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        try:
            if f.suffix == ".safetensors":
                with safe_open(str(f), framework="pt") as handle:
                    handle.keys()
            elif f.suffix == ".json":
                json.loads(f.read_text(encoding="utf-8"))
        except Exception:
            return f
    return path


def load_error(what: str, path: Path, exc: BaseException) -> UserError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    culprit = find_damaged(path) if path.exists() else path
    return UserError(f"cannot load {what} from {culprit}: {reason[:300]}", hint=_CORRUPT_HINT)


def _in_channels(pipe: Any) -> int | None:
    unet = getattr(pipe, "unet", None)
    return None if unet is None else int(unet.config.in_channels)


# --------------------------------------------------------------------------- cache


@dataclass
class Warm:
    """One loaded checkpoint on one device and dtype, with what has been added to it."""

    key: tuple[str, ...]
    model: ModelSpec
    pipe: Any
    device: str
    dtype: Any
    scheduler_class: str
    scheduler_config: dict[str, Any]
    inpaint_unet: bool
    vae_scale_factor: int
    variants: dict[tuple[Task, str], Any] = field(default_factory=dict)
    controlnets: dict[tuple[str, ...], Any] = field(default_factory=dict)  # freed with it
    adapters: dict[str, str] = field(default_factory=dict)  # LoRA key -> adapter name
    tokens: dict[str, str] = field(default_factory=dict)  # token -> embedding key
    compiled: bool = False
    channels_last: bool = False
    attention: str = ""  # the denoiser's attention processor classes, for the record


class PipelineCache:
    """Warm checkpoints, least recently used first out. ``max_models`` bounds how many
    stay resident (one on a GPU unless raised: two SDXLs rarely fit beside activations)."""

    def __init__(self, lib: Libs, max_models: int | None = None) -> None:
        self.lib = lib
        self.max_models = max_models
        self._warm: OrderedDict[tuple[str, ...], Warm] = OrderedDict()
        self.loads = 0  # checkpoint loads, for tests and logs

    # ------------------------------------------------------------------ base models

    def _key(self, spec: GenerationSpec) -> tuple[tuple[str, ...], str, Any]:
        torch = self.lib.torch
        device = resolve_device(torch, spec.device)
        dtype = resolve_dtype(torch, spec.dtype, device, spec.model.architecture)
        m = spec.model
        key = (m.sha256 or str(Path(m.path).resolve()), m.format, dtype_name(dtype), device)
        return key, device, dtype

    def get(self, spec: GenerationSpec) -> Warm:
        """The warm checkpoint for ``spec`` (loaded on first use), compiled if asked."""
        key, device, dtype = self._key(spec)
        warm = self._warm.get(key)
        if warm is None:
            self._evict(device)
            warm = self._warm_up(self._load(spec.model, dtype), spec.model, key, device, dtype)
            self.loads += 1
            self._warm[key] = warm
        self._warm.move_to_end(key)
        if spec.compile and not warm.compiled:
            # in place (nn.Module.compile): LoRA loading still sees the plain module tree
            denoiser = getattr(warm.pipe, "unet", None) or warm.pipe.transformer
            denoiser.compile()
            warm.compiled = True
        return warm

    def adopt(self, spec: GenerationSpec, pipe: Any) -> Warm:
        """Use an already built pipeline for ``spec``'s model: benchmarks with random
        weights, or applications that build their pipelines some other way."""
        key, device, dtype = self._key(spec)
        self._evict(device)
        warm = self._warm_up(pipe, spec.model, key, device, dtype)
        self._warm[key] = warm
        return warm

    def _evict(self, device: str) -> None:
        limit = self.max_models if self.max_models is not None else (2 if device == "cpu" else 1)
        while len(self._warm) >= limit:
            _, old = self._warm.popitem(last=False)
            log.info("unloading %s to make room", old.model.name)
            del old
            if device.startswith("cuda"):
                self.lib.torch.cuda.empty_cache()

    def _load(self, m: ModelSpec, dtype: Any) -> Any:
        diffusers, torch = self.lib.diffusers, self.lib.torch
        path = Path(m.path)
        if not path.exists():
            raise UserError(
                f"model '{m.name}': {path} does not exist",
                hint="register the model again (bildwerk models add ...)",
            )
        kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": True}
        try:
            if m.format == "diffusers":
                index = path / "model_index.json"
                if not index.is_file():
                    raise UserError(
                        f"model '{m.name}': {path} is not a diffusers folder (no model_index.json)",
                        hint="use format: single_file for a .safetensors/.ckpt checkpoint",
                    )
                if "safety_checker" in json.loads(index.read_text(encoding="utf-8")):
                    # content checks are the QA stage's job, with reasons and evidence
                    kwargs.update(safety_checker=None, requires_safety_checker=False)
                pipe = diffusers.DiffusionPipeline.from_pretrained(str(path), **kwargs)
            else:
                if m.config:
                    kwargs["config"] = m.config
                cls = getattr(diffusers, SINGLE_FILE_CLASS[m.architecture])
                pipe = cls.from_single_file(str(path), **kwargs)
        except UserError:
            raise
        except Exception as exc:
            if is_oom(torch, exc):
                raise
            raise load_error(f"model '{m.name}'", path, exc) from exc
        return pipe

    def _warm_up(
        self, pipe: Any, m: ModelSpec, key: tuple[str, ...], device: str, dtype: Any
    ) -> Warm:
        """Move to the device and apply the throughput settings: channels_last for the
        UNet's convolutions on CUDA (SDPA attention is diffusers' default on torch 2)."""
        # dtype only when it differs: a no-op cast still makes diffusers warn about it
        pipe.to(device=device, dtype=None if pipe.dtype == dtype else dtype)
        pipe.set_progress_bar_config(disable=True)
        warm = Warm(
            key=key,
            model=m,
            pipe=pipe,
            device=device,
            dtype=dtype,
            scheduler_class=type(pipe.scheduler).__name__,
            scheduler_config=dict(pipe.scheduler.config),
            inpaint_unet=_in_channels(pipe) == 9,
            vae_scale_factor=int(getattr(pipe, "vae_scale_factor", 8)),
        )
        denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
        processors = getattr(denoiser, "attn_processors", {})
        warm.attention = ",".join(sorted({type(p).__name__ for p in processors.values()}))
        if device.startswith("cuda") and hasattr(pipe, "unet"):
            pipe.unet.to(memory_format=self.lib.torch.channels_last)
            warm.channels_last = True
        return warm

    # ------------------------------------------------------------------ variants

    def controlnet(self, spec: ControlSpec, warm: Warm) -> Any:
        """The ControlNet for ``spec`` on ``warm``'s device and dtype, loaded once."""
        key = (spec.sha256 or str(Path(spec.path).resolve()), dtype_name(warm.dtype), warm.device)
        net = warm.controlnets.get(key)
        if net is None:
            path = Path(spec.path)
            if not path.exists():
                raise UserError(f"ControlNet '{spec.name}': {path} does not exist")
            cls = getattr(
                self.lib.diffusers, CONTROLNET_CLASS.get(warm.model.family, "ControlNetModel")
            )
            try:
                if path.is_file():
                    net = cls.from_single_file(str(path), dtype=warm.dtype, local_files_only=True)
                else:
                    net = cls.from_pretrained(str(path), dtype=warm.dtype, local_files_only=True)
            except Exception as exc:
                if is_oom(self.lib.torch, exc):
                    raise
                raise load_error(f"ControlNet '{spec.name}'", path, exc) from exc
            unet = getattr(warm.pipe, "unet", None)
            width = getattr(net.config, "cross_attention_dim", None)
            if unet is not None and width != unet.config.cross_attention_dim:
                raise UserError(
                    f"ControlNet '{spec.name}' does not fit model '{warm.model.name}' "
                    f"({warm.model.architecture}): text width {width}, the model's is "
                    f"{unet.config.cross_attention_dim}",
                    hint="use a ControlNet trained for this model's architecture",
                )
            net.to(warm.device)
            if warm.channels_last:
                net.to(memory_format=self.lib.torch.channels_last)
            warm.controlnets[key] = net
        return net

    def pipeline(self, warm: Warm, task: Task, control: ControlSpec | None) -> Any:
        """The pipeline for ``task`` (and ControlNet), sharing ``warm``'s weights."""
        cn_key = control.sha256 or control.path if control else ""
        key = (task, cn_key)
        pipe = warm.variants.get(key)
        if pipe is None:
            auto = getattr(self.lib.diffusers, AUTO_CLASS[task])
            kwargs: dict[str, Any] = {}
            if control is not None:
                kwargs["controlnet"] = self.controlnet(control, warm)
            elif "controlnet" in warm.pipe.components:
                kwargs["controlnet"] = None
            try:
                pipe = auto.from_pipe(warm.pipe, **kwargs)
            except ValueError as exc:
                raise UserError(
                    f"model '{warm.model.name}' ({warm.model.architecture}) has no "
                    f"{task} pipeline{' with a ControlNet' if control else ''} in diffusers",
                    hint=str(exc).splitlines()[0][:200],
                ) from exc
            pipe.set_progress_bar_config(disable=True)
            warm.variants[key] = pipe
        return pipe
