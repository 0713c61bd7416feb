"""LoRAs and textual-inversion embeddings on a warm checkpoint.

LoRAs are loaded once each as named peft adapters and switched per batch with
``set_adapters``: the task pipelines derived with ``from_pipe`` share one UNet, so the
active LoRA set is state of the warm model rather than a reason to load it again. A LoRA
made for another architecture is refused before loading when its declared (or sniffed)
family differs, and reported the same way when loading fails on layer shapes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bildwerk.backends.diffusion.pipelines import Warm, is_oom
from bildwerk.backends.diffusion.spec import FAMILY, EmbeddingSpec, LoraSpec, ModelSpec
from bildwerk.errors import UserError


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def sniff_lora_family(path: Path) -> str | None:
    """Guess a LoRA's base family from its safetensors header (keys, shapes, kohya
    metadata) without reading the weights; None when it cannot tell."""
    try:
        with path.open("rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if not 0 < n < 100_000_000:
                return None
            header = json.loads(f.read(n))
    except (OSError, ValueError):
        return None
    meta = header.pop("__metadata__", None) or {}
    base = str(meta.get("ss_base_model_version", "")).lower()
    for needle, family in (("sdxl", "sdxl"), ("sd3", "sd3"), ("flux", "flux")):
        if needle in base:
            return family
    if base.startswith("sd_v1"):
        return "sd1"
    if base.startswith("sd_v2"):
        return "sd2"
    keys = list(header)
    if any(k.startswith(("text_encoder_2.", "lora_te2_", "te2.")) for k in keys):
        return "sdxl"
    if any("single_transformer_blocks" in k for k in keys):
        return "flux"
    if any("joint_blocks" in k or "context_block" in k for k in keys):
        return "sd3"
    for key, info in header.items():  # cross-attention width: 768 SD1, 1024 SD2, 2048 SDXL
        if "attn2" in key and "to_k" in key and ("lora_A" in key or "lora.down" in key):
            width = info.get("shape", [0, 0])[-1]
            return {768: "sd1", 1024: "sd2", 2048: "sdxl"}.get(width)
    return None


def check_lora(model: ModelSpec, lora: LoraSpec) -> None:
    """Refuse a LoRA whose declared or sniffed family is not the model's."""
    path = Path(lora.path)
    if not path.is_file():
        raise UserError(f"LoRA '{lora.name}': {path} does not exist")
    declared = FAMILY.get(lora.architecture) if lora.architecture else None
    family = declared or (sniff_lora_family(path) if path.suffix == ".safetensors" else None)
    if family is not None and family != model.family:
        arch = lora.architecture or family
        raise UserError(
            f"LoRA '{lora.name}' is for {arch}, but model '{model.name}' is {model.architecture}",
            hint=f"pick a LoRA trained for {model.architecture}, or another model",
        )


def _adapter_name(index: int, name: str) -> str:
    return f"bw{index}_" + re.sub(r"[^A-Za-z0-9_]+", "_", name)[:40]


def activate_loras(torch: Any, warm: Warm, loras: tuple[LoraSpec, ...]) -> None:
    """Load new LoRAs as named adapters and make exactly ``loras`` active (none: LoRA
    layers disabled, so the output equals the plain model's)."""
    pipe = warm.pipe
    weights: dict[str, float] = {}
    for lora in loras:
        key = lora.sha256 or str(Path(lora.path).resolve())
        if key not in warm.adapters:
            check_lora(warm.model, lora)
            name = _adapter_name(len(warm.adapters), lora.name)
            try:
                pipe.load_lora_weights(lora.path, adapter_name=name)
            except Exception as exc:
                if is_oom(torch, exc):
                    raise
                raise UserError(
                    f"LoRA '{lora.name}' does not fit model '{warm.model.name}' "
                    f"({warm.model.architecture}): {_first_line(exc)}",
                    hint="use a LoRA trained for this model's architecture",
                ) from exc
            warm.adapters[key] = name
        name = warm.adapters[key]
        weights[name] = weights.get(name, 0.0) + lora.weight
    if not warm.adapters:
        return
    if weights:
        pipe.enable_lora()
        pipe.set_adapters(list(weights), adapter_weights=list(weights.values()))
    else:
        pipe.disable_lora()


def load_embeddings(warm: Warm, embeddings: tuple[EmbeddingSpec, ...]) -> None:
    """Textual inversions add tokens; a loaded token stays (it only acts when a prompt
    uses it), so this is additive and cheap on repeat."""
    for emb in embeddings:
        key = emb.sha256 or str(Path(emb.path).resolve())
        if emb.token in warm.tokens:
            if warm.tokens[emb.token] != key:
                raise UserError(
                    f"embedding '{emb.name}': token {emb.token} is already taken by "
                    "another embedding on this model",
                    hint="give each embedding its own token",
                )
            continue
        if warm.model.family in ("sd3", "flux"):
            raise UserError(
                f"embedding '{emb.name}': textual inversion is not supported for "
                f"{warm.model.architecture} models"
            )
        path = Path(emb.path)
        if not path.is_file():
            raise UserError(f"embedding '{emb.name}': {path} does not exist")
        try:
            _load_embedding(warm, path, emb.token)
        except UserError:
            raise
        except Exception as exc:
            raise UserError(
                f"cannot load embedding '{emb.name}' from {path} into model "
                f"'{warm.model.name}': {_first_line(exc)}",
                hint="check that it was trained for this model's architecture",
            ) from exc
        warm.tokens[emb.token] = key


def _load_embedding(warm: Warm, path: Path, token: str) -> None:
    """SD 1.x/2.x embeddings go through diffusers' own reader; SDXL ones carry one
    vector set per text encoder (``clip_l``, ``clip_g``) and are loaded into each."""
    pipe = warm.pipe
    state: dict[str, Any] | None = None
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    dual = state is not None and {"clip_l", "clip_g"} <= set(state)
    if warm.model.family == "sdxl":
        if state is None or not dual:
            raise UserError(f"embedding {path} is not an SDXL embedding (needs clip_l and clip_g)")
        for vectors, encoder, tokenizer in (
            (state["clip_l"], pipe.text_encoder, pipe.tokenizer),
            (state["clip_g"], pipe.text_encoder_2, pipe.tokenizer_2),
        ):
            pipe.load_textual_inversion(
                vectors, token=token, text_encoder=encoder, tokenizer=tokenizer
            )
        return
    if dual:
        raise UserError(
            f"embedding {path} is an SDXL embedding; model '{warm.model.name}' is "
            f"{warm.model.architecture}"
        )
    pipe.load_textual_inversion(str(path), token=token)
