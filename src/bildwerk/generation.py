"""Resolving a brief's generation settings against the model registry.

Model-based backends get, per channel, plain JSON naming every weight file with its
sha256 (so new weights change job keys) and every setting that decides the pixels.
Mistakes — an unknown model, a LoRA for another architecture — are reported against
the brief's field before anything runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from bildwerk.catalog.models import ModelEntry
from bildwerk.config.brief import Brief, GenerationSettings
from bildwerk.config.channels import Channel
from bildwerk.config.yamlfile import YamlDoc
from bildwerk.errors import ConfigError, NotFoundError, UserError


def _entry(e: ModelEntry) -> dict[str, Any]:
    return {
        "name": e.name,
        "path": e.path,
        "sha256": e.sha256,
        "architecture": e.architecture,
        "format": e.format,
        "kind": e.kind,
        "variant": (e.meta or {}).get("variant"),
    }


def _lookup(
    s: Session, name: str, kind: str, doc: YamlDoc, field: tuple[str | int, ...]
) -> ModelEntry:
    from bildwerk import modelreg

    try:
        entry = modelreg.get_model(s, name)
    except NotFoundError as exc:
        raise ConfigError(
            doc.path,
            exc.message,
            line=doc.line_of(field),
            field=".".join(map(str, field)),
            hint=exc.hint,
        ) from None
    if entry.kind != kind:
        raise ConfigError(
            doc.path,
            f"model '{name}' is a {entry.kind}, not a {kind}",
            line=doc.line_of(field),
            field=".".join(map(str, field)),
        )
    return entry


def resolve(
    s: Session, brief: Brief, doc: YamlDoc, channels: list[Channel], *, model: str | None = None
) -> dict[str, dict[str, Any]]:
    """channel name → the generation settings the backend receives for it."""
    from bildwerk import modelreg

    out: dict[str, dict[str, Any]] = {}
    for ch in channels:
        g: GenerationSettings = brief.generation.for_channel(ch.name)
        name = model or g.model or brief.model
        base: tuple[str | int, ...] = ("generation",)
        if name is None:
            raise ConfigError(
                doc.path,
                "this backend needs a model",
                field="generation.model",
                line=doc.line_of(base),
                hint="set generation.model to a registered model, or pass --model",
            )
        checkpoint = _lookup(s, name, "checkpoint", doc, (*base, "model"))
        loras = []
        for i, ref in enumerate(g.loras):
            lora = _lookup(s, ref.name, "lora", doc, (*base, "loras", i, "name"))
            try:
                modelreg.check_lora_compatible(checkpoint, lora)
            except UserError as exc:
                raise ConfigError(
                    doc.path,
                    exc.message,
                    line=doc.line_of((*base, "loras", i)),
                    field=f"generation.loras.{i}",
                    hint=exc.hint,
                ) from None
            loras.append({**_entry(lora), "weight": ref.weight})
        embeddings = [
            {
                **_entry(_lookup(s, ref.name, "embedding", doc, (*base, "embeddings", i, "name"))),
                "token": ref.token,
            }
            for i, ref in enumerate(g.embeddings)
        ]
        controlnet = None
        if g.controlnet is not None:
            cn = _lookup(s, g.controlnet.name, "controlnet", doc, (*base, "controlnet", "name"))
            image = _existing(brief, doc, g.controlnet.image, (*base, "controlnet", "image"))
            controlnet = {
                **_entry(cn),
                "kind": g.controlnet.kind,
                "image": image,
                "scale": g.controlnet.scale,
            }
        reference = None
        if g.reference is not None:
            reference = {
                "image": _existing(brief, doc, g.reference.image, (*base, "reference", "image")),
                "strength": g.reference.strength,
            }
        upscaler = (
            _entry(_lookup(s, g.upscaler, "upscaler", doc, (*base, "upscaler")))
            if g.upscaler
            else None
        )
        out[ch.name] = {
            "model": _entry(checkpoint),
            "loras": loras,
            "embeddings": embeddings,
            "controlnet": controlnet,
            "reference": reference,
            "upscaler": upscaler,
            **g.model_dump(
                mode="json",
                include={
                    "scheduler",
                    "steps",
                    "guidance",
                    "size",
                    "mode",
                    "dtype",
                    "device",
                    "batch_size",
                    "compile",
                },
            ),
        }
    return out


def _existing(
    brief: Brief, doc: YamlDoc, path: Path | None, field: tuple[str | int, ...]
) -> str | None:
    if path is None:
        return None
    resolved = brief.resolve(path)
    if not resolved.is_file():
        raise ConfigError(
            doc.path,
            f"file not found: {resolved}",
            line=doc.line_of(field),
            field=".".join(map(str, field)),
            hint="fix the path (relative to the brief)",
        )
    return str(resolved)
