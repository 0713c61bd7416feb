"""Model registry: what a weights file or folder is, which base model it belongs to, and
a content hash that names it.

Detection reads configs and safetensors headers only, never whole checkpoints, so
inspecting a 7 GB SDXL file costs milliseconds plus the hash. The sha256 covers every
weight and config file, so new weights mean new job keys. Architectures are bildwerk's
own short names (sd15, sd2, sdxl, …) so the CLI, LoRA checks and job keys share one
vocabulary.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import struct
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bildwerk.atomicio import sha256_file
from bildwerk.catalog.models import ModelEntry
from bildwerk.catalog.repo import log_event
from bildwerk.errors import MissingExtraError, NotFoundError, UserError

KINDS = ("checkpoint", "lora", "embedding", "controlnet", "upscaler", "clip")
DIFFUSION_ARCHITECTURES = (
    "sd15",
    "sd2",
    "sdxl",
    "sdxl-refiner",
    "sd-turbo",
    "sdxl-turbo",
    "sd3",
    "flux",
)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
CONFIG_SUFFIXES = (".json", ".txt", ".model", ".yaml")

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
_MAX_HEADER = 100 * 1024 * 1024
_Shapes = dict[str, tuple[int, ...]]
_REDOWNLOAD = "download it again (compare its sha256 with the publisher's) and re-add it"


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


# -- hashing ----------------------------------------------------------------------------


def folder_files(root: Path) -> list[Path]:
    """Weight and config files under ``root``, sorted; hidden folders (the hub's .cache)
    and docs are left out because they do not change outputs."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            p = Path(dirpath, name)
            if not name.startswith(".") and p.suffix.lower() in WEIGHT_SUFFIXES + CONFIG_SUFFIXES:
                found.append(p)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def folder_digest(root: Path) -> tuple[str, int, int]:
    """sha256 over sorted (relative path, file sha256): the same on every machine.

    Returns (digest, total bytes, file count)."""
    h = hashlib.sha256()
    size = 0
    files = folder_files(root)
    for p in files:
        h.update(f"{p.relative_to(root).as_posix()}\0{sha256_file(p)}\n".encode())
        size += p.stat().st_size
    return h.hexdigest(), size, len(files)


# -- reading weights without loading them ---------------------------------------------


def read_safetensors_header(path: Path) -> tuple[_Shapes, dict[str, str]]:
    """Tensor shapes and ``__metadata__`` from the header alone; checks that the file
    is long enough for every tensor the header lists (catches truncated downloads)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise UserError(f"{path}: not a safetensors file (too short)", hint=_REDOWNLOAD)
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER or 8 + n > size:
            raise UserError(
                f"{path}: not a safetensors file, or truncated (header claims {n} bytes, "
                f"file has {size})",
                hint=_REDOWNLOAD,
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        meta = {str(k): str(v) for k, v in dict(header.pop("__metadata__", None) or {}).items()}
        shapes: _Shapes = {}
        end = 0
        for key, entry in header.items():
            shapes[key] = tuple(int(d) for d in entry["shape"])
            end = max(end, int(entry["data_offsets"][1]))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise UserError(f"{path}: damaged safetensors header ({exc})", hint=_REDOWNLOAD) from None
    if 8 + n + end > size:
        raise UserError(
            f"{path}: truncated safetensors file ({8 + n + end} bytes expected, {size} found)",
            hint=_REDOWNLOAD,
        )
    return shapes, meta


def _read_pickle_shapes(path: Path) -> _Shapes:
    """Shapes from a torch pickle, memory-mapped (zip format) and with weights_only, so
    nothing executes and nothing big is read."""
    try:
        import torch
    except ImportError as exc:
        raise MissingExtraError("torch", "diffusion", f"Reading {path}") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as exc:  # pickles fail in many ways: all mean "cannot use this file"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UserError(
            f"{path}: not a readable PyTorch weights file ({type(exc).__name__}: {first[:200]})",
            hint=f"{_REDOWNLOAD}; or convert it to .safetensors",
        ) from None
    shapes: _Shapes = {}
    _flatten(_unwrap(obj), "", shapes)
    return shapes


def _unwrap(obj: Any) -> Any:
    for key in ("state_dict", "params_ema", "params", "model_state_dict", "model", "net"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            return obj[key]
    return obj


def _flatten(obj: Any, prefix: str, out: _Shapes) -> None:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            _flatten(v, f"{prefix}{k}.", out)
    elif hasattr(obj, "shape"):
        out[prefix[:-1]] = tuple(int(d) for d in obj.shape)


def read_shapes(path: Path) -> tuple[_Shapes, dict[str, str]]:
    """Tensor names and shapes of a single weights file, plus safetensors metadata."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return read_safetensors_header(path)
    if suffix in WEIGHT_SUFFIXES:
        return _read_pickle_shapes(path), {}
    raise UserError(
        f"{path}: unsupported model file type '{suffix or path.name}'",
        hint="bildwerk reads .safetensors, .pt, .pth, .bin and .ckpt files and diffusers folders",
    )


# -- single files ---------------------------------------------------------------------


def _inspect_file(path: Path, kind: str | None) -> tuple[str, str | None, dict[str, Any]]:
    shapes, metadata = read_shapes(path)
    if not shapes:
        raise UserError(f"{path}: contains no tensors", hint=_REDOWNLOAD)
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


def _classify(path: Path, shapes: _Shapes) -> str:
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
        "(ESRGAN/Real-ESRGAN/SwinIR …); if it is one, pass --kind"
    )
    try:
        if recognises(shapes):
            return "upscaler"
    except UserError as exc:  # spandrel missing or broken: say so, but name the file first
        raise UserError(
            f"{path}: not a diffusion model file, and upscalers cannot be detected: {exc.message}",
            hint=exc.hint or hint,
        ) from None
    raise UserError(f"{path}: not a model file bildwerk recognises", hint=hint)


