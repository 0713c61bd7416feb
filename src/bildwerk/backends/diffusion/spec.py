"""Typed view of ``SceneRequest.params["generation"]`` (plain JSON from the planner).

The rest of the backend works on these frozen dataclasses, never on raw dicts, and they
are hashable, so requests that share a spec can be batched together. Mistakes raise
:class:`UserError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from bildwerk.errors import UserError
from bildwerk.modelreg import DIFFUSION_ARCHITECTURES

Architecture = Literal[
    "sd15", "sd2", "sdxl", "sdxl-refiner", "sd-turbo", "sdxl-turbo", "sd3", "flux"
]
Mode = Literal["auto", "txt2img", "img2img", "inpaint", "outpaint", "product"]
ControlKind = Literal["canny", "depth", "pose", "segmentation"]

ARCHITECTURES: tuple[str, ...] = DIFFUSION_ARCHITECTURES  # one list, owned by the registry
MODES: tuple[str, ...] = ("auto", "txt2img", "img2img", "inpaint", "outpaint", "product")
CONTROL_KINDS: tuple[str, ...] = ("canny", "depth", "pose", "segmentation")
DTYPES: tuple[str, ...] = ("auto", "float32", "float16", "bfloat16")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")

# Architectures whose weights are interchangeable for LoRAs, embeddings and ControlNets:
# the turbo models are distilled from SD 2.1 and SDXL and keep their layer shapes; the
# SDXL refiner has a UNet of its own.
FAMILY: dict[str, str] = {
    "sd15": "sd1",
    "sd2": "sd2",
    "sd-turbo": "sd2",
    "sdxl": "sdxl",
    "sdxl-refiner": "sdxl-refiner",
    "sdxl-turbo": "sdxl",
    "sd3": "sd3",
    "flux": "flux",
}

# (steps, guidance) the model cards recommend; turbo models are distilled for ~1-4 steps
# without classifier-free guidance.
DEFAULTS: dict[str, tuple[int, float]] = {
    "sd15": (30, 7.0),
    "sd2": (30, 7.0),
    "sd-turbo": (2, 0.0),
    "sdxl": (30, 6.0),
    "sdxl-refiner": (30, 5.0),
    "sdxl-turbo": (2, 0.0),
    "sd3": (28, 7.0),
    "flux": (28, 3.5),
}


def _fail(field: str, message: str, hint: str | None = None) -> UserError:
    return UserError(f"generation.{field}: {message}", hint=hint)


def _str(data: Mapping[str, Any], key: str, field: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise _fail(f"{field}.{key}" if field else key, "must be a non-empty string")
    return value


def _opt_str(data: Mapping[str, Any], key: str, field: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _fail(f"{field}.{key}" if field else key, "must be a string")
    return value


def _choice(value: Any, options: tuple[str, ...], field: str) -> str:
    if value not in options:
        raise _fail(field, f"got {value!r}", hint=f"use one of: {', '.join(options)}")
    return cast(str, value)


def _number(value: Any, field: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise _fail(field, f"must be a number from {lo} to {hi}, got {value!r}")
    return float(value)


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _fail(field, f"must be a whole number from {lo} to {hi}, got {value!r}")
    return value


@dataclass(frozen=True)
class ModelSpec:
    """The base checkpoint: a diffusers folder or a single ``.safetensors``/``.ckpt`` file.
    ``config`` optionally names a local diffusers folder whose configs a single file uses
    (needed offline, where diffusers cannot fetch them)."""

    name: str
    path: str
    sha256: str
    architecture: Architecture
    format: Literal["diffusers", "single_file"] = "diffusers"
    config: str | None = None

    @property
    def family(self) -> str:
        return FAMILY[self.architecture]

    @classmethod
    def parse(cls, data: Any) -> ModelSpec:
        if not isinstance(data, Mapping):
            raise _fail(
                "model",
                "the diffusers backend needs a model",
                hint="set generation.model to a registered checkpoint",
            )
        arch = _choice(data.get("architecture"), ARCHITECTURES, "model.architecture")
        fmt = _choice(data.get("format", "diffusers"), ("diffusers", "single_file"), "model.format")
        return cls(
            name=_str(data, "name", "model"),
            path=_str(data, "path", "model"),
            sha256=str(data.get("sha256") or ""),
            architecture=cast(Architecture, arch),
            format=cast(Literal["diffusers", "single_file"], fmt),
            config=_opt_str(data, "config", "model"),
        )


@dataclass(frozen=True)
class LoraSpec:
    name: str
    path: str
    sha256: str
    weight: float
    architecture: str | None

    @classmethod
    def parse(cls, data: Any, i: int) -> LoraSpec:
        field = f"loras.{i}"
        if not isinstance(data, Mapping):
            raise _fail(field, "must be an object with name, path and weight")
        arch = data.get("architecture")
        if arch is not None:
            arch = _choice(arch, ARCHITECTURES, f"{field}.architecture")
        return cls(
            name=_str(data, "name", field),
            path=_str(data, "path", field),
            sha256=str(data.get("sha256") or ""),
            weight=_number(data.get("weight", 1.0), f"{field}.weight", -4.0, 4.0),
            architecture=arch,
        )


@dataclass(frozen=True)
class EmbeddingSpec:
    name: str
    path: str
    sha256: str
    token: str

    @classmethod
    def parse(cls, data: Any, i: int) -> EmbeddingSpec:
        field = f"embeddings.{i}"
        if not isinstance(data, Mapping):
            raise _fail(field, "must be an object with name, path and token")
        return cls(
            name=_str(data, "name", field),
            path=_str(data, "path", field),
            sha256=str(data.get("sha256") or ""),
            token=_str(data, "token", field),
        )


@dataclass(frozen=True)
class ControlSpec:
    name: str
    path: str
    sha256: str
    kind: ControlKind
    image: str | None
    scale: float

    @classmethod
    def parse(cls, data: Any) -> ControlSpec | None:
        if data is None:
            return None
        if not isinstance(data, Mapping):
            raise _fail("controlnet", "must be an object with name, path and kind")
        kind = _choice(data.get("kind", "canny"), CONTROL_KINDS, "controlnet.kind")
        return cls(
            name=_str(data, "name", "controlnet"),
            path=_str(data, "path", "controlnet"),
            sha256=str(data.get("sha256") or ""),
            kind=cast(ControlKind, kind),
            image=_opt_str(data, "image", "controlnet"),
            scale=_number(data.get("scale", 0.8), "controlnet.scale", 0.0, 2.0),
        )


@dataclass(frozen=True)
class ReferenceSpec:
    """A source image: img2img init, inpaint/outpaint source, or the product scene's
    starting background. ``mask`` (white = regenerate) is optional for inpainting; without
    it the image's transparent pixels are regenerated."""

    image: str
    strength: float
    mask: str | None = None

    @classmethod
    def parse(cls, data: Any) -> ReferenceSpec | None:
        if data is None:
            return None
        if not isinstance(data, Mapping):
            raise _fail("reference", "must be an object with image and strength")
        strength = data.get("strength", 0.6)
        if isinstance(strength, int | float) and not isinstance(strength, bool) and strength <= 0:
            raise _fail("reference.strength", f"must be above 0, got {strength!r}")
        return cls(
            image=_str(data, "image", "reference"),
            strength=_number(strength, "reference.strength", 0.0, 1.0),
            mask=_opt_str(data, "mask", "reference"),
        )


