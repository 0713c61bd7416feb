"""What a weights file or folder is: kind, architecture and details, from configs and
tensor shapes only."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bildwerk.atomicio import sha256_file
from bildwerk.errors import UserError
from bildwerk.modelreg.vocab import (
    DIFFUSION_ARCHITECTURES,
    KINDS,
    REDOWNLOAD_HINT,
    WEIGHT_SUFFIXES,
    Shapes,
)
from bildwerk.modelreg.weights import folder_digest, folder_files, read_shapes

_BASE = {"sd-turbo": "sd2", "sdxl-turbo": "sdxl"}
_TURBO = {"sd2": "sd-turbo", "sdxl": "sdxl-turbo"}
_ALIASES = {
    "sd1": "sd15",
    "sd1.5": "sd15",
    "sd-1.5": "sd15",
    "sd21": "sd2",
    "sd2.1": "sd2",
    "sd-2.1": "sd2",
    "sd-xl": "sdxl",
    "sd3.5": "sd3",
    "flux1": "flux",
}
# UNet cross-attention width (to_k input) and CLIP text hidden size per base model.
_CROSS_DIM = {768: "sd15", 1024: "sd2", 2048: "sdxl", 1280: "sdxl-refiner"}
_TEXT_DIM = {768: "sd15", 1024: "sd2"}
_CLIP_TEXT = {512: "clip-b", 768: "clip-l", 1024: "clip-h", 1280: "clip-g"}
_CLIP_VISION = {768: "clip-b", 1024: "clip-l", 1280: "clip-h", 1664: "clip-g"}
# What trainers write in safetensors metadata: a fallback when the keys do not tell.
_META_HINTS = (
    ("sdxl", "sdxl"),
    ("stable-diffusion-xl", "sdxl"),
    ("sd_v1", "sd15"),
    ("stable-diffusion-v1", "sd15"),
    ("sd_v2", "sd2"),
    ("stable-diffusion-v2", "sd2"),
    ("stable-diffusion-3", "sd3"),
    ("sd3", "sd3"),
    ("flux", "flux"),
)
_LORA_KEY = re.compile(
    r"lora_down|lora_up|lora_A|lora_B|lora\.down|lora\.up|lora_linear_layer|hada_w1|lokr_w1"
)
_LORA_DOWN = re.compile(r"lora_down|lora_A|lora\.down")
_EMBED_KEYS = {"emb_params", "clip_l", "clip_g"}


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`inspect_model` found; ``sha256`` names the exact weights."""

    kind: str
    path: Path
    format: str  # "diffusers" (a folder) or "single_file"
    architecture: str
    sha256: str
    size_bytes: int
    meta: dict[str, Any] = field(default_factory=dict)


def base_architecture(architecture: str) -> str:
    """The base a LoRA must be trained for: turbo models take their base's LoRAs."""
    return _BASE.get(architecture, architecture)