def _is_embedding(shapes: _Shapes) -> bool:
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


def _embedding_arch(shapes: _Shapes) -> tuple[str | None, int]:
    if "clip_g" in shapes or "clip_l" in shapes:
        vectors = shapes.get("clip_g", shapes.get("clip_l", (1,)))
        return ("sdxl" if "clip_g" in shapes else None), (vectors[0] if len(vectors) == 2 else 1)
    for key, shape in shapes.items():
        if key == "emb_params" or key.startswith("string_to_param.") or len(shapes) == 1:
            return _TEXT_DIM.get(shape[-1]), (shape[0] if len(shape) == 2 else 1)
    return None, 0


def _lora_arch(shapes: _Shapes) -> str | None:
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


def _unet_arch(shapes: _Shapes) -> str | None:
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


def _clip_file_arch(shapes: _Shapes) -> str:
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
        raise UserError(f"{path}: cannot read this JSON file ({exc})", hint=_REDOWNLOAD) from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object", hint=_REDOWNLOAD)
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


# -- catalog --------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}", name or ""):
        raise UserError(
            f"invalid model name '{name}'",
            hint="use up to 128 letters, digits and . _ - : / @ +, starting with a letter or digit",
        )


def add_model(
    s: Session,
    path: Path,
    *,
    name: str,
    kind: str | None = None,
    architecture: str | None = None,
    license: str = "",
    source: str = "",
    allowed_uses: Sequence[str] = (),
    replace: bool = False,
) -> ModelEntry:
    """Register weights under ``name``. The same name with the same sha is a no-op;
    other weights under a taken name need ``replace=True``, because job keys change."""
    _check_name(name)
    info = inspect_model(path, kind, architecture=architecture)
    entry = s.get(ModelEntry, name)
    old_sha = entry.sha256 if entry is not None else None
    if entry is not None and not replace:
        if entry.sha256 == info.sha256:
            return entry
        raise UserError(
            f"a model named '{name}' is already registered with other weights "
            f"(sha256 {entry.sha256[:12]}…, new {info.sha256[:12]}…)",
            hint="choose a new --name, or pass --replace to point the name at the new weights "
            "(jobs that use it get new keys)",
        )
    if entry is None:
        entry = ModelEntry(name=name)
        s.add(entry)
    entry.kind = info.kind
    entry.path = str(info.path)
    entry.format = info.format
    entry.architecture = info.architecture
    entry.sha256 = info.sha256
    entry.size_bytes = info.size_bytes
    entry.license = license
    entry.source = source
    entry.allowed_uses = list(allowed_uses)
    entry.meta = dict(info.meta)
    payload = {k: getattr(entry, k) for k in ("kind", "architecture", "sha256", "path", "source")}
    if old_sha is not None:
        payload["replaced_sha256"] = old_sha
    log_event(s, "model.added", subject=name, payload=payload)
    s.flush()
    return entry


