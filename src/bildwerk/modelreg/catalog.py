"""Registered models in the catalog: add, list, get, remove, and the LoRA compatibility rule."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bildwerk.catalog.models import ModelEntry
from bildwerk.catalog.repo import log_event
from bildwerk.errors import NotFoundError, UserError
from bildwerk.modelreg.detect import base_architecture, inspect_model
from bildwerk.modelreg.vocab import KINDS

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