def inspect_model(
    path: Path, kind: str | None = None, *, architecture: str | None = None
) -> ModelInfo:
    """Detect kind and architecture, and hash the weights; ``UserError`` when unreadable.

    ``kind`` and ``architecture`` override detection (a folder's kind is still checked,
    since a wrong one would fail only later, at generation time).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{path}: no such file or folder", hint="check the path and try again")
    path = path.resolve()
    if kind is not None and kind not in KINDS:
        raise UserError(f"unknown model kind '{kind}'", hint=f"use one of: {', '.join(KINDS)}")
    if path.is_dir():
        found_kind, arch, meta = _inspect_folder(path, kind)
    else:
        found_kind, arch, meta = _inspect_file(path, kind)
    if architecture is not None:
        wanted = _check_architecture(found_kind, architecture)
        if arch is not None and arch != wanted:
            meta["detected_architecture"] = arch
        arch = wanted
    if arch is None:
        raise UserError(
            f"{path}: cannot tell which base model this {found_kind} belongs to",
            hint=f"pass the architecture explicitly (--arch {'|'.join(DIFFUSION_ARCHITECTURES)})",
        )
    if path.is_dir():  # hashed last: gigabytes, so only once the model is known to be usable
        sha, size, meta["files"] = folder_digest(path)
        return ModelInfo(found_kind, path, "diffusers", arch, sha, size, meta)
    sha, size = sha256_file(path), path.stat().st_size
    return ModelInfo(found_kind, path, "single_file", arch, sha, size, meta)


def _check_architecture(kind: str, architecture: str) -> str:
    arch = architecture.strip().lower()
    arch = _ALIASES.get(arch, arch)
    if kind in ("upscaler", "clip"):
        if re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", arch):
            return arch
    elif arch in DIFFUSION_ARCHITECTURES:
        return arch
    raise UserError(
        f"unknown architecture '{architecture}' for a {kind}",
        hint="use one of: " + ", ".join(DIFFUSION_ARCHITECTURES),
    )


# -- single files ---------------------------------------------------------------------


def _inspect_file(path: Path, kind: str | None) -> tuple[str, str | None, dict[str, Any]]:
    shapes, metadata = read_shapes(path)
    if not shapes:
        raise UserError(f"{path}: contains no tensors", hint=REDOWNLOAD_HINT)
    kind = kind or _classify(path, shapes)
    meta: dict[str, Any] = {"tensors": len(shapes)}
    for key in ("ss_base_model_version", "modelspec.architecture", "modelspec.title"):
        if key in metadata:
            meta[key] = metadata[key][:200]
    arch: str | None
    if kind == "lora":
        arch = _lora_arch(shapes) or _metadata_arch(metadata)
        ranks = {s[0] for k, s in shapes.items() if _LORA_DOWN.search(k) and s}
        if ranks:
            meta["rank"] = max(ranks)
    elif kind == "embedding":
        arch, meta["vectors"] = _embedding_arch(shapes)
    elif kind in ("checkpoint", "controlnet"):
        arch = _unet_arch(shapes)
        if arch is None and kind == "checkpoint":
            arch = _metadata_arch(metadata)
        conv_in = shapes.get("model.diffusion_model.input_blocks.0.0.weight")
        if conv_in and len(conv_in) == 4:
            meta["in_channels"] = conv_in[1]
            meta["inpainting"] = conv_in[1] == 9
        spec = (metadata.get("modelspec.architecture", ""), metadata.get("modelspec.title", ""))
        if arch in _TURBO and _says_turbo(path.name, *spec):
            arch = _TURBO[arch]
    elif kind == "clip":
        arch = _clip_file_arch(shapes)
    else:
        arch, more = _upscaler_arch(path)
        meta.update(more)
    return kind, arch, meta


def _classify(path: Path, shapes: Shapes) -> str:
    keys = list(shapes)
    if any(_LORA_KEY.search(k) or k.endswith(".alpha") for k in keys):
        return "lora"
    if _is_embedding(shapes):
        return "embedding"
    if any(
        k.startswith(("control_model.", "controlnet_cond_embedding.")) or "input_hint_block" in k
        for k in keys
    ):
        return "controlnet"
    if any(
        k.startswith(("model.diffusion_model.", "double_blocks.", "joint_blocks.")) for k in keys
    ):
        return "checkpoint"
    if any(k.startswith(("text_model.", "vision_model.")) for k in keys):
        return "clip"
    from bildwerk.upscale import recognises

    hint = (
        "expected a checkpoint, LoRA, textual inversion, ControlNet, CLIP or upscaler "
        "(ESRGAN/Real-ESRGAN; SwinIR, HAT, … with pip install 'bildwerk[spandrel]'); "
        "if it is one, pass --kind"
    )
    try:
        if recognises(shapes):
            return "upscaler"
    except UserError as exc:  # spandrel installed but broken: say so, naming the file
        raise UserError(
            f"{path}: not a diffusion model file, and upscalers cannot be detected: {exc.message}",
            hint=exc.hint or hint,
        ) from None
    raise UserError(f"{path}: not a model file bildwerk recognises", hint=hint)


def _is_embedding(shapes: Shapes) -> bool:
    keys = set(shapes)
    if len(keys) > 8:
        return False
    if keys & _EMBED_KEYS or any(k.startswith("string_to_param.") for k in keys):
        return True
    # diffusers' learned_embeds: one token -> one vector (or a few)
    if len(keys) == 1:
        (key,) = keys
        shape = shapes[key]
        return "." not in key and 1 <= len(shape) <= 2 and shape[-1] in (768, 1024)
    return False


def _embedding_arch(shapes: Shapes) -> tuple[str | None, int]:
    if "clip_g" in shapes or "clip_l" in shapes:
        vectors = shapes.get("clip_g", shapes.get("clip_l", (1,)))
        return ("sdxl" if "clip_g" in shapes else None), (vectors[0] if len(vectors) == 2 else 1)
    for key, shape in shapes.items():
        if key == "emb_params" or key.startswith("string_to_param.") or len(shapes) == 1:
            return _TEXT_DIM.get(shape[-1]), (shape[0] if len(shape) == 2 else 1)
    return None, 0


def _lora_arch(shapes: Shapes) -> str | None:
    keys = list(shapes)
    if any(("single_transformer_blocks" in k or "double_blocks" in k) for k in keys):
        return "flux"
    if any(("joint_blocks" in k or k.startswith("transformer.transformer_blocks")) for k in keys):
        return "sd3"
    downs = {k: v for k, v in shapes.items() if _LORA_DOWN.search(k) and len(v) == 2}
    for key, shape in downs.items():  # cross-attention input width: the UNet's own fact
        if re.search(r"attn2[._]to_k", key) and shape[1] in _CROSS_DIM:
            return _CROSS_DIM[shape[1]]
    if any(re.match(r"(lora_te[12]_|te[12]\.|text_encoder_2\.)", k) for k in keys):
        return "sdxl"
    for key, shape in downs.items():  # text-encoder-only LoRAs: CLIP hidden width
        if re.match(r"(lora_te_|text_encoder\.|te\.)", key) and shape[1] in _TEXT_DIM:
            return _TEXT_DIM[shape[1]]
    return None


def _unet_arch(shapes: Shapes) -> str | None:
    keys = list(shapes)
    if any("double_blocks." in k for k in keys):
        return "flux"
    if any("joint_blocks." in k for k in keys):
        return "sd3"
    if any(k.startswith("conditioner.embedders.1.") for k in keys):
        return "sdxl"
    first = "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    for prefix in ("model.diffusion_model.", "control_model.", ""):
        if prefix + first in shapes:
            return _CROSS_DIM.get(shapes[prefix + first][-1])
    for key, shape in shapes.items():  # SDXL has no attention in input block 1
        if key.endswith("attn2.to_k.weight") and len(shape) == 2:
            return _CROSS_DIM.get(shape[1])
    return None


def _clip_file_arch(shapes: Shapes) -> str:
    text = shapes.get("text_model.final_layer_norm.weight")
    if text:
        return _CLIP_TEXT.get(text[0], "clip")
    vision = shapes.get("vision_model.post_layernorm.weight")
    return _CLIP_VISION.get(vision[0], "clip") if vision else "clip"


def _upscaler_arch(path: Path) -> tuple[str, dict[str, Any]]:
    from bildwerk.upscale import describe_upscaler

    info = describe_upscaler(path)
    return info.architecture, {
        "scale": info.scale,
        "purpose": info.purpose,
        "tags": list(info.tags),
        "channels": info.input_channels,
    }


def _metadata_arch(metadata: Mapping[str, str]) -> str | None:
    for key in ("ss_base_model_version", "modelspec.architecture"):
        value = metadata.get(key, "").lower()
        for hint, arch in _META_HINTS:
            if hint in value:
                return arch
    return None


def _says_turbo(*texts: str) -> bool:
    return any("turbo" in t.lower() for t in texts)


# -- folders --------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(
            f"{path}: cannot read this JSON file ({exc})", hint=REDOWNLOAD_HINT
        ) from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object", hint=REDOWNLOAD_HINT)
    return data


def _optional_json(path: Path) -> dict[str, Any]:
    return _read_json(path) if path.is_file() else {}


def _inspect_folder(root: Path, kind: str | None) -> tuple[str, str | None, dict[str, Any]]:
    if (root / "model_index.json").is_file():
        found = "checkpoint"
        arch, meta = _pipeline_arch(root, _read_json(root / "model_index.json"))
    elif (root / "config.json").is_file():
        config = _read_json(root / "config.json")
        cls = str(config.get("_class_name", ""))
        archs = [str(a) for a in config.get("architectures") or []]
        model_type = str(config.get("model_type", ""))
        if "ControlNet" in cls:
            found, meta = "controlnet", {"class": cls}
            arch = _controlnet_folder_arch(cls, config)
        elif any(a.startswith("CLIP") for a in archs) or model_type.startswith("clip"):
            found, meta = "clip", {"class": archs[0] if archs else model_type}
            arch = _clip_folder_arch(config)
        else:
            found = ""
    else:
        found = ""
    if not found:
        raise UserError(
            f"{root}: not a model folder bildwerk knows",
            hint="expected a diffusers pipeline (model_index.json), a ControlNet or a CLIP folder "
            "(config.json); for single-file weights give the file itself",
        )
    if kind is not None and kind != found:
        raise UserError(f"{root}: this folder holds a {found}, not a {kind}", hint="drop --kind")
    variant = _weights_variant(root)
    if variant:
        meta["variant"] = variant
    return found, arch, meta


def _pipeline_arch(root: Path, index: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
    cls = str(index.get("_class_name", ""))
    meta: dict[str, Any] = {"pipeline": cls}
    unet = _optional_json(root / "unet" / "config.json")
    arch: str | None = None
    if "Flux" in cls:
        arch = "flux"
    elif "StableDiffusion3" in cls:
        arch = "sd3"
    elif "StableDiffusionXL" in cls:
        te = index.get("text_encoder")
        arch = "sdxl-refiner" if not isinstance(te, list) or not te or te[0] is None else "sdxl"
    elif "StableDiffusion" in cls or "LatentConsistency" in cls:
        dim = unet.get("cross_attention_dim")
        if isinstance(dim, int):
            arch = _CROSS_DIM.get(dim)
        if arch is None:
            te = _optional_json(root / "text_encoder" / "config.json")
            text = te.get("text_config") if isinstance(te.get("text_config"), dict) else te
            hidden = text.get("hidden_size") if isinstance(text, dict) else None
            arch = _TEXT_DIM.get(hidden) if isinstance(hidden, int) else None
    if arch in _TURBO and _pipeline_is_turbo(root, index, unet):
        arch = _TURBO[arch]
    if isinstance(unet.get("sample_size"), int):
        meta["sample_size"] = unet["sample_size"]
    return arch, meta


def _pipeline_is_turbo(root: Path, index: Mapping[str, Any], unet: Mapping[str, Any]) -> bool:
    """Turbo (ADD-distilled) models ship Euler Ancestral with trailing timesteps and a
    512 px UNet (sample_size 64); the folder or repo name saying "turbo" also counts."""
    if _says_turbo(root.name, str(index.get("_name_or_path", ""))):
        return True
    sched = _optional_json(root / "scheduler" / "scheduler_config.json")
    return (
        sched.get("_class_name") == "EulerAncestralDiscreteScheduler"
        and sched.get("timestep_spacing") == "trailing"
        and unet.get("sample_size") == 64
    )


def _controlnet_folder_arch(cls: str, config: Mapping[str, Any]) -> str | None:
    if "Flux" in cls:
        return "flux"
    if "SD3" in cls:
        return "sd3"
    if config.get("addition_embed_type") == "text_time" or "Union" in cls:
        return "sdxl"
    dim = config.get("cross_attention_dim")
    return _CROSS_DIM.get(dim) if isinstance(dim, int) else None


def _clip_folder_arch(config: Mapping[str, Any]) -> str:
    text = config.get("text_config") if "text_config" in config else config
    if isinstance(text, Mapping) and isinstance(text.get("hidden_size"), int):
        return _CLIP_TEXT.get(text["hidden_size"], "clip")
    return "clip"


def _weights_variant(root: Path) -> str | None:
    """Return "fp16" when a component folder has only fp16-variant weights: diffusers
    then needs ``variant="fp16"`` to load it."""
    by_dir: dict[Path, list[str]] = {}
    for p in folder_files(root):
        if p.suffix.lower() in WEIGHT_SUFFIXES:
            by_dir.setdefault(p.parent, []).append(p.name)
    for names in by_dir.values():
        if all(re.search(r"\.fp16[.-]", n) for n in names):
            return "fp16"
    return None