def list_models(s: Session, kind: str | None = None) -> list[ModelEntry]:
    """Registered models, by kind then name."""
    query = select(ModelEntry).order_by(ModelEntry.kind, ModelEntry.name)
    if kind is not None:
        if kind not in KINDS:
            raise UserError(f"unknown model kind '{kind}'", hint=f"use one of: {', '.join(KINDS)}")
        query = query.where(ModelEntry.kind == kind)
    return list(s.scalars(query))


def get_model(s: Session, name: str) -> ModelEntry:
    entry = s.get(ModelEntry, name)
    if entry is None:
        names = list(s.scalars(select(ModelEntry.name).order_by(ModelEntry.name).limit(21)))
        known = ", ".join(names[:20]) + (", …" if len(names) > 20 else "")
        raise NotFoundError(
            f"no model named '{name}' in the catalog",
            hint=f"known models: {known}"
            if names
            else "none registered yet: bildwerk models add PATH --name NAME",
        )
    return entry


def remove_model(s: Session, name: str) -> ModelEntry:
    """Forget a model (its files stay where they are)."""
    entry = get_model(s, name)
    s.delete(entry)
    log_event(s, "model.removed", subject=name, payload={"sha256": entry.sha256})
    s.flush()
    return entry


def check_lora_compatible(model: ModelEntry, lora: ModelEntry) -> None:
    """``UserError`` unless ``lora`` (a LoRA or textual inversion) was trained for the
    base of ``model``; failing here beats a shape error deep inside diffusers."""
    if lora.kind not in ("lora", "embedding"):
        raise UserError(f"'{lora.name}' is a {lora.kind}, not a LoRA or textual inversion")
    if model.kind != "checkpoint":
        raise UserError(f"'{model.name}' is a {model.kind}, not a checkpoint")
    want, have = base_architecture(model.architecture), base_architecture(lora.architecture)
    if want != have:
        raise UserError(
            f"{lora.kind} '{lora.name}' is for {lora.architecture}, but model '{model.name}' "
            f"is {model.architecture}",
            hint=f"use a {lora.kind} trained for {want}, or a {have} model",
        )


# -- pulling from the Hugging Face Hub ------------------------------------------------


def select_pull_files(files: Iterable[str]) -> list[str]:
    """Which repo files to download: configs, tokenizers and one copy of the weights.

    Per folder, safetensors beat pickles and fp16 variants beat full precision. In a
    diffusers repo the root-level single-file checkpoints duplicate the component
    folders and are skipped (they would double the download)."""
    files = [f for f in files if not any(part.startswith(".") for part in f.split("/"))]
    diffusers_repo = "model_index.json" in files
    chosen = [f for f in files if f.lower().endswith(CONFIG_SUFFIXES)]
    weights: dict[str, list[str]] = {}
    for f in files:
        folder, _, name = f.rpartition("/")
        if name.lower().endswith(WEIGHT_SUFFIXES) and not (diffusers_repo and not folder):
            weights.setdefault(folder, []).append(f)
    for names in weights.values():
        safe = [f for f in names if f.lower().endswith(".safetensors")]
        names = safe or names
        fp16 = [f for f in names if re.search(r"\.fp16[.-]", f)]
        chosen.extend(fp16 or names)
    return sorted(chosen)