@dataclass(frozen=True)
class GenerationSpec:
    """Everything the diffusers backend needs besides the prompt, seed and canvas."""

    model: ModelSpec
    loras: tuple[LoraSpec, ...] = ()
    embeddings: tuple[EmbeddingSpec, ...] = ()
    controlnet: ControlSpec | None = None
    reference: ReferenceSpec | None = None
    scheduler: str | None = None
    steps: int | None = None
    guidance: float | None = None
    size: tuple[int, int] | None = None
    mode: Mode = "auto"
    dtype: str = "auto"
    device: str = "auto"
    batch_size: int | None = None
    compile: bool = False
    upscaler: str | None = None  # path of registered upscaler weights, for scaled-up scenes

    @property
    def resolved_steps(self) -> int:
        return self.steps if self.steps is not None else DEFAULTS[self.model.architecture][0]

    @property
    def resolved_guidance(self) -> float:
        if self.guidance is not None:
            return self.guidance
        return DEFAULTS[self.model.architecture][1]

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> GenerationSpec:
        """Parse ``params["generation"]``; raises UserError naming the bad field."""
        data = params.get("generation")
        if not isinstance(data, Mapping):
            raise UserError(
                "the diffusers backend got no generation settings",
                hint="set 'generation: {model: <name>}' in the brief",
            )
        loras = data.get("loras") or []
        embeddings = data.get("embeddings") or []
        if not isinstance(loras, list | tuple) or not isinstance(embeddings, list | tuple):
            raise _fail("loras", "loras and embeddings must be lists")
        size = data.get("size")
        if size is not None:
            if not isinstance(size, list | tuple) or len(size) != 2:
                raise _fail("size", f"must be [width, height], got {size!r}")
            size = (_int(size[0], "size", 64, 8192), _int(size[1], "size", 64, 8192))
        steps = data.get("steps")
        guidance = data.get("guidance")
        batch = data.get("batch_size")
        device = data.get("device") or "auto"
        if not isinstance(device, str) or device.split(":")[0] not in DEVICES:
            raise _fail("device", f"got {device!r}", hint="use auto, cpu, cuda, cuda:N or mps")
        return cls(
            model=ModelSpec.parse(data.get("model")),
            loras=tuple(LoraSpec.parse(x, i) for i, x in enumerate(loras)),
            embeddings=tuple(EmbeddingSpec.parse(x, i) for i, x in enumerate(embeddings)),
            controlnet=ControlSpec.parse(data.get("controlnet")),
            reference=ReferenceSpec.parse(data.get("reference")),
            scheduler=_opt_str(data, "scheduler", ""),
            steps=None if steps is None else _int(steps, "steps", 1, 200),
            guidance=None if guidance is None else _number(guidance, "guidance", 0.0, 30.0),
            size=size,
            mode=cast(Mode, _choice(data.get("mode") or "auto", MODES, "mode")),
            dtype=_choice(data.get("dtype") or "auto", DTYPES, "dtype"),
            device=device,
            batch_size=None if batch is None else _int(batch, "batch_size", 1, 64),
            compile=bool(data.get("compile", False)),
            upscaler=str((data.get("upscaler") or {}).get("path") or "") or None,
        )