def _hub_unreachable(repo_id: str, why: str) -> UserError:
    return UserError(
        f"cannot reach the Hugging Face Hub to download '{repo_id}' ({why})",
        hint="download the model elsewhere and 'bildwerk models add PATH'",
    )


def _offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def pull_model(
    repo_id: str, dest: Path, *, revision: str | None = None, timeout: float = 15.0
) -> Path:
    """Download a Hub repo's configs and preferred weights into ``dest``, pinned to one
    commit; a clear ``UserError`` at once when offline or the Hub is unreachable (the
    first request is a single, unretried lookup with ``timeout``)."""
    if _offline_env():
        raise _hub_unreachable(repo_id, "HF_HUB_OFFLINE is set")
    try:
        import huggingface_hub as hub
        from huggingface_hub import constants as hub_constants
        from huggingface_hub import errors as hub_errors
    except ImportError as exc:
        raise MissingExtraError("huggingface_hub", "diffusion", "Pulling models") from exc
    net_errors: tuple[type[BaseException], ...] = (
        ConnectionError,
        TimeoutError,
        hub_errors.OfflineModeIsEnabled,
        hub_errors.LocalEntryNotFoundError,
    )
    try:
        import httpx2

        net_errors += (httpx2.TransportError,)
    except ImportError:
        pass
    if hub_constants.HF_HUB_OFFLINE:
        raise _hub_unreachable(repo_id, "HF_HUB_OFFLINE is set")
    endpoint = os.environ.get("HF_ENDPOINT") or None  # read now, not at import time
    dest = Path(dest).expanduser()
    try:
        info = hub.HfApi(endpoint=endpoint).repo_info(repo_id, revision=revision, timeout=timeout)
        siblings = getattr(info, "siblings", None) or []
        wanted = select_pull_files(str(sib.rfilename) for sib in siblings)
        if not any(f.lower().endswith(WEIGHT_SUFFIXES) for f in wanted):
            raise UserError(
                f"'{repo_id}' has no weights bildwerk can use "
                "(.safetensors, .bin, .pt, .pth or .ckpt)",
                hint="check the repo id on the Hub",
            )
        dest.mkdir(parents=True, exist_ok=True)  # only now: a failed lookup leaves nothing
        hub.snapshot_download(
            repo_id,
            revision=info.sha,
            local_dir=dest,
            allow_patterns=[glob.escape(f) for f in wanted],
            etag_timeout=timeout,
            endpoint=endpoint,
        )
    except hub_errors.GatedRepoError:
        raise UserError(
            f"'{repo_id}' is gated: accept its licence on the Hub first",
            hint="then log in (huggingface-cli login, or set HF_TOKEN) and pull again",
        ) from None
    except hub_errors.RepositoryNotFoundError:
        raise UserError(
            f"no model '{repo_id}' on the Hub (or it is private)",
            hint="check the repo id; for a private repo log in or set HF_TOKEN",
        ) from None
    except hub_errors.RevisionNotFoundError:
        raise UserError(
            f"'{repo_id}' has no revision '{revision}'", hint="use a branch, tag or commit"
        ) from None
    except hub_errors.HFValidationError as exc:
        raise UserError(f"invalid repo id '{repo_id}': {exc}", hint="use OWNER/NAME") from None
    except hub_errors.HfHubHTTPError as exc:
        raise _hub_unreachable(repo_id, f"the Hub answered: {exc}") from None
    except net_errors as exc:
        raise _hub_unreachable(repo_id, f"{type(exc).__name__}: {exc}") from None
    except OSError as exc:
        raise UserError(
            f"cannot write the download to {dest}: {exc}",
            hint="check free disk space and permissions",
        ) from None
    return dest.resolve()
